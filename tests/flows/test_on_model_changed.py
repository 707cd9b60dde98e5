"""on-model-changed on a real Prefect server with real runtimes on loopback: the paths a
version takes to production, the people who decide on the way, and what happens on failure."""

from __future__ import annotations

import contextvars
import json
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from sqlalchemy import update

from flows.on_model_changed import on_model_changed
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.tables import RuntimeRow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import HumanTask, TaskStatus
from tests.conftest import TOKEN, runtime_serving
from tests.flows.conftest import PeopleApi, Stack

SUBMITTER = "sam"
POLICY: dict[str, Any] = {
    "thresholds": {"classification": {"roc_auc": {"min": 0.6}}},
    "people": [{"id": "rita", "groups": ["risk"]}, {"id": "omar", "groups": ["risk"]},
               {"id": SUBMITTER, "groups": ["risk"]}, {"id": "mia", "groups": ["platform"]}],
    "approvals": [
        {"match": {"risk_tier": ["low"]}, "auto_approve": True},
        {"match": {"risk_tier": ["medium"]}, "groups": ["risk"], "quorum": 2, "deadline": "1h"},
        {"match": {"risk_tier": ["high"]}, "groups": ["risk"], "quorum": 1, "deadline": "1h"},
    ],
    "reviews": {"groups": ["platform"], "deadline": "1h"},
}


@pytest.fixture
def omc(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return configure(stack, monkeypatch, POLICY)


@pytest.fixture
def people(people_api: PeopleApi) -> PeopleApi:
    return people_api


def configure(stack: Stack, monkeypatch: pytest.MonkeyPatch, policy: dict[str, Any]) -> Stack:
    """The flow and the CLI read their settings from the environment, as served runs do."""
    stack.policy_file.write_text(yaml.safe_dump(policy))
    monkeypatch.setenv("MLC_HOME", str(stack.settings.home))
    monkeypatch.setenv("MLC_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("MLC_POLICY_FILE", str(stack.policy_file))
    monkeypatch.setenv("MLC_DEPLOY_RETRY_DELAYS", "[0.2]")
    return stack


def new_package(examples_dir: Path, tmp_path: Path, name: str, risk_tier: str,
                **changes: Any) -> Path:
    """A copy of the credit-risk example under another name and risk tier."""
    folder = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / name))
    spec = yaml.safe_load((folder / "model.yaml").read_text())
    spec.update(name=name, risk_tier=risk_tier, **changes)
    (folder / "model.yaml").write_text(yaml.safe_dump(spec))
    return folder


def submit(stack: Stack, folder: Path) -> VersionRecord:
    version, _ = submit_package(folder, stack.registry, stack.store, list(REVIEWED_TYPES),
                                SUBMITTER)
    return version


class FlowInThread:
    """The flow run in a thread of this process (with this test's Prefect settings), so the
    test can decide its tasks while it waits."""

    def __init__(self, model: str, number: int = 1) -> None:
        self.state: Any = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._run, model, number),
                                       daemon=True)
        self.thread.start()

    def _run(self, model: str, number: int) -> None:
        self.state = on_model_changed(model, number, return_state=True)

    def join(self, seconds: float = 120) -> Any:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the flow run did not finish"
        return self.state


