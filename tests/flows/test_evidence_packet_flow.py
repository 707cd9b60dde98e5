"""The evidence packet in on-model-changed: when credit-risk:1's approval opens, its packet is
published and linked from the task and the form; the control-plane API's /reports route serves
the very bytes whose sha256 the task and the decision's audit row carry; the current packet
(`GET /v1/models/{name}/versions/{number}/evidence`) shows the verified decision, and answers
only a caller with credentials, and 404 for what does not exist."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from mlc_tasks.lifecycle import State
from tests.flows.conftest import PeopleApi, Stack
from tests.flows.test_on_model_changed import (
    FlowInThread,
    configure,
    new_package,
    submit,
    waiting_task,
)

POLICY: dict[str, Any] = {
    "thresholds": {"classification": {"roc_auc": {"min": 0.6}}},
    "people": [{"id": "rita", "groups": ["risk"]}, {"id": "sam", "groups": ["risk"]}],
    "approvals": [{"groups": ["risk"], "quorum": 1, "deadline": "1h"}],
}
COMMENT = 'fine for <script>alert("lending")</script>'
SANDBOX = "sandbox allow-scripts; frame-ancestors 'none'"


@pytest.fixture
def linked(stack: Stack, people_api: PeopleApi, monkeypatch: pytest.MonkeyPatch) -> PeopleApi:
    """The flow links packets at the API the test runs (MLC_PUBLIC_URL)."""
    configure(stack, monkeypatch, POLICY)
    monkeypatch.setenv("MLC_PUBLIC_URL", people_api.process.url)
    return people_api


def section(html: str, name: str) -> str:
    found = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert found, f"no section {name}"
    return found[1]


def get(people: PeopleApi, path: str, person: str | None = "rita") -> httpx.Response:
    headers = {"Authorization": f"Bearer {people.token(person)}"} if person else {}
    return httpx.get(f"{people.process.url}{path}", headers=headers, timeout=30)


def test_the_approval_links_the_packet_its_decision_names(
        linked: PeopleApi, examples_dir: Path, tmp_path: Path) -> None:
    stack = linked.stack
    submit(stack, new_package(examples_dir, tmp_path, "credit-risk", "high"))
    run = FlowInThread("credit-risk")
    task = waiting_task(stack, "credit-risk")
    digest, url = task.detail["packet_sha256"], task.detail["packet_url"]
    assert url == f"{linked.process.url}/reports/{digest}.html"
    assert f"[Evidence packet]({url})" in task.detail["evidence"]  # in the form's description
    assert digest in task.detail["evidence"]

    shown = httpx.get(url, timeout=30)  # the /reports route: a sha256 is its own secret
    assert shown.status_code == 200
    assert hashlib.sha256(shown.content).hexdigest() == digest
    assert shown.headers["content-security-policy"] == SANDBOX
    packet = shown.text
    assert "<h1>Evidence packet: credit-risk:1</h1>" in packet
    assert "roc_auc</td><td>&gt;= 0.6000</td>" in section(packet, "tests")
    assert '<span class="pass">pass</span> at' in section(packet, "scan")
    assert "none recorded" in section(packet, "decisions")  # what Rita is shown: undecided

    done = linked.decide("rita", "approve", task.id, COMMENT)
    assert done.exit_code == 0, done.output
    assert run.join().is_completed()
    row = next(e for e in stack.registry.audit_events("credit-risk")
               if e.action == "task.decision")
    assert row.actor == "rita" and row.detail["packet_sha256"] == digest
    assert row.evidence_sha256 == hashlib.sha256(task.detail["evidence"].encode()).hexdigest()

    current = get(linked, "/v1/models/credit-risk/versions/1/evidence")
    assert current.status_code == 200, current.text
    assert current.headers["content-type"] == "text/html; charset=utf-8"
    assert current.headers["content-security-policy"] == SANDBOX
    assert current.headers["x-content-type-options"] == "nosniff"
    assert hashlib.sha256(current.content).hexdigest() != digest  # decided and deployed since
    decisions = section(current.text, "decisions")
    assert "<td>rita</td>" in decisions and digest in decisions
    assert str(row.evidence_sha256) in decisions
    assert "fine for &lt;script&gt;alert(&#34;lending&#34;)&lt;/script&gt;" in decisions
    assert "<script" not in current.text
    assert stack.registry.get_version("credit-risk", 1).state == State.DEPLOYED
    assert "<td>deployed</td>" in section(current.text, "life-cycle")

    out = tmp_path / "credit-risk-1.html"  # an auditor files it with `mlc evidence`
    filed = linked.mlc("sam", "evidence", "credit-risk", "1", "--out", str(out))
    assert filed.exit_code == 0, filed.output
    assert f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}" in filed.output
    assert "<td>rita</td>" in section(out.read_text(), "decisions")
    again = linked.mlc("sam", "evidence", "credit-risk", "1", "--out", str(out))
    assert again.exit_code != 0 and f"--out: {out} exists" in again.output


def test_the_packet_route_needs_credentials_and_a_real_version(
        linked: PeopleApi, examples_dir: Path, tmp_path: Path) -> None:
    submit(linked.stack, new_package(examples_dir, tmp_path, "route-risk", "high"))
    path = "/v1/models/route-risk/versions/1/evidence"
    fresh = get(linked, path)  # only submitted: every later section is empty, and says so
    assert fresh.status_code == 200 and "none recorded" in section(fresh.text, "tests")
    assert get(linked, path, person=None).status_code == 401
    forged = httpx.get(f"{linked.process.url}{path}", timeout=30,
                       headers={"Authorization": "Bearer mlc_not-a-token"})
    assert forged.status_code == 401
    assert get(linked, "/v1/models/no-such-model/versions/1/evidence").status_code == 404
    missing = get(linked, "/v1/models/route-risk/versions/99/evidence")
    assert missing.status_code == 404 and "no version 99" in missing.json()["detail"]
    assert get(linked, "/v1/models/route-risk/versions/one/evidence").status_code == 422
