"""What Prefect's runs of our deployments say about the installation: which runs only claim to
run (their process is gone), and which schedules have gone quiet (runs refused a concurrency
slot, failing, or never starting), so a restart can settle the first and alert on the second."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

# states whose run needs a live process; after a restart of `mlc up` nothing holds them
CLAIMS_TO_RUN = frozenset({"PENDING", "RUNNING", "CANCELLING", "PAUSED"})
ENDED_BADLY = frozenset({"FAILED", "CRASHED"})


class RunView(BaseModel):
    """The part of a Prefect flow run these rules read."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    deployment: str
    state_type: str
    state_name: str = ""
    message: str = ""
    expected_start: datetime | None = None


class Silence(BaseModel):
    """A scheduled deployment that is not doing its work."""

    model_config = ConfigDict(frozen=True)

    deployment: str
    reason: str


def claims_to_run(run: RunView) -> bool:
    return run.state_type in CLAIMS_TO_RUN


def refused_a_slot(run: RunView) -> bool:
    return run.state_type == "CANCELLED" and "concurrency limit" in run.message.lower()


def silenced(runs: list[RunView], now: datetime, late_after: timedelta = timedelta(minutes=3),
             in_a_row: int = 3) -> list[Silence]:
    """Each deployment whose due runs show it is not working: a run still waiting to start
    `late_after` past its time, or the last `in_a_row` due runs all refused a concurrency slot
    or all failed. `now` and the runs' times are UTC."""
    found = []
    for deployment in sorted({r.deployment for r in runs}):
        due = sorted((r for r in runs if r.deployment == deployment and r.expected_start
                      and r.expected_start <= now), key=lambda r: r.expected_start)  # type: ignore[arg-type, return-value]
        reason = _late(due, now, late_after) or _stuck(due[-in_a_row:], in_a_row)
        if reason:
            found.append(Silence(deployment=deployment, reason=reason))
    return found


def _late(due: list[RunView], now: datetime, late_after: timedelta) -> str | None:
    late = [r for r in due if r.state_type == "SCHEDULED" and r.expected_start
            and now - r.expected_start > late_after]
    if not late:
        return None
    assert late[0].expected_start is not None
    minutes = (now - late[0].expected_start).total_seconds() / 60
    return (f"{len(late)} scheduled run(s) did not start; the oldest ({late[0].name}) was due "
            f"{minutes:.0f} min ago and is {late[0].state_name or 'Scheduled'}: is `mlc up` "
            "(or a worker) serving it?")


def _stuck(last: list[RunView], in_a_row: int) -> str | None:
    if len(last) < in_a_row:
        return None
    if all(refused_a_slot(r) for r in last):
        return (f"its last {in_a_row} runs were refused: {last[-1].message} A run that "
                "claims to be running holds the slot; `mlc up` settles such runs when it "
                "starts, or cancel it in the Prefect UI")
    if all(r.state_type in ENDED_BADLY for r in last):
        return (f"its last {in_a_row} runs ended {last[-1].state_name or last[-1].state_type}: "
                f"{last[-1].message}")
    return None


def holder() -> str:
    """host:pid of this process, kept with a task its run waits on: `mlc up` restarts runs
    whose holder is gone."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_alive(holder: str | None) -> bool:
    """Whether the process holding a paused run still lives (unknown on another host: yes)."""
    if not holder:
        return False
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True
