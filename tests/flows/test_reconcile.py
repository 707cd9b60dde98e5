"""Settling runs that only claim to run, on a real Prefect server: a crashed run gives back
its deployment's concurrency slot, so the next scheduled run is not refused; and a schedule
whose runs are refused shows up as silenced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.settings import PREFECT_API_URL
from prefect.states import Pending, Running

from deployments.reconcile import PrefectRuns, scheduled_runs, settle_orphaned_runs
from mlc_tasks.run_health import silenced


@flow(name="reconcile-probe")
def probe() -> None:
    """Never run: the test moves its runs' states by hand, as a killed process leaves them."""


def one_slot_deployment(name: str, tags: list[str]) -> str:
    return str(probe.to_deployment(
        name=name, tags=tags, interval=3600,
        concurrency_limit=ConcurrencyLimitConfig(
            limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)).apply())


def start_run(client, deployment_id: str) -> tuple[str, str]:  # noqa: ANN001
    """A run taken to Pending (which takes the slot) and, if it got it, Running."""
    run = client.create_flow_run_from_deployment(deployment_id)
    pending = client.set_flow_run_state(run.id, Pending())
    if pending.state.type.value == "PENDING":
        client.set_flow_run_state(run.id, Running())
    return str(run.id), client.read_flow_run(run.id).state.type.value


def test_a_settled_run_gives_back_its_slot_and_foreign_runs_are_left_alone() -> None:
    ours = one_slot_deployment("reconcile-ours", ["mlc"])
    foreign = one_slot_deployment("reconcile-foreign", ["someone-else"])
    prefect = PrefectRuns(str(PREFECT_API_URL.value()))
    with get_client(sync_client=True) as client:
        stuck, state = start_run(client, ours)
        assert state == "RUNNING"
        refused, state = start_run(client, ours)
        assert state == "CANCELLED", "the killed run holds the only slot"
        other, _ = start_run(client, foreign)

        settled = settle_orphaned_runs(prefect, "its process ended with the previous `mlc up`")
        assert stuck in [r.id for r in settled] and other not in [r.id for r in settled]
        crashed = client.read_flow_run(stuck).state
        assert crashed.type.value == "CRASHED"
        assert crashed.message == "its process ended with the previous `mlc up`"
        assert client.read_flow_run(other).state.type.value == "RUNNING"

        _, state = start_run(client, ours)
        assert state == "RUNNING", "the slot came back with the crash"
        assert settle_orphaned_runs(prefect, "again") != []  # the new one claims to run too
        assert refused not in [r.id for r in settle_orphaned_runs(prefect, "again")]


def test_refused_runs_of_a_scheduled_deployment_are_seen_as_silenced() -> None:
    deployment = one_slot_deployment("reconcile-quiet", ["mlc"])
    prefect = PrefectRuns(str(PREFECT_API_URL.value()))
    with get_client(sync_client=True) as client:
        start_run(client, deployment)
        for _ in range(3):
            assert start_run(client, deployment)[1] == "CANCELLED"
    now = datetime.now(UTC) + timedelta(seconds=1)
    quiet = [s for s in silenced(scheduled_runs(prefect, now, timedelta(minutes=5)), now)
             if s.deployment == "reconcile-quiet"]
    assert len(quiet) == 1 and "its last 3 runs were refused" in quiet[0].reason
