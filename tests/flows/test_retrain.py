"""Retraining on a real Prefect server with real runtimes on loopback: a challenger trained on
new data is compared with the champion on the same held-out rows; a clear winner is promoted
after approval, a tie keeps the champion, racing promotions leave one champion, and a critical
breach soon after a promotion puts the previous champion back."""

from __future__ import annotations

import contextvars
import hashlib
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.input.actions import read_flow_run_input
from prefect.input.run_input import keyset_from_paused_state

from flows.change_management import retire_champions, rollback_review
from flows.daily_backtest import daily_backtest
from flows.retrain import retrain
from mlc_tasks import runtimes
from mlc_tasks.alert_records import Severity
from mlc_tasks.errors import InvalidInputError, UnsafeLocationError
from mlc_tasks.evaluation import version_model
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import VersionRecord
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.runtimes import RuntimeClient
from mlc_tasks.scoring import frame_from_rows
from mlc_tasks.settings import REVIEWED_TYPES
from tests.conftest import TOKEN
from tests.flows.conftest import PeopleApi, Stack
from tests.flows.test_on_model_changed import (
    POLICY,
    configure,
    new_package,
    serving,
    submit,
    waiting_task,
)
from tests.receivers import serve

RETRAINING = [
    {"match": {"model": ["retrain-rollback"]}, "auto_rollback": True, "grace_period": "1h",
     "critical": {"roc_auc": {"min": 0.99}}},
    {"match": {"model": ["retrain-retire"]}, "grace_period": "1s"},
]


