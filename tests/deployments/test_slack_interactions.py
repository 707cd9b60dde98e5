"""Slack triage against the real control-plane API process and a real registry, with a
loopback Slack (tests/slack_api.py) taking the app's Web API calls and our clicks signed as
Slack signs them: acknowledge, resolve and snooze an alert; approve, reject, retry and abort a
real paused flow run's task — each changes the record as the verified person and updates the
message. Forged, stale, replayed, unmapped, revoked, non-member and submitter clicks are refused
with nothing changed, told to the clicker and audited."""

from __future__ import annotations

import contextvars
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect import flow

from flows.human_tasks import open_task, wait_for_decision
from flows.steps import reviewed
from mlc_tasks.alert_records import Alert, AlertSignal, AlertStatus, Severity
from mlc_tasks.errors import StepAbortedError
from mlc_tasks.lifecycle import State
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources, resources
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import HumanTask, TaskKind, TaskStatus
from tests.conftest import TOKEN, ApiProcess
from tests.receivers import Receiver, serve
from tests.slack_api import SlackApi, click, element, elements, signed, submission

SECRET, BOT = "slack-signing-secret-for-tests", "xoxb-fake"
CHANNEL = "C0TRIAGE"
RITA, OMAR, SAM, VIC = ("rita.risk@bank.example", "omar.ops@bank.example",
                        "sam@bank.example", "vic@bank.example")
USERS = {RITA: "U0RITA", OMAR: "U0OMAR", SAM: "U0SAM", VIC: "U0VIC"}
POLICY = {"people": [{"id": RITA, "name": "Rita Risk", "groups": ["risk"],
                      "slack_user_id": USERS[RITA]},
                     {"id": SAM, "groups": ["risk"], "slack_user_id": USERS[SAM]},
                     {"id": OMAR, "groups": ["ops"], "slack_user_id": USERS[OMAR]},
                     {"id": VIC, "groups": ["ops"], "slack_user_id": USERS[VIC]}],
          "approvals": [{"groups": ["risk"], "quorum": 1}],
          "reviews": {"groups": ["risk"]}}


class Triage:
    """The module's installation: home, registry, loopback Slack and the API process."""

    def __init__(self, home: Path, receiver: Receiver, prefect_api: str) -> None:
        self.policy_file = home.parent / "policy.yaml"
        self.policy_file.write_text(yaml.safe_dump(POLICY))
        self.slack = SlackApi(receiver, BOT)
        self.env = {"MLC_HOME": str(home), "MLC_ADMIN_TOKEN": TOKEN,
                    "MLC_POLICY_FILE": str(self.policy_file), "MLC_SLACK_BOT_TOKEN": BOT,
                    "MLC_SLACK_CHANNEL": CHANNEL, "MLC_SLACK_API_URL": self.slack.api_url,
                    "MLC_OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]',
                    "MLC_ALLOW_HTTP_LOOPBACK": "true",
                    "MLC_PUBLIC_URL": "https://mlc.example"}
        self.settings = MlcSettings(home=home, admin_token=TOKEN, policy_file=self.policy_file,
                                    slack_bot_token=BOT, slack_channel=CHANNEL,
                                    slack_api_url=self.slack.api_url,
                                    outbound_allowed_hosts=["127.0.0.1"],
                                    allow_http_loopback=True)
        self.registry = Registry(self.settings.registry_url(),
                                 audit_key=self.settings.resolved_audit_key())
        self.api = ApiProcess(self.settings, **self.env, MLC_SLACK_SIGNING_SECRET=SECRET,
                              PREFECT_API_URL=prefect_api).start()

    def post(self, payload: dict[str, Any], secret: str = SECRET,
             timestamp: int | None = None) -> httpx.Response:
        body, headers = signed(secret, payload, timestamp)
        return self.send(body, headers)

    def send(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.api.url}/slack/interactions", content=body, headers=headers,
                          timeout=30)

    def alert(self, name: str) -> tuple[Alert, dict[str, Any]]:
        """A new alert, delivered by the Slack app as a flow would: (alert, posted message)."""
        signal = AlertSignal(severity=Severity.CRITICAL, model=name, source="monitor",
                             monitor="drift", metric="psi", window="2024-05-01",
                             title=f"{name}: drift high",
                             run_url="http://127.0.0.1:4200/runs/flow-run/1")
        raised, _ = AlertBook(self.registry).raise_alert(signal, ["slack"], timedelta(0))
        Resources(self.settings, registry=self.registry).deliver_alerts()
        return raised, self.slack.wait_for("chat.postMessage", lambda m: name in m["text"])

    def updated(self, ts: str, where: Any = lambda _: True) -> dict[str, Any]:
        return self.slack.wait_for("chat.update", lambda m: m["ts"] == ts and where(m))

    def told(self, person_or_user: str, what: str) -> dict[str, Any]:
        user = USERS.get(person_or_user, person_or_user)
        return self.slack.wait_for("chat.postEphemeral",
                                   lambda m: m["user"] == user and what in m["text"])

    def audit(self, action: str) -> list[Any]:
        return [e for e in self.registry.audit_events() if e.action == action]