def waiting_task(stack: Stack, model: str, seconds: float = 90) -> HumanTask:
    """The model's open task, once its flow run is paused for input."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for task in TaskBook(stack.registry).list(model=model):
            if task.flow_run_id and paused(task.flow_run_id):
                return task
        time.sleep(0.3)
    raise AssertionError(f"no task of {model} waits for input")


def paused(flow_run_id: str) -> bool:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state  # type: ignore[arg-type]
    return state is not None and state.type == StateType.PAUSED


def predictions(stack: Stack, env: str, model: str) -> list[Any]:
    body = json.loads((Path(__file__).parents[2] / "examples" / "credit-risk" / "sample.json")
                      .read_text())
    answer = httpx.post(f"{stack.runtimes[env].url}/models/{model}/invocations", json=body,
                        timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def serving(stack: Stack, env: str, model: str) -> dict[str, Any]:
    found = runtime_serving(stack.runtimes[env].url, model)
    assert found is not None, f"{env} serves nothing"
    return found


def actions(stack: Stack, model: str) -> list[str]:
    return [e.action for e in stack.registry.audit_events(model)]


# ---- paths to production ------------------------------------------------------------------


def test_low_risk_auto_approves_to_production_and_a_rerun_deploys_nothing(
        omc, examples_dir, tmp_path) -> None:
    version = submit(omc, new_package(examples_dir, tmp_path, "auto-risk", "low"))
    state = on_model_changed("auto-risk", 1, return_state=True)
    assert state.is_completed(), state.message
    assert omc.registry.get_version("auto-risk", 1).state == State.DEPLOYED
    assert serving(omc, "prod", version.model)["version_id"] == version.id
    assert serving(omc, "qa", version.model)["version_id"] == version.id
    assert len(predictions(omc, "prod", version.model)) == 3
    trail = actions(omc, "auto-risk")
    for step in ("version.submitted", "test_result.recorded", "version.tested",
                 "version.scanned", "version.approved", "version.deployed_to", "version.deployed"):
        assert step in trail, (step, trail)
    approved = next(e for e in omc.registry.audit_events("auto-risk")
                    if e.action == "version.approved")
    assert approved.actor == "policy:auto-approve"
    deployments = len(omc.registry.deployments("auto-risk"))
    assert deployments == 2  # QA then production

    again = on_model_changed("auto-risk", 1, return_state=True)
    assert again.is_completed() and "nothing to do" in again.message
    assert len(omc.registry.deployments("auto-risk")) == deployments


def test_a_group_member_approves_in_the_cli_and_the_flow_goes_on(
        omc, people, examples_dir, tmp_path) -> None:
    version = submit(omc, new_package(examples_dir, tmp_path, "member-risk", "high"))
    run = FlowInThread("member-risk")
    task = waiting_task(omc, "member-risk")
    assert (task.kind, task.groups, task.quorum) == ("approval", ["risk"], 1)
    listing = people.mlc("rita", "tasks", "--json")
    listed = [t for t in json.loads(listing.stdout) if t["id"] == task.id]
    assert listed and listed[0]["model"] == "member-risk"
    table = people.mlc("rita", "tasks")
    assert f"/runs/flow-run/{task.flow_run_id}" in table.stdout.replace("\n", "")

    done = people.decide("rita", "approve", task.id, "fine by risk")
    assert done.exit_code == 0, done.output
    assert "approved" in done.stdout
    assert run.join().is_completed()
    assert omc.registry.get_version("member-risk", 1).state == State.DEPLOYED
    assert serving(omc, "prod", version.model)["version_id"] == version.id
    decision = next(e for e in omc.registry.audit_events("member-risk")
                    if e.action == "task.decision")
    assert (decision.actor, decision.reason) == ("rita", "fine by risk")


def test_rejection_ends_the_version_rejected_with_the_reason(
        omc, people, examples_dir, tmp_path) -> None:
    submit(omc, new_package(examples_dir, tmp_path, "reject-risk", "high"))
    run = FlowInThread("reject-risk")
    task = waiting_task(omc, "reject-risk")
    no_reason = people.decide("omar", "reject", task.id, " ")
    assert no_reason.exit_code == 1 and "needs a reason" in no_reason.output
    done = people.decide("omar", "reject", task.id, "recall too low for lending")
    assert done.exit_code == 0, done.output
    assert run.join().is_completed()
    version = omc.registry.get_version("reject-risk", 1)
    assert version.state == State.REJECTED
    rejected = next(e for e in omc.registry.audit_events("reject-risk")
                    if e.action == "version.rejected")
    assert rejected.actor == "omar" and "recall too low for lending" in rejected.reason
    assert omc.registry.deployments("reject-risk") == []


def test_non_member_and_self_approval_are_refused_and_audited(
        omc, people, examples_dir, tmp_path) -> None:
    submit(omc, new_package(examples_dir, tmp_path, "refuse-risk", "high"))
    run = FlowInThread("refuse-risk")
    task = waiting_task(omc, "refuse-risk")
    outsider = people.decide("mallory", "approve", task.id)
    assert outsider.exit_code == 1
    assert "mallory is not a member of risk" in outsider.output
    own = people.decide(SUBMITTER, "approve", task.id)
    assert own.exit_code == 1
    assert f"{SUBMITTER} submitted refuse-risk:1 and cannot decide on its approval" in (
        own.output)
    assert TaskBook(omc.registry).get(task.id).status == TaskStatus.OPEN
    refused = [e for e in omc.registry.audit_events("refuse-risk")
               if e.action == "task.decision_refused"]
    assert [e.actor for e in refused] == ["mallory", SUBMITTER]
    assert people.decide("rita", "reject", task.id, "end of test").exit_code == 0
    run.join()


def test_quorum_of_two_needs_two_distinct_members(omc, people, examples_dir, tmp_path) -> None:
    version = submit(omc, new_package(examples_dir, tmp_path, "quorum-risk", "medium"))
    run = FlowInThread("quorum-risk")
    task = waiting_task(omc, "quorum-risk")
    first = people.decide("rita", "approve", task.id)
    assert first.exit_code == 0 and "task is open" in first.stdout
    twice = people.decide("rita", "approve", task.id)
    assert twice.exit_code == 1 and "already given 'approve'" in twice.output
    assert omc.registry.get_version("quorum-risk", 1).state == State.TESTED
    second = people.decide("omar", "approve", task.id)
    assert second.exit_code == 0 and "approved by 2 of 2" in second.stdout
    assert run.join().is_completed()
    assert serving(omc, "prod", version.model)["version_id"] == version.id


def test_deadline_escalates_and_the_version_ends_rejected_expired(
        omc, examples_dir, tmp_path) -> None:
    policy = dict(POLICY, approvals=[{"groups": ["risk"], "deadline": "3s"}])
    omc.policy_file.write_text(yaml.safe_dump(policy))
    submit(omc, new_package(examples_dir, tmp_path, "late-risk", "high"))
    state = FlowInThread("late-risk").join()
    assert state.is_completed()  # the timer expired the task: the pause itself never timed out
    assert omc.registry.get_version("late-risk", 1).state == State.REJECTED
    task = TaskBook(omc.registry).list(status=None, model="late-risk")[0]
    assert (task.status, task.outcome) == (TaskStatus.EXPIRED, "expired")
    rejected = next(e for e in omc.registry.audit_events("late-risk")
                    if e.action == "version.rejected")
    assert rejected.reason == "expired"
    escalations = [a for a in AlertBook(omc.registry).list(model="late-risk")
                   if a.monitor == "escalation"]
    assert len(escalations) == 1 and escalations[0].severity == "critical"
    assert "expired" in escalations[0].title


# ---- failures go to a person --------------------------------------------------------------


def test_training_failure_opens_a_review_and_retry_succeeds(
        omc, people, examples_dir, tmp_path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    data_url = f"file://{lake}/train.csv"
    folder = new_package(examples_dir, tmp_path, "train-risk", "low", artifact=None, lineage={},
                         training={"estimator": "logistic_regression", "params": {"C": 1.0},
                                   "data": data_url, "seed": 3})
    (folder / "model.skops").unlink()
    submit(omc, folder)
    run = FlowInThread("train-risk")
    task = waiting_task(omc, "train-risk")
    assert (task.kind, task.step) == ("review", "train")
    assert "train.csv" in task.detail["error"]
    assert people.decide("rita", "retry", task.id).exit_code == 1
    shutil.copy(examples_dir / "credit-risk" / "data" / "train.csv", lake / "train.csv")
    done = people.decide("mia", "retry", task.id)
    assert done.exit_code == 0, done.output
    assert run.join().is_completed()
    version = omc.registry.get_version("train-risk", 1)
    assert version.state == State.DEPLOYED
    assert version.training_data_sha256 and version.artifact_sha256
    assert serving(omc, "prod", version.model)["version_id"] == version.id
    assert "version.trained" in actions(omc, "train-risk")


def silence(registry: Registry, runtime: str) -> None:
    """Make a runtime's heartbeat old, so that later deploys stop choosing it."""
    with registry.transaction() as session:
        session.execute(update(RuntimeRow).where(RuntimeRow.name == runtime)
                        .values(last_heartbeat=datetime(2000, 1, 1)))


