"""Attacks on the Slack door (POST /slack/interactions) and on the messages it posts, against
the real API process, a real registry and the loopback Slack of tests/slack_api.py: captured
requests replayed with other headers or trailing bytes, signatures that are not ASCII, bodies
too big, unlengthed, not UTF-8 or with many actions; signed clicks naming what no button
carried (a choice a task does not have, an alert id that is not a number, a snooze length we
do not offer), forged modal metadata, and two decisions racing on one real paused flow run.
What processes and packages type cannot make a mention or a link in any message or modal."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import yaml

from mlc_tasks import slack_messages as sm
from mlc_tasks.alert_records import Alert, AlertStatus, Severity
from mlc_tasks.lifecycle import State
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import HumanTask, TaskDecision, TaskKind, TaskStatus
from tests.deployments.test_slack_interactions import (
    RITA,
    SAM,
    SECRET,
    USERS,
    Triage,
    announced,
    ask_approval,
    start,
)
from tests.receivers import serve
from tests.slack_api import click, element, signed, submission


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Iterator[Triage]:
    with serve() as receiver:
        started = Triage(tmp_path_factory.mktemp("attacks") / "home", receiver, prefect_server)
        yield started
        started.api.stop()
        started.registry.close()


@pytest.fixture
def flow_env(door: Triage, monkeypatch: pytest.MonkeyPatch) -> Triage:
    for key, value in door.env.items():
        monkeypatch.setenv(key, value)
    return door


def api_log(door: Triage) -> str:
    door.api.log.seek(0)
    return door.api.log.read().decode(errors="replace")


def crafted(user: str, *actions: dict[str, Any], ts: str = "1700000000.000001"
            ) -> dict[str, Any]:
    """A block_actions payload with whatever actions an attacker holding the secret writes."""
    return {"type": "block_actions", "user": {"id": user}, "trigger_id": f"t-{time.time_ns()}",
            "channel": {"id": "C0TRIAGE"}, "message": {"ts": ts},
            "actions": [{"type": "button", "block_id": "b", **a} for a in actions]}


def signed_raw(raw: bytes) -> tuple[bytes, dict[str, str]]:
    """Any bytes as a body, signed as Slack signs."""
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/x-www-form-urlencoded",
                 "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def refusals(door: Triage) -> int:
    return len(door.audit("slack.refused"))


# ---- the signature and the replay store ----------------------------------------------------


def test_a_captured_click_does_not_count_again_with_other_headers_or_bytes(door: Triage) -> None:
    raised, posted = door.alert("replay-model")
    body, headers = signed(SECRET, click(posted, USERS[RITA], "Acknowledge"))
    ts = int(headers["X-Slack-Request-Timestamp"])
    # the signature covers the timestamp and every byte of the body
    for changed in (body + b"&x=1", body + b" ", body.replace(str(raised.id).encode() + b"%22",
                                                              b"9" + str(raised.id).encode()
                                                              + b"%22")):
        assert door.send(changed, headers).status_code == 401
    for other in (ts - 1, ts + 1):
        assert door.send(body, {**headers, "X-Slack-Request-Timestamp": str(other)}
                         ).status_code == 401
    assert AlertBook(door.registry).get(raised.id).status == AlertStatus.OPEN

    assert door.send(body, headers).status_code == 200
    # the same signed body is taken once, whatever else the request carries
    for extra in ({"X-Extra": "1"}, {"x-slack-signature": headers["X-Slack-Signature"]},
                  {"Content-Type": "text/plain"}):
        replay = door.send(body, {**headers, **extra})
        assert replay.status_code == 409, extra
    acks = [e for e in door.audit("alert.acknowledged") if e.entity_id == str(raised.id)]
    assert len(acks) == 1


def test_a_signature_or_timestamp_that_is_not_ascii_is_refused_not_a_crash(
        door: Triage) -> None:
    raised, posted = door.alert("latin-model")
    body, headers = signed(SECRET, click(posted, USERS[RITA], "Resolve"))
    raw = {k: v.encode() for k, v in headers.items()}
    for name, value in (("X-Slack-Signature", b"v0=\xff" + b"0" * 63),
                        ("X-Slack-Signature", "v0=é".encode("latin-1")),
                        ("X-Slack-Request-Timestamp", b"\xb2\xb3")):
        answer = httpx.post(f"{door.api.url}/slack/interactions", content=body,
                            headers={**raw, name: value}, timeout=30)
        assert answer.status_code == 401, (name, value, answer.text)
    assert AlertBook(door.registry).get(raised.id).status == AlertStatus.OPEN
    assert "Traceback" not in api_log(door)


def test_big_unlengthed_undecodable_and_crowded_bodies_are_refused(door: Triage) -> None:
    raised, posted = door.alert("crowd-model")
    base = click(posted, USERS[RITA], "Acknowledge")
    big = {**base, "padding": "x" * (300 * 1024)}
    assert door.post(big).status_code == 413

    body, headers = signed(SECRET, base)
    chunks = iter([body])  # a generator body is sent chunked: no Content-Length
    assert httpx.post(f"{door.api.url}/slack/interactions", content=chunks, headers=headers,
                      timeout=30).status_code == 413

    many = {**base, "actions": base["actions"] * 6}
    assert door.post(many).status_code == 400
    deep = json.dumps(base)[:-1] + ', "view": {"state": ' + '{"a":' * 3000 + "1" + \
        "}" * 3002
    for raw in (urlencode({"payload": deep}).encode(), b"payload=" + b"%7B" * 10,
                b"a=1&payload=1&payload=2", b"payload=%FF%FE", b"payload=1&" * 6):
        assert door.send(*signed_raw(raw)).status_code == 400, raw[:40]
    # bytes that are not UTF-8 cannot be checked (slack_sdk decodes the body): not signed
    assert door.send(*signed_raw(b"payload=\xff\xfe")).status_code == 401
    assert AlertBook(door.registry).get(raised.id).status == AlertStatus.OPEN


# ---- signed clicks naming what no button carried ---------------------------------------------


def test_clicks_naming_no_alert_or_no_offered_snooze_are_refused_and_audited(
        door: Triage) -> None:
    raised, posted = door.alert("craft-model")
    before = refusals(door)
    attempts = [
        {"action_id": sm.Action.ACKNOWLEDGE.value, "value": f"{raised.id} "},
        {"action_id": sm.Action.ACKNOWLEDGE.value, "value": "9" * 30},
        {"action_id": sm.Action.RESOLVE.value, "value": "-1"},
        {"action_id": sm.Action.RESOLVE.value, "value": "\u00b2"},  # "²".isdigit()
        {"action_id": sm.Action.ACKNOWLEDGE.value, "value": "\u0661"},  # Arabic-Indic 1
        {"action_id": sm.Action.SNOOZE.value,
         "selected_option": {"value": f"{raised.id}:99d"}},
        {"action_id": sm.Action.SNOOZE.value, "selected_option": {"value": "x:1h"}},
        {"action_id": "mlc-delete", "value": str(raised.id)},
    ]
    for action in attempts:
        assert door.post(crafted(USERS[RITA], action, ts=posted["ts"])).status_code == 200
    door.told(RITA, "not a snooze choice")
    door.told(RITA, "unknown action 'mlc-delete'")
    wanted = before + len(attempts)
    deadline = time.monotonic() + 30
    while refusals(door) < wanted and time.monotonic() < deadline:
        time.sleep(0.1)
    assert refusals(door) == wanted
    same = AlertBook(door.registry).get(raised.id)
    assert (same.status, same.snoozed_until, same.acknowledged_by) == (AlertStatus.OPEN, None,
                                                                      None)
    assert "Traceback" not in api_log(door)


def quiet_task(door: Triage, package: Path, name: str) -> HumanTask:
    """An open approval task with no flow run behind it (its run is gone)."""
    spec = yaml.safe_load((package / "model.yaml").read_text())
    (package / "model.yaml").write_text(yaml.safe_dump({**spec, "name": name}))
    version, _ = submit_package(package, door.registry, Resources(door.settings).store(),
                                list(REVIEWED_TYPES), SAM)
    task, _ = TaskBook(door.registry).open_task(
        TaskKind.APPROVAL, version.id, "approval", groups=["risk"], quorum=1,
        deadline=utcnow() + timedelta(hours=1), detail={}, flow_run_id=None, holder=None,
        actor="tester")
    return task


def test_a_choice_the_task_does_not_have_opens_no_modal(door: Triage, package: Path) -> None:
    task = quiet_task(door, package, "choice-model")
    opened = len(door.slack.calls("views.open"))
    for value in (f"1:{task.id}:promote", f"1:{task.id}:retry", f"1:{task.id}", "1:x:approve",
                  f"1:{task.id}:approve:extra", f"1:{'9' * 30}:approve"):
        action = {"action_id": f"{sm.Action.DECIDE}-0", "value": value}
        assert door.post(crafted(USERS[RITA], action)).status_code == 200
    door.told(RITA, f"'promote' does not answer task {task.id}")
    door.told(RITA, "not a decision")
    assert len(door.slack.calls("views.open")) == opened
    assert TaskBook(door.registry).decisions(task.id) == []
    assert "Traceback" not in api_log(door)


def modal_submission(user: str, metadata: str, comment: str = "ok") -> dict[str, Any]:
    view = sm.decision_modal(HumanTask.model_validate({
        "id": 1, "kind": "approval", "status": "open", "version_id": "v", "model": "m",
        "number": 1, "step": "approval", "groups": [], "quorum": 1, "deadline": None,
        "flow_run_id": None, "holder": None, "detail": {}, "created_at": utcnow(),
        "closed_at": None, "outcome": ""}), "approve", 1, "C0TRIAGE:1.1", "https://x")
    return submission({**view, "private_metadata": metadata}, user, comment)


def test_forged_modal_metadata_is_refused_and_nothing_is_decided(door: Triage,
                                                                 package: Path) -> None:
    task = quiet_task(door, package, "modal-model")
    where = "C0TRIAGE:1700000000.999999"

    def meta(**changes: Any) -> str:
        return json.dumps({"alert": 1, "task": task.id, "decision": "approve",
                           "message": where, **changes})

    for bad in ("", "{", meta(decision="approve; drop"), meta(task="x"), meta(extra=1)[:-1],
                meta(task=10**30), meta(alert=-1)):
        answer = door.post(modal_submission(USERS[RITA], bad))
        assert answer.json()["response_action"] == "errors", bad
    # well formed, but a choice this task lacks; then a task whose run is gone
    assert door.post(modal_submission(USERS[RITA], meta(decision="retry"))).json() == {
        "response_action": "clear"}
    door.told(RITA, f"Your retry of task {task.id} was not taken")
    assert door.post(modal_submission(USERS[RITA], meta())).json() == {
        "response_action": "clear"}
    door.told(RITA, f"task {task.id} has no flow run")
    # a stranger's submission never reaches the flow
    stranger = door.post(modal_submission("U0STRANGER", meta()))
    assert stranger.json()["response_action"] == "errors"
    assert "not mapped" in json.dumps(stranger.json())
    assert TaskBook(door.registry).decisions(task.id) == []
    assert TaskBook(door.registry).get(task.id).status == TaskStatus.OPEN


# ---- racing decisions on a real paused flow run ----------------------------------------------


def test_approve_and_reject_racing_end_in_one_decision(flow_env: Triage, package: Path) -> None:
    door = flow_env
    run = start(door, package, "race-model", ask_approval)
    deadline = time.monotonic() + 120
    task: HumanTask | None = None
    while task is None and time.monotonic() < deadline:
        found = [t for t in TaskBook(door.registry).list(model="race-model")
                 if t.status == TaskStatus.OPEN]
        task = found[0] if found else None
        if task is None:
            time.sleep(0.2)
    assert task is not None, "no task opened"
    posted = announced(door, task)
    views = []
    for button in ("Approve", "Reject"):
        opened = len(door.slack.calls("views.open"))
        assert door.post(click(posted, USERS[RITA], button)).status_code == 200
        views.append(door.slack.wait_for("views.open", after=opened)["view"])
    bodies = [signed(SECRET, submission(view, USERS[RITA], "race " + view["submit"]["text"]))
              for view in views]
    answers: list[int] = []
    threads = [threading.Thread(target=lambda b=b: answers.append(door.send(*b).status_code))
               for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers == [200, 200]
    run.join(120)
    done = TaskBook(door.registry).get(task.id)
    made: list[TaskDecision] = TaskBook(door.registry).decisions(task.id)
    accepted = [d for d in made if d.accepted]
    assert len(accepted) == 1, made
    winner = accepted[0].decision
    assert done.status == {"approve": TaskStatus.APPROVED, "reject": TaskStatus.REJECTED}[winner]
    state = door.registry.get_version("race-model", 1).state
    assert state == {"approve": State.APPROVED, "reject": State.REJECTED}[winner]
    loser = "reject" if winner == "approve" else "approve"
    door.told(RITA, f"Your {loser} of task {task.id} was")


# ---- the packet's capability link and the report routes --------------------------------------


def test_report_and_evidence_routes_take_no_path_tricks(door: Triage) -> None:
    api = door.api.url
    for path in ("/reports/..%2F..%2Fregistry.db", "/reports/%2e%2e%2fpolicy.yaml",
                 f"/reports/{'A' * 64}.html", f"/reports/{'a' * 64}.html%0A",
                 f"/reports/{'a' * 64}.htm", f"/reports/{'a' * 63}.html"):
        answer = httpx.get(api + path, timeout=30)
        assert answer.status_code == 404, path
    token = PrincipalBook(door.registry).enroll(RITA, PrincipalKind.PERSON, "local:tester").token
    auth = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/models/..%2F..%2Fetc/versions/1/evidence",
                 "/v1/models/credit-risk/versions/1%2F..%2F2/evidence"):
        assert httpx.get(api + path, timeout=30).status_code in (401, 404), path
        assert httpx.get(api + path, headers=auth, timeout=30).status_code in (404, 422), path
    assert httpx.get(api + "/v1/models/nobody/versions/1/evidence", headers=auth,
                     timeout=30).status_code == 404


# ---- what processes and packages type, in every message --------------------------------------

HOSTILE = "<!channel> <@U0BOSS> <https://evil.example|Approve here> & *bold*"
NOW = utcnow()


def mrkdwn_texts(found: Any) -> Iterator[str]:
    """Every mrkdwn text in a Block Kit structure."""
    if isinstance(found, dict):
        if found.get("type") == "mrkdwn":
            yield found["text"]
        for value in found.values():
            yield from mrkdwn_texts(value)
    elif isinstance(found, list):
        for value in found:
            yield from mrkdwn_texts(value)


PACKET = f"https://mlc.example/center/models/{quote(HOSTILE, safe='')}/versions/2/packet"


def hostile_task(**changes: Any) -> HumanTask:
    fields: dict[str, Any] = dict(
        id=3, kind=TaskKind.APPROVAL, status=TaskStatus.OPEN, version_id="v", model=HOSTILE,
        number=2, step=HOSTILE, groups=[HOSTILE], quorum=1, deadline=None, flow_run_id="r",
        holder=None, created_at=NOW, closed_at=None, outcome=HOSTILE,
        detail={"run_url": "https://evil.example/x|<!here>",
                "packet_url": "javascript:alert(1)//https://"})
    return HumanTask.model_validate({**fields, **changes})


def hostile_alert() -> Alert:
    return Alert.model_validate(dict(
        id=7, fingerprint="f" * 32, status=AlertStatus.OPEN, severity=Severity.WARNING,
        model=HOSTILE, version=2, source=HOSTILE, monitor="approval", metric=HOSTILE,
        window="task-3", title=HOSTILE, detail=HOSTILE, value=0.5, threshold=0.6,
        run_url="data:text/html,<script>alert(1)</script>", count=1, first_seen=NOW,
        last_seen=NOW, last_notified=None, acknowledged_by=HOSTILE, resolved_by=None,
        snoozed_by=HOSTILE, snoozed_until=NOW + timedelta(hours=1)))


def decision(**changes: Any) -> TaskDecision:
    fields: dict[str, Any] = dict(id=1, task_id=3, actor=HOSTILE, decision="approve",
                                  accepted=False, via=HOSTILE, at=NOW, comment=HOSTILE,
                                  refusal=HOSTILE)
    return TaskDecision.model_validate({**fields, **changes})


@pytest.mark.parametrize("closed", [False, True])
def test_no_typed_text_makes_a_mention_or_link_in_a_task_message(closed: bool) -> None:
    task = hostile_task(**({"status": TaskStatus.REJECTED, "closed_at": NOW} if closed else {}))
    message = sm.alert_message(hostile_alert(), NOW, task, [decision()], "https://mlc.example")
    noted = sm.done_note(message, f"Acknowledged by {HOSTILE}")
    texts = list(mrkdwn_texts(noted)) + [noted["text"]]
    assert len(texts) >= 5
    assert all("<" not in t and ">" not in t for t in texts), texts
    assert any(sm.escape(HOSTILE) in t for t in texts)
    urls = [e["url"] for b in noted["blocks"] if b["type"] == "actions"
            for e in b["elements"] if "url" in e]
    # the bad run link goes; the packet is our own login-guarded page, its name encoded
    assert urls == ["https://mlc.example/center/tasks/3", PACKET]


def test_the_modal_links_only_our_urls_and_escapes_the_rest() -> None:
    modal = sm.decision_modal(hostile_task(), "approve", 7, "C0TRIAGE:1.2",
                              "https://mlc.example")
    (summary,) = [t for t in mrkdwn_texts(modal)]
    body, _, links = summary.partition("\n")
    assert "<" not in body and ">" not in body and sm.escape(HOSTILE) in body
    assert links == f"<https://mlc.example/center/tasks/3|Evidence> · <{PACKET}|Evidence packet>"
    assert json.loads(modal["private_metadata"]) == {
        "alert": 7, "task": 3, "decision": "approve", "message": "C0TRIAGE:1.2"}


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "https://a.example/|x",
    "https://a.example/>x", "https://a.example/ x", "https://a.example/\nx", "//evil.example",
    "https:" + "a" * 3000, "vbscript:x", " https://a.example"])
def test_a_link_button_takes_only_a_plain_web_url(url: str) -> None:
    assert sm.web_url(url) is None
    alert = hostile_alert().model_copy(update={"run_url": url, "window": "2024-05-01",
                                               "monitor": "drift"})
    message = sm.alert_message(alert, NOW)
    assert not [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]
                if "url" in e]
    assert element(sm.alert_message(alert.model_copy(
        update={"run_url": "https://prefect.example/runs/1"}), NOW), "Open run")["url"] == \
        "https://prefect.example/runs/1"
