"""The monitor's rules as tables: the window, which inputs drift is measured on, the
performance baseline and its bounds, the fairness limits and outcomes, and what passes."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlc_tasks import monitoring
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.fairness import FairnessResult, FairnessSettings, Outcome
from mlc_tasks.registry.records import ResultKind, ResultOutcome
from tests.mlc_tasks.result_records import T0, check, result, version


@pytest.mark.parametrize(("last_day", "days", "label"), [
    (date(2026, 11, 25), 7, "2026-11-19..2026-11-25"), (date(2026, 11, 25), 1,
                                                        "2026-11-25..2026-11-25"),
    (date(2026, 3, 2), 3, "2026-02-28..2026-03-02")])
def test_the_window_label_names_its_first_and_last_day(last_day: date, days: int,
                                                       label: str) -> None:
    assert monitoring.window_label(last_day, days) == label


@pytest.mark.parametrize(("last_day", "days", "today", "first", "count"), [
    (date(2026, 11, 24), 7, date(2026, 11, 25), date(2026, 11, 18), 8),  # and today's inputs
    (date(2026, 11, 24), 1, date(2026, 11, 25), date(2026, 11, 24), 2),
    (date(2026, 11, 24), 3, date(2026, 11, 24), date(2026, 11, 22), 3),
    (date(2026, 11, 24), 2, date(2026, 11, 1), date(2026, 11, 23), 2)])  # a day in the past
def test_capture_days_are_the_window_and_every_day_since(last_day: date, days: int, today: date,
                                                         first: date, count: int) -> None:
    found = monitoring.capture_days(last_day, days, today)
    assert (found[0], len(found)) == (first, count)
    assert found == sorted(set(found))


LABELLED = pd.DataFrame({"income": [1.0, 2.0]})


@pytest.mark.parametrize(("captured", "min_rows", "chosen"), [
    (None, 1, "labelled"), (pd.DataFrame({"income": [5.0] * 199}), 200, "labelled"),
    (pd.DataFrame({"income": [5.0] * 200}), 200, "captured"),
    (pd.DataFrame({"income": []}), 1, "labelled")])
def test_drift_is_measured_on_production_traffic_unless_there_is_too_little(
        captured: pd.DataFrame | None, min_rows: int, chosen: str) -> None:
    frame, where = monitoring.drift_inputs(captured, "captured under /c", LABELLED, "/d",
                                           min_rows)
    if chosen == "captured":
        assert frame is captured and where == "captured under /c"
    else:
        assert frame is LABELLED and where == "/d (inputs of the labelled rows)"


def test_the_baseline_is_the_newest_own_test() -> None:
    older = result("test", metrics={"roc_auc": 0.7}, created=T0)
    newer = result("test", metrics={"roc_auc": 0.8}, created=T0.replace(hour=7))
    others = [result("backtest"), result("holdout"), result("fairness:gender")]
    assert monitoring.baseline([older, *others, newer]) is newer
    assert monitoring.baseline(others) is None


@pytest.mark.parametrize(("metric", "current", "base", "op", "bound", "passed"), [
    ("roc_auc", 0.73, 0.8, ">=", 0.72, True), ("roc_auc", 0.71, 0.8, ">=", 0.72, False),
    ("rmse", 10.9, 10.0, "<=", 11.0, True), ("rmse", 11.1, 10.0, "<=", 11.0, False),
    ("r2", -0.55, -0.5, ">=", -0.55, True), ("r2", -0.56, -0.5, ">=", -0.55, False),
    ("log_loss", 0.0, 0.0, "<=", 0.0, True)])
def test_performance_may_be_worse_than_the_own_test_by_the_tolerance_only(
        metric: str, current: float, base: float, op: str, bound: float, passed: bool) -> None:
    [found] = monitoring.performance_checks({metric: current}, {metric: base}, 0.1)
    assert (found.op, round(found.threshold, 9), found.passed) == (op, bound, passed)


def test_a_metric_the_window_did_not_measure_is_not_judged() -> None:
    assert monitoring.performance_checks({}, {"roc_auc": 0.8}, 0.1) == []


def test_performance_needs_a_baseline() -> None:
    assert monitoring.performance_record(version(), "w", "/d", "s", {"roc_auc": 0.9}, None,
                                         0.1) == []
    [found] = monitoring.performance_record(version(), "w", "/d", "s", {"roc_auc": 0.5},
                                            result("test", metrics={"roc_auc": 0.8}), 0.1)
    assert (found.kind, found.passed, found.window) == (ResultKind.PERFORMANCE, False, "w")


@pytest.mark.parametrize(("outcome", "checks", "passed"), [
    (ResultOutcome.TESTED, [], True), (ResultOutcome.TESTED, [check(value=0.8)], True),
    (ResultOutcome.TESTED, [check(value=0.8), check(value=0.6)], False),
    (ResultOutcome.NO_DATA, [], False),
    (ResultOutcome.INSUFFICIENT_DATA, [check(value=0.8)], False)])
def test_only_a_tested_result_whose_checks_all_pass_passes(outcome: ResultOutcome, checks,
                                                           passed: bool) -> None:
    found = monitoring.record(version(), ResultKind.DRIFT, "w", "/d", "s", {}, checks, outcome)
    assert found.passed is passed


def test_no_data_is_a_record_that_never_passes() -> None:
    found = monitoring.no_data(version(), ResultKind.BACKTEST, "2026-11-24", "/d/*.csv")
    assert (found.kind, found.outcome, found.passed, found.metrics, found.dataset_uri) == (
        "backtest", "no data", False, {}, "/d/*.csv")


def test_fairness_limits_follow_the_policy() -> None:
    limits = monitoring.fairness_limits(FairnessSettings(
        max_parity_difference=0.2, min_impact_ratio=0.75, max_equalized_odds_difference=0.05))
    assert limits == {"demographic_parity_difference": ("<=", 0.2),
                      "disparate_impact_ratio": (">=", 0.75),
                      "equalized_odds_difference": ("<=", 0.05)}


@pytest.mark.parametrize(("judged", "outcome"), [
    (Outcome.PASS, ResultOutcome.TESTED), (Outcome.BREACH, ResultOutcome.TESTED),
    (Outcome.INSUFFICIENT, ResultOutcome.INSUFFICIENT_DATA)])
def test_a_group_too_small_to_judge_is_insufficient_data(judged: Outcome,
                                                        outcome: ResultOutcome) -> None:
    found = FairnessResult(attribute="gender", groups=[], demographic_parity_difference=None,
                           disparate_impact_ratio=None, equalized_odds_difference=None,
                           outcome=judged, reasons=[])
    assert monitoring.fairness_outcome(found) is outcome


def labelled_window(rows: int = 400, unlabelled: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A window where the model predicts the label exactly, half of it women; the last
    `unlabelled` rows' outcomes are not known yet."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(size=rows),
                          "gender": np.where(np.arange(rows) % 2, "f", "m"),
                          "default": (np.arange(rows) // 2) % 2})
    frame["default"] = frame["default"].astype(float)
    frame.loc[rows - unlabelled:, "default"] = np.nan
    labels = frame["default"][frame["default"].notna()]
    return frame, labels


@pytest.mark.parametrize("unlabelled", [0, 7])
def test_fairness_is_judged_per_attribute_on_the_labelled_rows(unlabelled: int) -> None:
    rows, labels = labelled_window(unlabelled=unlabelled)
    [found] = monitoring.fairness_records(
        version(sensitive_attributes=["gender"]), "w", "/d", "s", rows, labels,
        pd.Series(labels.to_numpy()), FairnessSettings())
    assert (found.kind, found.attribute, found.outcome, found.passed) == (
        "fairness:gender", "gender", ResultOutcome.TESTED, True)
    assert found.metrics["f.rows"] + found.metrics["m.rows"] == len(labels)


def test_a_missing_sensitive_column_names_it() -> None:
    rows, labels = labelled_window()
    with pytest.raises(InvalidInputError, match="/d: sensitive attribute column 'age' is "
                                                "missing"):
        monitoring.fairness_records(version(sensitive_attributes=["gender", "age"]), "w", "/d",
                                    "s", rows, labels, pd.Series(labels.to_numpy()),
                                    FairnessSettings())


def test_too_few_rows_in_a_group_is_insufficient_data_not_a_pass() -> None:
    rows, labels = labelled_window(rows=20)
    [found] = monitoring.fairness_records(
        version(sensitive_attributes=["gender"]), "w", "/d", "s", rows, labels,
        pd.Series(labels.to_numpy()), FairnessSettings())
    assert (found.outcome, found.passed) == (ResultOutcome.INSUFFICIENT_DATA, False)


def test_results_are_grouped_by_version_in_their_order() -> None:
    a, b, c = result("drift", version_id="v1"), result("drift", version_id="v2"), \
        result("performance", version_id="v1")
    assert monitoring.by_version([a, b, c]) == {"v1": [a, c], "v2": [b]}
    assert monitoring.by_version([]) == {}