def test_deploy_to_a_runtime_that_is_down_opens_a_review_and_abort_fails_it(
        omc, people, examples_dir, tmp_path, request) -> None:
    capabilities = httpx.get(f"{omc.runtimes['prod'].url}/health").json()["capabilities"]
    down = {"env": "prod", "zone": "down"}
    omc.registry.upsert_runtime("prod-down", "http://127.0.0.1:9", down,
                                capabilities)  # registered, heartbeat fresh, nothing listens
    request.addfinalizer(lambda: silence(omc.registry, "prod-down"))
    policy = dict(POLICY, deployment={"qa": {"env": "qa"}, "prod": down})
    omc.policy_file.write_text(yaml.safe_dump(policy))
    submit(omc, new_package(examples_dir, tmp_path, "down-risk", "low"))
    run = FlowInThread("down-risk")
    task = waiting_task(omc, "down-risk")
    assert (task.kind, task.step) == ("review", "deploy-prod")
    assert "did not answer" in task.detail["error"]
    done = people.decide("mia", "abort", task.id, "prod-b is being rebuilt")
    assert done.exit_code == 0, done.output
    state = run.join()
    assert state.is_failed()
    assert omc.registry.get_version("down-risk", 1).state == State.FAILED
    alerts = AlertBook(omc.registry).list(model="down-risk")
    assert any(a.monitor == "deployment" and a.severity == "critical" for a in alerts)


