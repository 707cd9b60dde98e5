"""The example process of processes/ end to end: a custom event sent through the control-plane
API starts the quarterly review, the model-risk group sees 90 days of evidence, a verified
member's answer decides (the version's submitter may not answer), and the answer acts —
retraining is requested as the member, retiring is recorded as them. A run started with a
forged or spent event id is refused and audited."""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from flows.catalog import load_processes
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import VersionRecord
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import HumanTask, TaskKind, TaskStatus
from tests.flows.conftest import PeopleApi, Stack
from tests.flows.test_on_model_changed import configure, new_package
from tests.flows.test_verified_decisions import paused_task

RITA, OMAR, SAM = "rita.risk@bank.example", "omar.ops@bank.example", "sam@bank.example"
MIA = "mia.mlops@bank.example"
POLICY: dict[str, Any] = {
    "people": [{"id": RITA, "groups": ["model-risk"]}, {"id": OMAR, "groups": ["model-risk"]},
               {"id": SAM, "groups": ["model-risk"]}, {"id": MIA, "groups": ["ml-platform"]}],
}
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def reviewing(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return configure(stack, monkeypatch, POLICY)


def quarterly_review() -> Any:
    [found] = [d for d in load_processes([REPO / "processes"])
               if d.process.name == "quarterly-review"]
    return found.flow


def in_production(stack: Stack, examples_dir: Path, tmp_path: Path, name: str
                  ) -> VersionRecord:
    """A version of `name` submitted by the test's submitter, as production serves it."""
    version, _ = submit_package(new_package(examples_dir, tmp_path, name, "high"),
                                stack.registry, stack.store, list(REVIEWED_TYPES), SAM)
    for state in (State.TESTED, State.APPROVED):
        stack.registry.transition(version.id, state, "tester")
    stack.registry.record_deployment(version.id, "prod", "tester", "in production")
    return stack.registry.get_version(name, 1)


def send_event(api: PeopleApi, person: str, model: str, **payload: Any) -> httpx.Response:
    return httpx.post(f"{api.process.url}/v1/events", timeout=30,
                      headers={"Authorization": f"Bearer {api.token(person)}"},
                      json={"name": "quarterly-review", "model": model, "payload": payload})


def answer(api: PeopleApi, person: str, task: HumanTask, choice: str,
           comment: str = "") -> dict[str, Any]:
    reply = httpx.post(f"{api.process.url}/v1/tasks/{task.id}/decision", timeout=60,
                       headers={"Authorization": f"Bearer {api.token(person)}"},
                       json={"decision": choice, "comment": comment})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def run_in_thread(model: str, event: str) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = quarterly_review()(model, event)
        except Exception as exc:  # noqa: BLE001 — the test reads it
            outcome["error"] = exc

    thread = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
    thread.start()
    return thread, outcome


def test_the_event_starts_a_review_and_a_members_answer_retrains(
        reviewing: Stack, people_api: PeopleApi, examples_dir: Path, tmp_path: Path) -> None:
    version = in_production(reviewing, examples_dir, tmp_path, "reviewed-risk")
    sent = send_event(people_api, MIA, "reviewed-risk", days=30)
    assert sent.status_code == 200, sent.text
    assert sent.json()["processes"] == ["quarterly-review"]
    run, outcome = run_in_thread("reviewed-risk", sent.json()["request"])
    task = paused_task(reviewing, "reviewed-risk")
    assert (task.kind, task.process, task.choices) == (
        TaskKind.QUESTION, "quarterly-review", ["keep", "retrain", "retire"])
    assert "evidence" in task.detail["evidence"] and "reviewed-risk:1" in task.detail["evidence"]

    wrong = httpx.post(f"{people_api.process.url}/v1/tasks/{task.id}/decision", timeout=60,
                       headers={"Authorization": f"Bearer {people_api.token(OMAR)}"},
                       json={"decision": "approve"})
    assert wrong.status_code == 400 and "does not answer question task" in wrong.text
    refused = answer(people_api, SAM, task, "retrain")  # submitted the version under review
    assert not refused["decision"]["accepted"]
    assert "submitted reviewed-risk:1" in refused["decision"]["refusal"]
    assert "is not a member" in answer(people_api, MIA, task, "keep")["decision"]["refusal"]
    taken = answer(people_api, OMAR, task, "retrain", "drift for two months")
    assert taken["decision"]["accepted"] and taken["task"]["status"] == TaskStatus.ANSWERED
    run.join(120)
    assert outcome == {"result": "reviewed-risk:1: retrain"}
    audit = reviewing.registry.audit_events("reviewed-risk")
    asked = [e for e in audit if e.action == "model.retrain_requested"]
    assert [e.actor for e in asked] == [OMAR]  # the challenger will be Omar's
    opened = [e for e in audit if e.action == "task.question.opened"]
    assert [e.actor for e in opened] == ["quarterly-review"]  # the process that asked
    assert [e.actor for e in audit if e.action == "process.requested"] == [MIA]
    assert reviewing.registry.get_version("reviewed-risk", 1).state == version.state


def test_a_retire_answer_retires_the_version_as_the_member(
        reviewing: Stack, people_api: PeopleApi, examples_dir: Path, tmp_path: Path) -> None:
    in_production(reviewing, examples_dir, tmp_path, "retired-risk")
    run, outcome = run_in_thread("retired-risk", send_event(
        people_api, MIA, "retired-risk").json()["request"])
    task = paused_task(reviewing, "retired-risk")
    answer(people_api, RITA, task, "retire", "superseded by the new scorecard")
    run.join(120)
    assert outcome == {"result": "retired-risk:1: retire"}
    retired = reviewing.registry.get_version("retired-risk", 1)
    assert retired.state == State.RETIRED
    [moved] = [e for e in reviewing.registry.audit_events("retired-risk")
               if e.action == "version.retired"]
    assert moved.actor == RITA and "superseded" in moved.reason


def test_a_forged_or_spent_event_id_starts_nothing(
        reviewing: Stack, people_api: PeopleApi, examples_dir: Path, tmp_path: Path) -> None:
    in_production(reviewing, examples_dir, tmp_path, "forged-risk")
    with pytest.raises(InvalidInputError, match="event: no request 'made-up'"):
        quarterly_review()("forged-risk", "made-up")
    request = send_event(people_api, MIA, "forged-risk").json()["request"]
    with pytest.raises(InvalidInputError, match="event: no request"):  # another model's
        quarterly_review()("reviewed-elsewhere", request)
    run, outcome = run_in_thread("forged-risk", request)
    task = paused_task(reviewing, "forged-risk")
    with pytest.raises(InvalidInputError, match="already started quarterly-review"):
        quarterly_review()("forged-risk", request)
    answer(people_api, OMAR, task, "keep")
    run.join(120)
    assert outcome == {"result": "forged-risk:1: keep"}
    refused = [e for e in reviewing.registry.audit_events("forged-risk")
               if e.action == "process.refused"]
    assert len(refused) == 2 and {e.actor for e in refused} == {"quarterly-review"}
    assert TaskBook(reviewing.registry).get(task.id).outcome == "answered keep by 1"


def test_the_api_refuses_an_event_nobody_expects_or_a_bad_payload(
        reviewing: Stack, people_api: PeopleApi, examples_dir: Path, tmp_path: Path) -> None:
    in_production(reviewing, examples_dir, tmp_path, "checked-risk")
    url, seen = f"{people_api.process.url}/v1/events", len(reviewing.registry.audit_events())
    token = {"Authorization": f"Bearer {people_api.token(MIA)}"}
    assert httpx.post(url, json={"name": "quarterly-review", "model": "checked-risk"},
                      timeout=30).status_code == 401
    from mlc_tasks.people import PrincipalKind
    from mlc_tasks.registry.principals import PrincipalBook

    ci = PrincipalBook(reviewing.registry).enroll("ci-bot", PrincipalKind.SERVICE, "local:test")
    service = httpx.post(url, headers={"Authorization": f"Bearer {ci.token}"}, timeout=30,
                         json={"name": "quarterly-review", "model": "checked-risk"})
    assert service.status_code == 403 and "'operate' scope" in service.text
    seen = len(reviewing.registry.audit_events())
    bad = send_event(people_api, MIA, "checked-risk", days=3)
    assert bad.status_code == 400 and "payload.days" in bad.json()["detail"]
    unknown = httpx.post(url, headers=token, timeout=30,
                         json={"name": "drop-tables", "model": "checked-risk"})
    assert unknown.status_code == 404 and "no process expects mlc.custom.drop-tables" in (
        unknown.json()["detail"])
    for name in ("mlc.model.ready", "../x", "Quarterly"):  # only custom events, by name
        assert httpx.post(url, headers=token, timeout=30, json={
            "name": name, "model": "checked-risk"}).status_code == 400, name
    assert send_event(people_api, MIA, "no-such-model").status_code == 404
    assert len(reviewing.registry.audit_events()) == seen  # nothing recorded for any of them


def test_the_settings_find_the_bundled_processes(tmp_path: Path) -> None:
    assert MlcSettings().process_folders() == [REPO / "processes"]
    assert MlcSettings(process_paths=[tmp_path]).process_folders() == [tmp_path]
