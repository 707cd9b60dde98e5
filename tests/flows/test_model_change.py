"""model-change on the session's Prefect test server: a governance change waits for the
model-risk group in a paused run, the registered (stricter) values stay in force until it is
approved, the requester cannot approve it, and a raised tier is what the next approval uses."""

from __future__ import annotations

import contextvars
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from sqlalchemy import select

from deployments.governance import request_model_change
from flows.model_change import model_change
from flows.on_model_changed import on_model_changed
from mlc_tasks import credentials
from mlc_tasks.lifecycle import State
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tables import CredentialUseRow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import HumanTask, TaskDecision, TaskKind, TaskStatus
from tests.flows.conftest import Stack
from tests.flows.test_on_model_changed import configure

RITA, ANA, SAM = "rita.risk@bank.example", "ana.lopez@bank.example", "sam@bank.example"
POLICY: dict[str, Any] = {
    "thresholds": {"classification": {"roc_auc": {"min": 0.6}}},
    # the requester is a model-risk member too: separation of duties, not membership, stops her
    "people": [{"id": RITA, "groups": ["model-risk"]}, {"id": ANA, "groups": ["model-risk"]},
               {"id": SAM, "groups": ["ml"]}],
    "approvals": [{"match": {"risk_tier": ["low"]}, "auto_approve": True},
                  {"groups": ["model-risk"], "quorum": 1, "deadline": "1h"}],
    "governance": {"groups": ["model-risk"], "deadline": "1h"},
}


@pytest.fixture
def governed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return configure(stack, monkeypatch, POLICY)


@pytest.fixture
def people(governed: Stack) -> dict[str, str]:
    """Rita and Ana enrolled: each one's authenticator secret."""
    book = PrincipalBook(governed.registry)
    return {who: str(book.enroll(who, PrincipalKind.PERSON, "local:test").otpauth_uri)
            .split("secret=")[1].split("&")[0] for who in (RITA, ANA)}


def register(stack: Stack, examples_dir: Path, tmp_path: Path, name: str, risk_tier: str) -> None:
    folder = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / name))
    spec = yaml.safe_load((folder / "model.yaml").read_text())
    (folder / "model.yaml").write_text(yaml.safe_dump({**spec, "name": name,
                                                       "risk_tier": risk_tier}))
    submit_package(folder, stack.registry, stack.store, list(REVIEWED_TYPES), SAM)


class InThread:
    """A flow run in a thread of this process (with this test's Prefect settings)."""

    def __init__(self, flow: Any, *args: Any) -> None:
        self.state: Any = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run, flow, *args),
                                       daemon=True)
        self.thread.start()

    def _run(self, flow: Any, *args: Any) -> None:
        self.state = flow(*args, return_state=True)

    def join(self, seconds: float = 120) -> Any:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the flow run did not finish"
        return self.state


def paused(stack: Stack, task_id: int, seconds: float = 90) -> HumanTask:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task = TaskBook(stack.registry).get(task_id)
        if task.flow_run_id:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(task.flow_run_id).state  # type: ignore[arg-type]
            if state is not None and state.type == StateType.PAUSED:
                return task
        time.sleep(0.3)
    raise AssertionError(f"task {task_id} does not wait for input")


def decide(stack: Stack, task_id: int, person: str, secret: str, decision: str,
           comment: str = "") -> TaskDecision:
    """Resume the paused run as the form does, with the person's current one-time code."""
    book = TaskBook(stack.registry)
    seen = len(book.decisions(task_id))
    task = paused(stack, task_id)
    code = fresh_code(stack, person, secret)
    with get_client(sync_client=True) as client:
        answer = client.resume_flow_run(task.flow_run_id, run_input={  # type: ignore[arg-type]
            "decision": decision, "approver": person, "one_time_code": code,
            "comment": comment})
    assert answer.status.value == "ACCEPT", answer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        made = book.decisions(task_id)[seen:]
        if made:
            return made[-1]
        time.sleep(0.2)
    raise AssertionError("the flow recorded no attempt")


def fresh_code(stack: Stack, person: str, secret: str) -> str:
    """The person's code of a step later than any spent: each is accepted once and only
    forwards, and this module's tests decide one after another within seconds."""
    while True:
        now = credentials.totp_counter()
        with stack.registry.transaction() as session:
            spent = [int(v) for v in session.execute(select(CredentialUseRow.value).where(
                CredentialUseRow.principal_id == person,
                CredentialUseRow.kind == "totp")).scalars()]
        first = max([now, *(s + 1 for s in spent)])
        if first <= now + credentials.TOTP_DRIFT_STEPS:
            return credentials.totp_code(secret, first)
        time.sleep(1)  # every step in reach is spent: the next one comes