@pytest.fixture
def rt(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return configure(stack, monkeypatch, {**POLICY, "retraining": RETRAINING})


def champion_in_prod(stack: Stack, examples_dir: Path, tmp_path: Path, name: str,
                     risk_tier: str) -> VersionRecord:
    """A copy of credit-risk serving production, its data location a copy of the example's
    days (new rows for it are dropped there: a retraining reads only under it)."""
    days = data_location(tmp_path)
    if not days.exists():
        shutil.copytree(examples_dir / "daily" / "credit-risk", days)
    folder = new_package(examples_dir, tmp_path, name, risk_tier, data_location=str(days))
    version = submit(stack, folder)
    for state in (State.TESTED, State.APPROVED):
        version = stack.registry.transition(version.id, state, "tester")
    prod = stack.registry.get_runtime("prod")
    runtimes.deploy_version(stack.registry, RuntimeClient(prod.url, TOKEN), prod, version,
                            "tester", "the champion")
    return stack.registry.get_version(name, 1)


def data_location(tmp_path: Path) -> Path:
    return tmp_path / "daily" / "credit-risk"


def new_rows(examples_dir: Path, tmp_path: Path, rows: slice = slice(None)) -> str:
    """Fresh labelled rows from the changed world (examples/generate.py) in the data location,
    as a file URL."""
    frame = pd.read_csv(examples_dir / "new-data" / "credit-risk.csv").iloc[rows]
    path = data_location(tmp_path) / f"new-{rows.start}-{rows.stop}.csv"
    frame.to_csv(path, index=False)
    return path.as_uri()


class InThread:
    """A flow run in a thread of this process, so the test can decide its tasks meanwhile."""

    def __init__(self, flow: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.state: Any = None
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, daemon=True, args=(
            self._run, flow, args, kwargs))
        self.thread.start()

    def _run(self, flow: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
             ) -> None:
        self.state = flow(*args, **kwargs, return_state=True)

    def join(self, seconds: float = 180) -> Any:
        self.thread.join(seconds)
        assert not self.thread.is_alive(), "the flow run did not finish"
        return self.state


def form_description(flow_run_id: str) -> str:
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(flow_run_id).state  # type: ignore[arg-type]
    keyset = keyset_from_paused_state(state)
    return str(read_flow_run_input(keyset["description"], flow_run_id=flow_run_id))


def prod_predictions(stack: Stack, model: str, rows: list[dict[str, Any]]) -> list[Any]:
    answer = httpx.post(f"{stack.runtimes['prod'].url}/models/{model}/invocations",
                        json={"dataframe_records": rows}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def local_predictions(version: VersionRecord, rows: list[dict[str, Any]]) -> list[Any]:
    model = version_model(version, list(REVIEWED_TYPES))
    return model.predict(frame_from_rows(rows, version.input_schema)).tolist()


def test_a_clearly_better_challenger_is_promoted_after_approval(
        rt, people_api: PeopleApi, examples_dir, tmp_path) -> None:
    champion = champion_in_prod(rt, examples_dir, tmp_path, "retrain-win", "high")
    data = new_rows(examples_dir, tmp_path)
    run = InThread(retrain, "retrain-win", data=data, trigger="new data")
    task = waiting_task(rt, "retrain-win", seconds=180)
    challenger = rt.registry.get_version_by_id(task.version_id)
    assert (challenger.number, task.kind) == (2, "approval")
    # the sensor asked (no person): the system submitted it, and the owner may not approve
    assert challenger.created_by == "system:new-data"
    assert task.detail["excluded"] == {champion_owner(rt, "retrain-win"): "owns"}
    compared = ChampionBook(rt.registry).comparison(challenger.id)
    assert compared is not None and compared.outcome == "promote", compared
    assert "DeLong" in compared.reason and compared.champion_version_id == champion.id
    evidence = form_description(task.flow_run_id)  # what the approver reads in the form
    assert "Challenger retrain-win:2 against champion retrain-win:1" in evidence
    assert "Decision: **promote**" in evidence
    assert "- **roc_auc** (deciding): " in evidence and "held-out rows" in evidence

    done = people_api.decide("rita", "approve", task.id, "the comparison is clear")
    assert done.exit_code == 0, done.output
    state = run.join()
    assert state.is_completed(), state.message

    promoted = rt.registry.get_version("retrain-win", 2)
    assert promoted.state == State.DEPLOYED
    raw = Path(data.removeprefix("file://")).read_bytes()
    assert promoted.parent_version_id == champion.id  # lineage of the challenger
    assert promoted.training_data_sha256 == hashlib.sha256(raw).hexdigest()
    assert (promoted.seed, promoted.parameters) == (7, champion.parameters)
    assert serving(rt, "prod", promoted.model)["version_id"] == promoted.id
    assert ChampionBook(rt.registry).champion("retrain-win").id == promoted.id
    assert rt.registry.get_version("retrain-win", 1).state == State.DEPLOYED  # ready for rollback
    # both tested on the same held-out rows; the challenger's test is that one
    held = {v.number: [r for r in rt.registry.test_results(v.id) if r.kind in ("holdout", "test")
                       and "held-out" in r.dataset_uri] for v in (champion, promoted)}
    assert held[1][0].dataset_sha256 == held[2][0].dataset_sha256 == compared.dataset_sha256
    trail = [(e.action, e.entity_id) for e in rt.registry.audit_events("retrain-win")]
    assert ("version.compared", champion.id) in trail and ("version.compared", promoted.id) in trail
    assert ("task.decision", str(task.id)) in trail or any(a == "task.decision" for a, _ in trail)
    listed = people_api.mlc("rita", "comparisons", "retrain-win")
    assert listed.exit_code == 0 and "promote" in listed.stdout


def champion_owner(stack: Stack, model: str) -> str:
    return stack.registry.get_model(model).owner


def test_whoever_asked_for_a_retraining_submits_the_challenger_and_may_not_approve_it(
        rt, people_api: PeopleApi, examples_dir, tmp_path) -> None:
    champion_in_prod(rt, examples_dir, tmp_path, "retrain-asked", "high")
    data = new_rows(examples_dir, tmp_path, slice(0, 1500))
    request = str(uuid.uuid4())
    with rt.registry.transaction() as session:  # what the API records for `mlc retrain`
        rt.registry.append_audit(session, actor="omar", action="model.retrain_requested",
                                 entity="model", entity_id="retrain-asked",
                                 model="retrain-asked", detail={"request": request})
    run = InThread(retrain, "retrain-asked", data=data, trigger="manual", request=request)
    task = waiting_task(rt, "retrain-asked", seconds=180)
    assert rt.registry.get_version_by_id(task.version_id).created_by == "omar"
    own = people_api.decide("omar", "approve", task.id)
    assert own.exit_code == 1 and "omar submitted retrain-asked:2" in own.output
    assert people_api.decide("rita", "reject", task.id, "enough for the test").exit_code == 0
    run.join()
    # the same request again is not a second retraining by omar
    replay = retrain("retrain-asked", data=data, trigger="manual", request=request,
                     return_state=True)
    assert replay.is_failed() and "already carried out" in str(replay.message)
    forged = retrain("retrain-asked", data=data, trigger="manual", request=str(uuid.uuid4()),
                     return_state=True)
    assert forged.is_failed() and "no retraining of retrain-asked was requested" in str(
        forged.message)
    refused = [e for e in rt.registry.audit_events("retrain-asked")
               if e.action == "model.retraining_refused"]
    assert len(refused) == 2


def test_a_tied_challenger_is_insufficient_evidence_and_the_champion_stays(
        rt, examples_dir, tmp_path) -> None:
    champion = champion_in_prod(rt, examples_dir, tmp_path, "retrain-tie", "high")
    # the data location's days come from the world the champion was trained in
    state = retrain("retrain-tie", trigger="schedule", return_state=True)
    assert state.is_completed(), state.message
    compared = ChampionBook(rt.registry).comparisons("retrain-tie")
    assert [c.outcome for c in compared] == ["insufficient evidence"], compared
    challenger = rt.registry.get_version("retrain-tie", 2)
    assert challenger.state == State.REJECTED
    assert ChampionBook(rt.registry).champion("retrain-tie").id == champion.id
    assert serving(rt, "prod", champion.model)["version_id"] == champion.id
    assert TaskBook(rt.registry).list(model="retrain-tie") == []
    [asked] = [e for e in rt.registry.audit_events("retrain-tie")
               if e.action == "model.retraining"]
    assert (asked.actor, asked.detail["trigger"]) == ("retrain", "schedule")  # not the actor

    few = retrain("retrain-tie", data=new_rows(examples_dir, tmp_path, slice(0, 150)),
                  return_state=True)
    assert few.is_completed(), few.message
    last = ChampionBook(rt.registry).comparisons("retrain-tie")[-1]
    assert last.outcome == "insufficient evidence" and "only 45 labelled rows" in last.reason, last
    assert ChampionBook(rt.registry).champion("retrain-tie").id == champion.id


def test_two_promotions_finishing_together_leave_exactly_one_champion(
        rt, examples_dir, tmp_path) -> None:
    champion_in_prod(rt, examples_dir, tmp_path, "retrain-race", "low")  # auto-approved
    halves = [new_rows(examples_dir, tmp_path, part) for part in (slice(0, 3000),
                                                                  slice(3000, 6000))]
    runs = [InThread(retrain, "retrain-race", data=half) for half in halves]
    states = [run.join(240) for run in runs]
    assert all(s.is_completed() for s in states), [s.message for s in states]
    challengers = [rt.registry.get_version("retrain-race", n) for n in (2, 3)]
    assert sorted(c.state for c in challengers) == [State.DEPLOYED, State.REJECTED]
    winner = next(c for c in challengers if c.state == State.DEPLOYED)
    loser = next(c for c in challengers if c.state == State.REJECTED)
    assert ChampionBook(rt.registry).champion("retrain-race").id == winner.id
    assert serving(rt, "prod", winner.model)["version_id"] == winner.id
    rejected = [e for e in rt.registry.audit_events("retrain-race")
                if e.action == "version.rejected" and e.entity_id == loser.id]
    assert "the champion is now" in rejected[0].reason


def test_a_replaced_champion_is_retired_after_its_grace_period(
        rt, examples_dir, tmp_path) -> None:
    champion = champion_in_prod(rt, examples_dir, tmp_path, "retrain-retire", "low")
    state = retrain("retrain-retire", data=new_rows(examples_dir, tmp_path), return_state=True)
    assert state.is_completed(), state.message
    assert rt.registry.get_version("retrain-retire", 2).state == State.DEPLOYED
    time.sleep(1.1)  # the policy's grace period for this model is one second
    assert "retrain-retire:1" in retire_champions()
    assert rt.registry.get_version_by_id(champion.id).state == State.RETIRED
    assert rt.registry.get_version("retrain-retire", 2).state == State.DEPLOYED


def test_a_critical_breach_within_the_grace_period_rolls_back(
        rt, people_api: PeopleApi, examples_dir, tmp_path) -> None:
    champion = champion_in_prod(rt, examples_dir, tmp_path, "retrain-rollback", "low")
    data = new_rows(examples_dir, tmp_path)
    assert retrain("retrain-rollback", data=data, return_state=True).is_completed()
    promoted = rt.registry.get_version("retrain-rollback", 2)
    rows = pd.read_csv(data.removeprefix("file://")).head(300).to_dict("records")
    before, after = local_predictions(champion, rows), local_predictions(promoted, rows)
    assert before != after  # the two versions are told apart by what they predict
    assert prod_predictions(rt, "retrain-rollback", rows) == after

    yesterday = (utcnow().date() - pd.Timedelta(days=1)).isoformat()
    daily_backtest("retrain-rollback", yesterday)  # the policy's critical bound: roc_auc 0.99

    assert serving(rt, "prod", champion.model)["version_id"] == champion.id
    assert prod_predictions(rt, "retrain-rollback", rows) == before
    assert ChampionBook(rt.registry).champion("retrain-rollback").id == champion.id
    alerts = AlertBook(rt.registry).list(model="retrain-rollback")
    rolled = [a for a in alerts if a.monitor == "auto-rollback"]
    assert rolled and rolled[0].severity == Severity.CRITICAL, alerts
    assert "rolled back to retrain-rollback:1" in rolled[0].title

    review = InThread(rollback_review, "retrain-rollback", 2, "roc_auc below 0.99")
    task = waiting_task(rt, "retrain-rollback")
    assert (task.kind, task.step) == ("review", "rollback")
    done = people_api.decide("mia", "abort", task.id)
    assert done.exit_code == 0, done.output
    assert review.join().is_completed()
    assert rt.registry.get_version("retrain-rollback", 2).state == State.RETIRED
    assert serving(rt, "prod", champion.model)["version_id"] == champion.id


def test_a_retraining_reads_only_under_the_models_data_location(
        rt, examples_dir, tmp_path) -> None:
    """A notification's or a person's `data` must lie under the model's data location: a file
    elsewhere, even under a data root, is refused before it is read, and nothing is written."""
    champion_in_prod(rt, examples_dir, tmp_path, "retrain-confined", "low")
    elsewhere = tmp_path / "elsewhere.csv"  # under the test's data root, not the model's folder
    shutil.copy(examples_dir / "new-data" / "credit-risk.csv", elsewhere)
    with serve() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        for data, reason in [
                (elsewhere.as_uri(), "not under"),
                (f"{data_location(tmp_path)}/../../elsewhere.csv", "not under"),
                (str(rt.settings.home / "registry.db"), "outside the allowed locations"),
                ("file:///proc/self/environ", "outside the allowed locations"),
                (f"webhdfs://127.0.0.1:{port}/x.csv", "webhdfs:// protocol is not allowed"),
                (f"https://u:hunter2@127.0.0.1:{port}/x.csv", "credentials in the URL"),
                ("memory://x.csv", "memory:// protocol is not allowed"),
                ("../elsewhere.csv", "not an absolute path")]:
            state = retrain("retrain-confined", data=data, trigger="notification",
                            return_state=True)
            assert state.is_failed(), data
            with pytest.raises(UnsafeLocationError, match=f"^data: .*{reason}") as info:
                state.result()
            assert "hunter2" not in str(info.value)
        assert receiver.requests == []
    assert [v.number for v in rt.registry.list_versions("retrain-confined")] == [1]
    assert not [e for e in rt.registry.audit_events("retrain-confined")
                if e.action == "model.retraining"]


def test_a_retraining_asked_with_an_unknown_trigger_is_refused(
        rt, examples_dir, tmp_path) -> None:
    """An event may carry any `trigger`; it once became the audited actor. One outside the
    fixed set is refused naming the field, before anything is read or written."""
    champion_in_prod(rt, examples_dir, tmp_path, "retrain-trigger", "low")
    data = new_rows(examples_dir, tmp_path)
    for trigger in ("rita.risk@bank.example", "manual (rita)", "", "Schedule"):
        state = retrain("retrain-trigger", data=data, trigger=trigger, return_state=True)
        assert state.is_failed(), trigger
        with pytest.raises(InvalidInputError, match="^trigger: .* is not one of 'manual'"):
            state.result()
    assert [v.number for v in rt.registry.list_versions("retrain-trigger")] == [1]
    assert not [e for e in rt.registry.audit_events("retrain-trigger")
                if e.action == "model.retraining"]
