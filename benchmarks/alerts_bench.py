"""1,000 alerts over 50 fingerprints through a loopback Slack receiver: notifications sent,
time taken, none lost.

    .venv/bin/python benchmarks/alerts_bench.py

Each alert is raised as a process would (one transaction: alert + outbox rows), then the outbox
is delivered; a tenth of the Slack answers are 500s, so retries are part of the figure.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlc_tasks.alert_records import AlertSignal, Severity  # noqa: E402
from mlc_tasks.alerting import RetryPolicy, deliver_pending  # noqa: E402
from mlc_tasks.channels import SlackChannel  # noqa: E402
from mlc_tasks.outbound import OutboundPolicy  # noqa: E402
from mlc_tasks.registry import Registry  # noqa: E402
from mlc_tasks.registry.alerts import AlertBook  # noqa: E402
from tests.receivers import Reply, serve  # noqa: E402

ALERTS, FINGERPRINTS = 1000, 50


def signal(i: int) -> AlertSignal:
    return AlertSignal(severity=Severity.WARNING, model=f"model-{i % FINGERPRINTS:02d}",
                       source="bench", monitor="threshold", metric="roc_auc", window="day",
                       title=f"roc_auc below threshold (observation {i})", value=0.7,
                       threshold=0.75)


def main() -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp, serve() as slack:
        slack.script("/hook", lambda _request: Reply(500) if rng.random() < 0.1 else Reply(200))
        book = AlertBook(Registry(f"sqlite:///{Path(tmp) / 'bench.db'}",
                                  audit_key="alerts-bench-audit-key-0123456789"))
        channel = SlackChannel(SecretStr(slack.url + "/hook"),
                               OutboundPolicy(allowed_hosts=["127.0.0.1"],
                                              allow_http_loopback=True))
        policy = RetryPolicy(attempts_per_run=6, base_delay_seconds=0.0)
        start = time.perf_counter()
        for i in range(ALERTS):
            book.raise_alert(signal(i), ["slack"], timedelta(days=1))
        raised = time.perf_counter() - start
        report = deliver_pending(book, {"slack": channel}, policy, random.Random(1))
        total = time.perf_counter() - start
        alerts = book.list()
        ok = [r for r in slack.requests_to("/hook") if r.json()]
        print(f"{ALERTS} alerts over {FINGERPRINTS} fingerprints, Slack answering 500 to ~10%")
        print(f"open alerts: {len(alerts)}; counts add up to {sum(a.count for a in alerts)}")
        print(f"notifications delivered: {report.sent} (failed {report.failed}, "
              f"pending {report.pending}); HTTP requests to Slack: {len(ok)}")
        print(f"raise 1,000 alerts: {raised:.2f} s ({raised / ALERTS * 1000:.2f} ms each); "
              f"raise + deliver: {total:.2f} s")
        lost = FINGERPRINTS - report.sent
        print(f"lost: {lost}")


if __name__ == "__main__":
    main()
