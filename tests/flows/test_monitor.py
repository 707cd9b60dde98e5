"""monitor on the session's Prefect server: a clean window passes; switching on the example's
drift and fairness breach gives one alert each, also when the monitor runs again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from typer.testing import CliRunner

from deployments.cli import app
from flows.monitor import monitor
from mlc_tasks.registry.alerts import AlertBook
from tests.conftest import REPO


def kinds(results) -> dict[str, object]:
    return {r.kind: r for r in results}


def test_a_clean_window_passes_with_an_evidently_report(in_prod, prefect_server) -> None:
    registry, _ = in_prod
    found = kinds(monitor("credit-risk"))
    assert set(found) == {"drift", "performance", "fairness:gender"}
    assert all(r.passed for r in found.values()), {k: [c for c in r.thresholds if not c.passed]
                                                   for k, r in found.items()}
    assert found["fairness:gender"].metrics["disparate_impact_ratio"] > 0.8
    html = Path(str(found["drift"].report_uri)).read_bytes()
    assert b"<html" in html[:2000].lower() and len(html) > 100_000
    assert str(found["drift"].report_uri).endswith(".html"), "stored with its media type"
    link = httpx.post(f"{prefect_server}/artifacts/filter", json={
        "artifacts": {"key": {"any_": ["drift-report-credit-risk"]}}}).json()
    digest = Path(str(found["drift"].report_uri)).name
    assert len(link) == 1 and f"/reports/{digest})" in link[0]["data"], link
    charts = httpx.post(f"{prefect_server}/artifacts/filter", json={
        "artifacts": {"key": {"any_": ["charts-credit-risk"]}}}).json()
    # (the backtests of this session's other tests link the same page under the same key)
    assert charts and all("/center/models/credit-risk)" in a["data"] for a in charts), charts
    assert not [a for a in AlertBook(registry).list(model="credit-risk")
                if a.monitor in ("drift", "fairness", "performance")]


def test_drift_and_unfairness_alert_once_each(in_prod, prefect_server) -> None:
    registry, daily = in_prod
    subprocess.run([sys.executable, str(REPO / "examples" / "generate.py"), "--drift",
                    "--unfair", str(daily.parents[1] / "credit-risk")], check=True,
                   capture_output=True)
    for _ in range(2):
        found = kinds(monitor("credit-risk"))
    drifted = [c.metric for c in found["drift"].thresholds if not c.passed]
    assert "income.wasserstein_std" in drifted and "region.jensen_shannon" in drifted
    assert not found["fairness:gender"].passed
    alerts = [a for a in AlertBook(registry).list(model="credit-risk")
              if a.monitor in ("drift", "fairness")]
    assert sorted((a.monitor, a.count) for a in alerts) == [("drift", 2), ("fairness", 2)]
    version = registry.get_version("credit-risk", 1)
    drift_records = [r for r in registry.test_results(version.id) if r.kind == "drift"]
    assert len(drift_records) == 1, "a rerun over the same window replaces the record"


def test_missing_sensitive_column_names_it_and_writes_nothing(in_prod, prefect_server) -> None:
    registry, daily = in_prod
    for folder in daily.iterdir():
        frame = (folder / "labelled.csv").read_text().splitlines()
        header = frame[0].split(",")
        keep = [i for i, name in enumerate(header) if name != "gender"]
        (folder / "labelled.csv").write_text("\n".join(
            ",".join(line.split(",")[i] for i in keep) for line in frame) + "\n")
    done = CliRunner().invoke(app, ["monitor", "credit-risk"])
    assert done.exit_code == 1 and "sensitive attribute column 'gender'" in done.output
    version = registry.get_version("credit-risk", 1)
    assert [r.kind for r in registry.test_results(version.id)] == ["test"]  # nothing new


def test_drift_is_measured_on_the_scoring_inputs_the_runtimes_saw(
        in_prod, prefect_server, local_settings) -> None:
    from datetime import timedelta

    import pandas as pd

    from mlc_tasks.capture import InputCapture
    from mlc_tasks.registry.store import utcnow

    registry, daily = in_prod
    yesterday = utcnow().date() - timedelta(days=1)
    scored = pd.read_csv(daily / yesterday.isoformat() / "labelled.csv").drop(
        columns=["default", "gender"])
    scored["income"] = scored["income"] * 2  # what production sees has moved
    InputCapture(local_settings.capture_dir(), "prod").record("credit-risk", 1, scored)
    found = kinds(monitor("credit-risk"))
    assert found["drift"].dataset_uri.startswith("scoring inputs captured under")
    drifted = [c.metric for c in found["drift"].thresholds if not c.passed]
    assert drifted == ["income.wasserstein_std"]
    assert found["performance"].passed  # the labelled rows themselves did not move


def test_a_capped_capture_is_said_in_the_drift_record(in_prod, prefect_server,
                                                      local_settings) -> None:
    from datetime import timedelta

    import pandas as pd

    from mlc_tasks.capture import InputCapture
    from mlc_tasks.registry.store import utcnow

    _, daily = in_prod
    yesterday = utcnow().date() - timedelta(days=1)
    scored = pd.read_csv(daily / yesterday.isoformat() / "labelled.csv").drop(
        columns=["default", "gender"])
    capture = InputCapture(local_settings.capture_dir(), "prod", max_rows_per_day=400)
    capture.record("credit-risk", 1, scored)  # more rows than the day's cap
    found = kinds(monitor("credit-risk"))
    assert "capture capped:" in found["drift"].dataset_uri
    assert "on prod: capped at" in found["drift"].dataset_uri