def test_lowering_waits_for_model_risk_and_the_requester_cannot_approve(
        governed, people, examples_dir, tmp_path) -> None:
    register(governed, examples_dir, tmp_path, "lower-risk", "high")
    outcome = request_model_change(Resources(), "lower-risk", {"risk_tier": "low"}, ANA)
    assert outcome.applied == [] and outcome.groups == ["model-risk"]
    run = InThread(model_change, "lower-risk", outcome.change_id)
    task = paused(governed, int(outcome.change_id))
    assert task.kind == TaskKind.CHANGE and "Change the governance of lower-risk" in (
        task.detail["evidence"])
    assert governed.registry.get_model("lower-risk").risk_tier == "high"

    own = decide(governed, task.id, ANA, people[ANA], "approve")
    assert not own.accepted and f"{ANA} requested the change" in str(own.refusal)
    assert governed.registry.get_model("lower-risk").risk_tier == "high"
    assert decide(governed, task.id, RITA, people[RITA], "approve", "backtests are flat").accepted
    state = run.join()
    assert state.is_completed() and "applied" in state.result()
    assert governed.registry.get_model("lower-risk").risk_tier == "low"
    assert governed.registry.get_version("lower-risk", 1).state == State.SUBMITTED
    trail = [(e.actor, e.action) for e in governed.registry.audit_events("lower-risk")]
    assert (ANA, "model.change_requested") in trail
    approved = trail.index((RITA, "task.change.approved"))  # written with the change
    assert trail[approved + 1] == (RITA, "model.updated")
    assert "alert.resolved" in [action for _, action in trail[approved:]]  # the waiting alert


def test_a_rejected_change_leaves_the_model_unchanged(governed, people, examples_dir,
                                                      tmp_path) -> None:
    register(governed, examples_dir, tmp_path, "keep-risk", "high")
    before = governed.registry.get_model("keep-risk")
    outcome = request_model_change(Resources(), "keep-risk", {"owner": "bob@bank.example",
                                                            "risk_tier": "medium"}, ANA)
    run = InThread(model_change, "keep-risk", outcome.change_id)
    assert decide(governed, int(outcome.change_id), RITA, people[RITA], "reject",
                  "the owner stays accountable").accepted
    state = run.join()
    assert state.is_completed() and "not applied (rejected)" in state.result()
    assert governed.registry.get_model("keep-risk") == before


def test_the_run_takes_the_change_from_the_registry_only(governed, examples_dir,
                                                         tmp_path) -> None:
    register(governed, examples_dir, tmp_path, "one-risk", "high")
    register(governed, examples_dir, tmp_path, "other-risk", "high")
    outcome = request_model_change(Resources(), "one-risk", {"team": "valuation"}, ANA)
    wrong_model = model_change("other-risk", outcome.change_id, return_state=True)
    assert wrong_model.is_failed() and "a change of one-risk, not other-risk" in (
        wrong_model.message)
    assert TaskBook(governed.registry).get(int(outcome.change_id)).flow_run_id is None
    not_a_change = model_change("one-risk", 10_000, return_state=True)
    assert not_a_change.is_failed() and "no change 10000" in not_a_change.message


def test_a_raised_tier_is_what_the_next_approval_uses(governed, people, examples_dir,
                                                      tmp_path) -> None:
    register(governed, examples_dir, tmp_path, "raise-risk", "low")
    outcome = request_model_change(Resources(), "raise-risk", {"risk_tier": "high"}, ANA)
    assert [c.new for c in outcome.applied] == ["high"] and outcome.change_id is None
    run = InThread(on_model_changed, "raise-risk", 1)
    deadline = time.monotonic() + 120
    while not (found := [t for t in TaskBook(governed.registry).list(model="raise-risk")
                         if t.kind == TaskKind.APPROVAL]):
        assert time.monotonic() < deadline, "low-risk auto-approval was used"
        time.sleep(0.3)
    assert governed.registry.get_version("raise-risk", 1).state == State.TESTED
    assert decide(governed, found[0].id, RITA, people[RITA], "reject", "end of test").accepted
    assert run.join().is_completed()
    assert governed.registry.get_version("raise-risk", 1).state == State.REJECTED
    assert TaskBook(governed.registry).get(found[0].id).status == TaskStatus.REJECTED