@pytest.fixture(scope="module")
def triage(tmp_path_factory: pytest.TempPathFactory, prefect_server: str) -> Iterator[Triage]:
    with serve() as receiver:
        started = Triage(tmp_path_factory.mktemp("slack") / "home", receiver, prefect_server)
        yield started
        started.api.stop()
        started.registry.close()


@pytest.fixture
def flow_env(triage: Triage, monkeypatch: pytest.MonkeyPatch) -> Triage:
    """The flows of this test read the module's settings from the environment, as served
    runs do: their alerts go to the loopback Slack through the app."""
    for key, value in triage.env.items():
        monkeypatch.setenv(key, value)
    return triage


# ---- alerts ----------------------------------------------------------------------------------


def test_acknowledge_then_resolve_from_the_message_as_the_verified_person(
        triage: Triage) -> None:
    raised, posted = triage.alert("ack-model")
    assert triage.post(click(posted, USERS[RITA], "Acknowledge")).status_code == 200
    acked = AlertBook(triage.registry).get(raised.id)
    assert (acked.status, acked.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, RITA)
    update = triage.updated(posted["ts"], lambda m: "Acknowledged by" in json.dumps(m))
    assert "Acknowledged by Rita Risk (rita.risk@bank.example) at" in json.dumps(update)
    assert [e.get("text", e.get("placeholder"))["text"] for e in elements(update)] == [
        "Resolve", "Snooze", "Open run"]

    assert triage.post(click(update, USERS[RITA], "Resolve")).status_code == 200
    done = AlertBook(triage.registry).get(raised.id)
    assert (done.status, done.resolved_by) == (AlertStatus.RESOLVED, RITA)
    final = triage.updated(posted["ts"], lambda m: "Resolved by Rita" in json.dumps(m))
    assert elements(final) == []
    trail = [(e.action, e.actor) for e in triage.registry.audit_events()
             if e.entity == "alert" and e.entity_id == str(raised.id)]
    assert ("alert.acknowledged", RITA) in trail and ("alert.resolved", RITA) in trail


def test_snooze_holds_the_alert_for_the_chosen_time(triage: Triage) -> None:
    raised, posted = triage.alert("snooze-model")
    before = utcnow()
    assert triage.post(click(posted, USERS[OMAR], "Snooze", option="4 hours")).status_code == 200
    snoozed = AlertBook(triage.registry).get(raised.id)
    assert snoozed.snoozed_by == OMAR and snoozed.status == AlertStatus.OPEN
    assert snoozed.snoozed_until is not None
    assert before + timedelta(hours=4) <= snoozed.snoozed_until <= utcnow() + timedelta(hours=4)
    update = triage.updated(posted["ts"], lambda m: "Snoozed by" in json.dumps(m))
    assert "Snooze" not in [e.get("placeholder", {}).get("text") for e in elements(update)]
    # a repeat while snoozed is counted and not notified
    again, queued = AlertBook(triage.registry).raise_alert(
        AlertSignal(severity=Severity.CRITICAL, model="snooze-model", source="monitor",
                    monitor="drift", metric="psi", window="2024-05-01", title="again"),
        ["slack"], timedelta(0))
    assert (again.count, queued) == (2, False)


