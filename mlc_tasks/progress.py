"""Progress of a long job told in whole percents: the Prefect UI needs one update per percent,
not one per chunk read (a large file is thousands of chunks)."""

from __future__ import annotations


def percent(done: int, total: int) -> int:
    """Whole percent of `total` done; an empty job is done."""
    return min(100, int(100 * done / total)) if total > 0 else 100


class PercentSteps:
    """The percents worth telling: each one once, and only forwards."""

    def __init__(self) -> None:
        self.told = 0

    def advance(self, done: int, total: int) -> int | None:
        """The new percent when it moved forward since the last told; else None."""
        now = percent(done, total)
        if now <= self.told:
            return None
        self.told = now
        return now