def test_a_task_is_mirrored_to_servicenow_and_closed_with_its_decision(
        omc, people, examples_dir, tmp_path, monkeypatch) -> None:
    from tests.mlc_tasks.test_channels import FakeTable
    from tests.receivers import serve

    with serve() as receiver:
        tasks, incidents = FakeTable(receiver, "sc_task"), FakeTable(receiver, "incident")
        for key, value in {"MLC_SERVICENOW_URL": receiver.url, "MLC_SERVICENOW_USER": "mlc",
                           "MLC_SERVICENOW_PASSWORD": "pw", "MLC_ALLOW_HTTP_LOOPBACK": "true",
                           "MLC_OUTBOUND_ALLOWED_HOSTS": '["127.0.0.1"]'}.items():
            monkeypatch.setenv(key, value)
        submit(omc, new_package(examples_dir, tmp_path, "snow-risk", "high"))
        run = FlowInThread("snow-risk")
        task = waiting_task(omc, "snow-risk")
        [record] = tasks.rows.values()
        assert record["correlation_id"] == f"mlc-task-{task.id}"
        assert record["short_description"] == "approval: snow-risk:1 (approval)"
        assert "groups: risk; quorum 1" in record["description"]
        [waiting] = incidents.rows.values()
        assert f"task {task.id}: snow-risk:1 needs 1 approval(s) from risk" in (
            waiting["short_description"])

        assert people.decide("omar", "approve", task.id).exit_code == 0
        assert run.join().is_completed()
        assert len(tasks.rows) == 1, "one record per task: updated, never created twice"
        assert tasks.patches[-1][1] == {"state": "3",
                                        "close_notes": "approved: approved by 1 of 1 needed"}
        assert incidents.patches[-1][1]["state"] == "6"  # the waiting alert is resolved