def test_forged_stale_and_replayed_clicks_change_nothing(triage: Triage) -> None:
    raised, posted = triage.alert("attack-model")
    payload = click(posted, USERS[RITA], "Acknowledge")
    body, headers = signed(SECRET, payload)
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert triage.send(body, unsigned).status_code == 401
    assert triage.post(payload, secret="not-the-secret").status_code == 401
    assert triage.post(payload, timestamp=int(time.time()) - 301).status_code == 401
    assert triage.post(payload, timestamp=int(time.time()) + 600).status_code == 401
    tampered = body.replace(b"U0RITA", b"U0OMAR")
    assert triage.send(tampered, headers).status_code == 401
    assert triage.send(body, {**headers, "X-Slack-Request-Timestamp": "soon"}).status_code == 401
    assert AlertBook(triage.registry).get(raised.id).status == AlertStatus.OPEN

    assert triage.send(body, headers).status_code == 200
    replay = triage.send(body, headers)
    assert replay.status_code == 409 and "replayed" in replay.json()["detail"]
    acks = [e for e in triage.audit("alert.acknowledged") if e.entity_id == str(raised.id)]
    assert len(acks) == 1
    # a second, fresh click is its own action: refused by the alert's state, and told
    assert triage.post(click(posted, USERS[RITA], "Acknowledge")).status_code == 200
    triage.told(RITA, f"alert {raised.id} is acknowledged, not open")


def test_unmapped_and_revoked_users_are_refused_told_and_audited(triage: Triage) -> None:
    raised, posted = triage.alert("stranger-model")
    assert triage.post(click(posted, "U0STRANGER", "Resolve")).status_code == 200
    triage.told("U0STRANGER", "not mapped to a person of the policy")
    people = PrincipalBook(triage.registry)
    people.enroll(VIC, PrincipalKind.PERSON, "local:tester")
    people.revoke(VIC, "local:tester")
    assert triage.post(click(posted, USERS[VIC], "Resolve")).status_code == 200
    triage.told(VIC, "was revoked")
    assert AlertBook(triage.registry).get(raised.id).status == AlertStatus.OPEN
    refused = {e.entity_id: e for e in triage.audit("slack.refused")}
    assert refused["U0STRANGER"].actor == "slack:U0STRANGER"
    assert "revoked" in refused[USERS[VIC]].reason


def test_without_a_signing_secret_nothing_is_accepted(triage: Triage) -> None:
    api = ApiProcess(triage.settings, **triage.env).start()
    try:
        body, headers = signed(SECRET, {"type": "block_actions"})
        answer = httpx.post(f"{api.url}/slack/interactions", content=body, headers=headers)
        assert answer.status_code == 503
        assert "MLC_SLACK_SIGNING_SECRET" in answer.json()["detail"]
    finally:
        api.stop()


# ---- tasks of real paused flow runs ----------------------------------------------------------


@flow(name="slack-approval")
def ask_approval(model: str) -> str:
    """An approval step as on-model-changed's: a task, announced, waited on."""
    ctx = resources()
    version = ctx.registry.get_version(model, 1)
    task = open_task(ctx, TaskKind.APPROVAL, version.id, "approval", groups=["risk"],
                     quorum=1, deadline=timedelta(hours=1),
                     detail={"packet_url": "https://mlc.example/packets/x.html"})
    done = wait_for_decision(ctx, task, f"## Approve {version.ref}",
                             lambda: ctx.policy().members(["risk"]))
    return done.status.value


@flow(name="slack-review")
def failing_step(model: str) -> str:
    """A step that always fails: each failure opens a review."""
    version = resources().registry.get_version(model, 1)

    def work() -> str:
        raise RuntimeError("the scanner is down")

    try:
        return reviewed(version, "scan", work)
    except StepAbortedError:
        return "aborted"


def start(triage: Triage, package: Path, name: str, process: Any) -> threading.Thread:
    spec = yaml.safe_load((package / "model.yaml").read_text())
    (package / "model.yaml").write_text(yaml.safe_dump({**spec, "name": name}))
    version, _ = submit_package(package, triage.registry, Resources(triage.settings).store(),
                                list(REVIEWED_TYPES), SAM)
    triage.registry.transition(version.id, State.TESTED, "tester")
    run = threading.Thread(target=contextvars.copy_context().run, args=(process, name),
                           daemon=True)
    run.start()
    return run


