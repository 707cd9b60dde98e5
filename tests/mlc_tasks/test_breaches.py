"""Which alerts a backtest's and a monitor's results raise, as tables: one per missed
threshold or breached kind, none for a pass, and the window never in the fingerprint."""

from __future__ import annotations

import pytest

from mlc_tasks import breaches
from mlc_tasks.alert_records import Severity
from mlc_tasks.errors import UnsafeLocationError
from mlc_tasks.registry.records import ResultOutcome
from tests.mlc_tasks.result_records import check, result, version

V = version()


@pytest.mark.parametrize(("checks", "outcome", "expected"), [
    ([], ResultOutcome.TESTED, []),
    ([check(value=0.8)], ResultOutcome.TESTED, []),
    ([check(value=0.61)], ResultOutcome.TESTED,
     [("roc_auc", "credit-risk:2 backtest 2026-11-24: roc_auc 0.61 below 0.7")]),
    ([check(value=None)], ResultOutcome.TESTED,
     [("roc_auc", "credit-risk:2 backtest 2026-11-24: roc_auc missing below 0.7")]),
    ([check("mae", 50.0, "<=", 40), check(value=0.9)], ResultOutcome.TESTED,
     [("mae", "credit-risk:2 backtest 2026-11-24: mae 50 above 40")]),
    ([], ResultOutcome.NO_DATA,
     [("no-data", "credit-risk:2: no labelled data for 2026-11-24")]),
])
def test_a_backtest_alerts_each_missed_threshold_and_a_day_without_data(
        checks, outcome: ResultOutcome, expected: list[tuple[str, str]]) -> None:
    found = breaches.backtest_signals(V, result("backtest", checks, outcome), "daily-backtest")
    assert [(s.metric, s.title) for s in found] == expected
    assert all((s.monitor, s.window, s.severity, s.source) == (
        "backtest", "daily", Severity.WARNING, "daily-backtest") for s in found)


def test_the_same_miss_on_another_day_is_the_same_alert() -> None:
    [monday] = breaches.backtest_signals(V, result(checks=[check()], window="2026-11-23"), "b")
    [tuesday] = breaches.backtest_signals(V, result(checks=[check()], window="2026-11-24"), "b")
    assert monday.fingerprint() == tuesday.fingerprint() and monday.title != tuesday.title


@pytest.mark.parametrize(("kind", "checks", "outcome", "expected"), [
    ("drift", [check("income.wasserstein_std", 0.05, "<", 0.1)], ResultOutcome.TESTED, []),
    ("drift", [], ResultOutcome.NO_DATA,
     [("monitor", "no-data", Severity.WARNING, "credit-risk:2: no labelled data in w")]),
    ("fairness:gender", [check("disparate_impact_ratio", None, ">=", 0.8)],
     ResultOutcome.INSUFFICIENT_DATA,
     [("fairness:gender", "insufficient-data", Severity.INFO,
       "credit-risk:2: fairness:gender has too few rows in a group to judge (w)")]),
    ("fairness:gender", [check("disparate_impact_ratio", 0.7, ">=", 0.8)],
     ResultOutcome.TESTED,
     [("fairness", "gender", Severity.WARNING,
       "credit-risk:2: fairness:gender breach in w: disparate_impact_ratio")]),
    ("drift", [check("income.wasserstein_std", 0.3, "<=", 0.1),
               check("region.jensen_shannon", 0.2, "<=", 0.1)], ResultOutcome.TESTED,
     [("drift", "data", Severity.WARNING, "credit-risk:2: drift breach in w: income, region")]),
    ("performance", [check("roc_auc", 0.6, ">=", 0.72)], ResultOutcome.TESTED,
     [("performance", "data", Severity.WARNING,
       "credit-risk:2: performance breach in w: roc_auc")]),
])
def test_a_monitor_alerts_once_per_breached_kind(kind: str, checks, outcome: ResultOutcome,
                                                expected) -> None:
    found = breaches.monitor_signals(V, [result(kind, checks, outcome, window="w")], "monitor")
    assert [(s.monitor, s.metric, s.severity, s.title) for s in found] == expected
    assert all(s.window == "" and s.source == "monitor" for s in found)


def test_a_breach_says_each_failing_value_and_its_limit() -> None:
    [found] = breaches.monitor_signals(V, [result("drift", [
        check("income.wasserstein_std", 0.31234, "<=", 0.1), check("age.ks", None, "<=", 0.1)],
        window="w")], "monitor")
    assert found.detail == "income.wasserstein_std 0.3123 (limit <= 0.1)"
    assert (found.value, found.threshold) == (0.31234, 0.1)
    assert type(found.monitor) is str


def test_bad_data_alerts_are_capped_whatever_the_error_says() -> None:
    error = UnsafeLocationError("data_location: " + "x" * 5000)
    for signal in (breaches.backtest_bad_data(version(model="m" * 400), "2026-11-24", error, "b"),
                   breaches.monitor_bad_data(version(model="m" * 400), error, "monitor")):
        assert len(signal.title) <= 300 and len(signal.detail) == 2000
        assert signal.metric == "bad-data" and signal.severity == Severity.WARNING
    assert breaches.backtest_bad_data(V, "2026-11-24", error, "b").monitor == "backtest"
    assert breaches.monitor_bad_data(V, error, "monitor").monitor == "monitor"
