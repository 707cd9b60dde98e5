"""Which runs only claim to run, and which schedules have gone quiet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlc_tasks.run_health import RunView, claims_to_run, silenced

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REFUSED = ("CANCELLED", "Cancelled", "Deployment concurrency limit reached.")
DONE = ("COMPLETED", "Completed", "")
CRASHED = ("CRASHED", "Crashed", "its process ended")
LATE = ("SCHEDULED", "Late", "")
WAITING = ("SCHEDULED", "Scheduled", "")


def runs(*states: tuple[str, str, str], every: float = 60, deployment: str = "data-sensor"
         ) -> list[RunView]:
    """One run per state, the last one due a minute ago, each `every` seconds apart."""
    count = len(states)
    return [RunView(id=f"r{i}", name=f"run-{i}", deployment=deployment, state_type=t,
                    state_name=n, message=m,
                    expected_start=NOW - timedelta(seconds=60 + every * (count - 1 - i)))
            for i, (t, n, m) in enumerate(states)]


@pytest.mark.parametrize(("state", "claims"), [
    ("RUNNING", True), ("PENDING", True), ("PAUSED", True), ("CANCELLING", True),
    ("SCHEDULED", False), ("COMPLETED", False), ("CRASHED", False), ("CANCELLED", False),
])
def test_what_claims_to_run(state: str, claims: bool) -> None:
    assert claims_to_run(RunView(id="r", name="n", deployment="d", state_type=state)) is claims


@pytest.mark.parametrize(("history", "quiet"), [
    ((DONE, DONE, DONE), None),
    ((REFUSED, DONE, REFUSED), None),  # one refused run now and then is no silence
    ((DONE, REFUSED, REFUSED), None),
    ((REFUSED, REFUSED, REFUSED), "its last 3 runs were refused: Deployment concurrency"),
    ((DONE, REFUSED, REFUSED, REFUSED), "its last 3 runs were refused"),
    ((CRASHED, CRASHED, CRASHED), "its last 3 runs ended Crashed: its process ended"),
    ((CRASHED, REFUSED, CRASHED), None),
    ((REFUSED, REFUSED), None),  # too few to say
    ((DONE, WAITING), None),  # due a minute ago: the runner may still pick it up
])
def test_silenced_by_history(history: tuple[tuple[str, str, str], ...], quiet: str | None
                             ) -> None:
    found = silenced(runs(*history), NOW)
    if quiet is None:
        assert found == []
    else:
        [silence] = found
        assert silence.deployment == "data-sensor" and quiet in silence.reason


def test_a_run_that_never_starts_is_late() -> None:
    history = runs(DONE, LATE, LATE, LATE, every=180)  # due 7, 4 and 1 minutes ago
    [silence] = silenced(history, NOW)
    assert "2 scheduled run(s) did not start; the oldest (run-1) was due 7 min ago" in \
        silence.reason


def test_runs_not_yet_due_and_other_deployments_do_not_count() -> None:
    future = [RunView(id=f"f{i}", name="later", deployment="data-sensor",
                      state_type="SCHEDULED", expected_start=NOW + timedelta(minutes=i))
              for i in range(1, 5)]
    healthy = runs(DONE, DONE, DONE, deployment="monitor")
    assert silenced(runs(REFUSED, REFUSED, REFUSED) + future + healthy, NOW) == [
        silenced(runs(REFUSED, REFUSED, REFUSED), NOW)[0]]
