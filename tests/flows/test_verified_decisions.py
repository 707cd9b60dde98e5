"""A paused approval takes a decision only from someone who proved who they are: a resume
through Prefect's own API with a member's name, a wrong or reused one-time code, or a forged
proof is refused, audited as unverified with what was claimed, and the run keeps waiting; the
member's current code (as typed in the Prefect UI form) is accepted and names them."""

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

from flows.on_model_changed import on_model_changed
from mlc_tasks import credentials
from mlc_tasks.lifecycle import State
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import HumanTask, TaskDecision, TaskStatus
from tests.flows.conftest import Stack
from tests.flows.test_on_model_changed import configure

RITA, OMAR, SAM = "rita.risk@bank.example", "omar.ops@bank.example", "sam@bank.example"
POLICY: dict[str, Any] = {
    "thresholds": {"classification": {"roc_auc": {"min": 0.6}}},
    "people": [{"id": RITA, "groups": ["risk"]}, {"id": OMAR, "groups": ["risk"]},
               {"id": SAM, "groups": ["risk"]}],
    "approvals": [{"groups": ["risk"], "quorum": 2, "deadline": "1h"}],
}


@pytest.fixture
def verified(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return configure(stack, monkeypatch, POLICY)


def start(stack: Stack, examples_dir: Path, tmp_path: Path, name: str) -> threading.Thread:
    folder = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / name))
    spec = yaml.safe_load((folder / "model.yaml").read_text())
    (folder / "model.yaml").write_text(yaml.safe_dump({**spec, "name": name}))
    submit_package(folder, stack.registry, stack.store, list(REVIEWED_TYPES), SAM)
    context = contextvars.copy_context()
    run = threading.Thread(target=context.run, args=(on_model_changed, name, 1), daemon=True)
    run.start()
    return run


def paused_task(stack: Stack, model: str, seconds: float = 90) -> HumanTask:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for task in TaskBook(stack.registry).list(model=model):
            if task.flow_run_id and state(task.flow_run_id) == StateType.PAUSED:
                return task
        time.sleep(0.3)
    raise AssertionError(f"no task of {model} waits for input")


def state(run_id: str) -> StateType | None:
    with get_client(sync_client=True) as client:
        found = client.read_flow_run(run_id).state  # type: ignore[arg-type]
    return found.type if found else None


def resume(stack: Stack, task: HumanTask, run_input: dict[str, Any]) -> TaskDecision:
    """Resume the paused run as anyone reaching Prefect could; the attempt the flow records."""
    book = TaskBook(stack.registry)
    seen = len(book.decisions(task.id))
    task = paused_task(stack, task.model)
    with get_client(sync_client=True) as client:
        answer = client.resume_flow_run(task.flow_run_id,  # type: ignore[arg-type]
                                        run_input={"comment": "", **run_input})
    assert answer.status.value == "ACCEPT", answer
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        made = book.decisions(task.id)[seen:]
        if made:
            return made[-1]
        time.sleep(0.2)
    raise AssertionError("the flow recorded no attempt")


def current_code(secret_uri: str, offset: int = 0) -> str:
    secret = secret_uri.split("secret=")[1].split("&")[0]
    return credentials.totp_code(secret, credentials.totp_counter() + offset)


def test_only_proved_decisions_count(verified: Stack, examples_dir: Path,
                                     tmp_path: Path) -> None:
    people = PrincipalBook(verified.registry)
    rita = people.enroll(RITA, PrincipalKind.PERSON, "local:test")
    omar = people.enroll(OMAR, PrincipalKind.PERSON, "local:test")
    run = start(verified, examples_dir, tmp_path, "proved-risk")
    task = paused_task(verified, "proved-risk")
    assert "Approve proved-risk:1" in task.detail["evidence"]

    named = resume(verified, task, {"decision": "approve", "approver": RITA})
    assert not named.accepted and str(named.refusal).startswith("unverified: no one-time code")
    wrong = "000000" if current_code(str(rita.otpauth_uri)) != "000000" else "111111"
    assert resume(verified, task, {"decision": "approve", "approver": RITA,
                                   "one_time_code": wrong}).refusal == (
        "unverified: wrong or expired one-time code")
    forged = credentials.mint_proof("x" * 32, credentials.DecisionClaim(
        task_id=task.id, run_id=str(task.flow_run_id), person=RITA, decision="approve",
        artifact_sha256="0" * 64, channel="api"))
    assert "not one the control-plane API minted" in str(resume(
        verified, task, {"decision": "approve", "approver": RITA, "proof": forged}).refusal)
    crafted = resume(verified, task, {"decision": "approve", "approver": RITA,
                                      "proof": "a.\u00e9"})
    assert "not one the control-plane API minted" in str(crafted.refusal)
    # the submitter is a member, and proves it, yet may not approve their own version
    sam = people.enroll(SAM, PrincipalKind.PERSON, "local:test")
    own = resume(verified, task, {"decision": "approve", "approver": SAM,
                                  "one_time_code": current_code(str(sam.otpauth_uri))})
    assert "submitted proved-risk:1 and cannot decide" in str(own.refusal)
    assert TaskBook(verified.registry).get(task.id).status == TaskStatus.OPEN

    code = current_code(str(rita.otpauth_uri))
    first = resume(verified, task, {"decision": "approve", "approver": "Rita.Risk@Bank.example",
                                    "one_time_code": code})
    assert first.accepted and (first.actor, first.via) == (RITA, "prefect-form")
    # the same code again, even by the same person towards the quorum: spent
    replay = resume(verified, task, {"decision": "approve", "approver": RITA,
                                     "one_time_code": code})
    assert replay.refusal == "unverified: this one-time code was already used"
    assert verified.registry.get_version("proved-risk", 1).state == State.TESTED
    second = resume(verified, task, {"decision": "approve", "approver": OMAR,
                                     "one_time_code": current_code(str(omar.otpauth_uri))})
    assert second.accepted
    run.join(120)
    assert verified.registry.get_version("proved-risk", 1).state == State.DEPLOYED

    trail = verified.registry.audit_events("proved-risk")
    unverified = [e for e in trail if e.action == "task.decision_unverified"]
    assert [e.detail["claimed"] for e in unverified] == [RITA] * 5
    assert all(e.actor == "unverified" for e in unverified)
    accepted = [e for e in trail if e.action == "task.decision"]
    assert [(e.actor, e.detail["via"]) for e in accepted] == [(RITA, "prefect-form"),
                                                              (OMAR, "prefect-form")]
    assert all(e.evidence_sha256 == task.detail["evidence_sha256"] for e in accepted)