def waiting(triage: Triage, model: str, seen: int = 0) -> tuple[HumanTask, dict[str, Any]]:
    """The model's open task once its run waits, and the message that announced it."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tasks = [t for t in TaskBook(triage.registry).list(model=model)
                 if t.status == TaskStatus.OPEN and t.id > seen]
        if tasks:
            return tasks[0], announced(triage, tasks[0])
        time.sleep(0.2)
    raise AssertionError(f"no task of {model} opened")


def announced(triage: Triage, task: HumanTask) -> dict[str, Any]:
    return triage.slack.wait_for("chat.postMessage", lambda m: f"task {task.id}:" in m["text"])


def decide(triage: Triage, posted: dict[str, Any], person: str, button: str,
           comment: str | None) -> httpx.Response:
    """Click the decision button, then submit the modal it opened with `comment`."""
    opened = len(triage.slack.calls("views.open"))
    assert triage.post(click(posted, USERS[person], button)).status_code == 200
    view = triage.slack.wait_for("views.open", after=opened)
    assert view["view"]["submit"]["text"] == button
    return triage.post(submission(view["view"], USERS[person], comment))


def test_approve_with_a_comment_after_the_submitter_and_a_non_member_are_refused(
        flow_env: Triage, package: Path) -> None:
    triage = flow_env
    run = start(triage, package, "slack-approve", ask_approval)
    task, posted = waiting(triage, "slack-approve")
    assert [e["text"]["text"] for e in elements(posted)][:4] == [
        "Approve", "Reject", "Evidence", "Evidence packet"]
    assert element(posted, "Evidence")["url"] == f"https://mlc.example/center/tasks/{task.id}"

    assert decide(triage, posted, SAM, "Approve", "mine is good").json() == {
        "response_action": "clear"}
    triage.told(SAM, "submitted slack-approve:1 and cannot decide")
    assert decide(triage, posted, OMAR, "Approve", "").status_code == 200
    triage.told(OMAR, f"{OMAR} is not a member of risk")
    assert TaskBook(triage.registry).get(task.id).status == TaskStatus.OPEN
    assert triage.registry.get_version("slack-approve", 1).state == State.TESTED

    assert decide(triage, posted, RITA, "Approve", "evidence holds up").status_code == 200
    run.join(120)
    done = TaskBook(triage.registry).get(task.id)
    assert done.status == TaskStatus.APPROVED
    made = TaskBook(triage.registry).decisions(task.id)
    assert [(d.actor, d.accepted, d.via) for d in made] == [
        (SAM, False, "slack"), (OMAR, False, "slack"), (RITA, True, "slack")]
    assert made[-1].comment == "evidence holds up"
    final = triage.updated(posted["ts"], lambda m: "*APPROVED*" in json.dumps(m))
    assert [e["text"]["text"] for e in elements(final)][:2] == ["Evidence", "Evidence packet"]
    assert "approve by rita.risk@bank.example via slack" in json.dumps(final)


def test_reject_needs_a_reason_and_records_it(flow_env: Triage, package: Path) -> None:
    triage = flow_env
    run = start(triage, package, "slack-reject", ask_approval)
    task, posted = waiting(triage, "slack-reject")
    empty = decide(triage, posted, RITA, "Reject", "  ")
    assert empty.json()["response_action"] == "errors"
    assert TaskBook(triage.registry).decisions(task.id) == []
    assert decide(triage, posted, RITA, "Reject", "fairness gap in group B").json() == {
        "response_action": "clear"}
    run.join(120)
    assert TaskBook(triage.registry).get(task.id).status == TaskStatus.REJECTED
    assert TaskBook(triage.registry).decisions(task.id)[-1].comment == "fairness gap in group B"
    assert triage.registry.get_version("slack-reject", 1).state == State.REJECTED
    triage.updated(posted["ts"], lambda m: "*REJECTED*" in json.dumps(m))


def test_retry_then_abort_a_failed_step(flow_env: Triage, package: Path) -> None:
    triage = flow_env
    run = start(triage, package, "slack-review", failing_step)
    first, posted = waiting(triage, "slack-review")
    assert [e["text"]["text"] for e in elements(posted)][:2] == ["Abort", "Retry"]
    assert decide(triage, posted, RITA, "Retry", "").status_code == 200
    second, again = waiting(triage, "slack-review", seen=first.id)
    assert TaskBook(triage.registry).get(first.id).status == TaskStatus.RETRY
    triage.updated(posted["ts"], lambda m: "*RETRY*" in json.dumps(m))
    assert decide(triage, again, RITA, "Abort", "scanner vendor is down all week").status_code \
        == 200
    run.join(120)
    assert TaskBook(triage.registry).get(second.id).status == TaskStatus.ABORTED
    assert TaskBook(triage.registry).decisions(second.id)[-1].actor == RITA
    triage.updated(again["ts"], lambda m: "*ABORTED*" in json.dumps(m))
