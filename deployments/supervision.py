"""Which children `mlc up` brings back when they die, and when: a runtime, the notification
endpoint or the installation API is restarted with capped exponential backoff and an alert
(the Prefect server and the serving process are the installation itself: their death stops
everything, as before)."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlc_tasks.alert_records import AlertSignal, Severity

RESTARTABLE = ("runtime-", "notifications", "api")
FIRST_DELAY, MAX_DELAY = 1.0, 60.0
STEADY_SECONDS = 300.0  # a child that lived this long starts its backoff afresh


def restartable(name: str) -> bool:
    return name.startswith(RESTARTABLE)


def restart_delay(restarts: int) -> float:
    """Seconds to wait before the next restart, after `restarts` quick ones in a row."""
    return min(MAX_DELAY, FIRST_DELAY * 2 ** restarts)


@dataclass
class Backoff:
    """One child's restarts: how many in a row, and when the next one is due."""

    restarts: int = 0
    due: float | None = None
    started: float = field(default=0.0)

    def exited(self, now: float) -> float:
        """The child died at `now`: schedule its restart; returns the delay."""
        if now - self.started >= STEADY_SECONDS:
            self.restarts = 0
        delay = restart_delay(self.restarts)
        self.due = now + delay
        return delay

    def ready(self, now: float) -> bool:
        return self.due is not None and now >= self.due

    def restarted(self, now: float) -> None:
        self.restarts, self.due, self.started = self.restarts + 1, None, now


def crashed_signal(name: str, code: int | None, delay: float, log: str) -> AlertSignal:
    """One alert per child while it keeps crashing (repeats count up)."""
    return AlertSignal(
        severity=Severity.WARNING, model="installation", source="mlc-up", monitor="supervisor",
        metric=name, title=f"{name} exited with {code}; `mlc up` restarts it",
        detail=f"restarting in {delay:.0f} s (backoff doubles up to {MAX_DELAY:.0f} s while it "
               f"keeps exiting); its log: {log}")
