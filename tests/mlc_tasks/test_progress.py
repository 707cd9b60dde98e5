"""Progress in whole percents: each told once, only forwards, and never past 100."""

from __future__ import annotations

import pytest

from mlc_tasks.progress import PercentSteps, percent


@pytest.mark.parametrize(("done", "total", "expected"), [
    (0, 1000, 0), (9, 1000, 0), (10, 1000, 1), (999, 1000, 99), (1000, 1000, 100),
    (1500, 1000, 100),  # a file that grew while it was read
    (0, 0, 100), (5, -1, 100)])
def test_percent(done: int, total: int, expected: int) -> None:
    assert percent(done, total) == expected


@pytest.mark.parametrize(("reads", "told"), [
    ([(5, 1000), (9, 1000), (10, 1000), (15, 1000), (500, 1000), (1000, 1000)],
     [None, None, 1, None, 50, 100]),
    ([(600, 1000), (400, 1000), (600, 1000), (601, 1000)], [60, None, None, None]),  # backwards
    ([(0, 0)], [100]),
    ([(1000, 1000), (1000, 1000)], [100, None]),
])
def test_each_percent_is_told_once_and_only_forwards(reads, told) -> None:
    steps = PercentSteps()
    assert [steps.advance(done, total) for done, total in reads] == told


def test_a_large_file_is_at_most_a_hundred_updates() -> None:
    steps = PercentSteps()
    updates = [p for n in range(0, 10_000_001, 997) if (p := steps.advance(n, 10_000_000))]
    assert len(updates) <= 100 and updates == sorted(set(updates))
