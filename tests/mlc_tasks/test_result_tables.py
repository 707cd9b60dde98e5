"""What the Prefect UI shows of backtest and monitor results: which table a backtest
publishes, the rows of a result, and the monitor's markdown and tables."""

from __future__ import annotations

from datetime import date

import pytest

from mlc_tasks import result_tables
from mlc_tasks.registry.records import ResultOutcome
from tests.mlc_tasks.result_records import check, result, version

DAY = date(2026, 11, 24)
PASSED = result(checks=[check(value=0.8)], metrics={"roc_auc": 0.8, "accuracy": 0.91234})
NO_DATA = result(outcome=ResultOutcome.NO_DATA)


@pytest.mark.parametrize(("model", "done", "key", "description"), [
    (None, [], None, None),
    ("credit-risk", [], None, None),
    ("credit-risk", [(version(), PASSED)], "backtest-credit-risk",
     "backtest of credit-risk:2 on 2026-11-24"),
    (None, [(version(), PASSED), (version(3), NO_DATA)], "backtest-nightly",
     "backtest of 2 models on 2026-11-24"),
])
def test_one_model_shows_its_metrics_and_the_night_one_summary(model, done, key,
                                                               description) -> None:
    found = result_tables.backtest_table(model, done, DAY)
    assert (found.key if found else None, found.description if found else None) == (
        key, description)
    if found is not None and model is None:
        assert [row["version"] for row in found.table] == ["credit-risk:2", "credit-risk:3"]


@pytest.mark.parametrize(("shown", "rows"), [
    (NO_DATA, [{"outcome": "no data", "looked in": "/data/credit/2026-11-24/*.csv"}]),
    (PASSED, [{"metric": "accuracy", "value": 0.91234},
              {"metric": "roc_auc", "value": 0.8, "threshold": ">= 0.7", "passed": True}]),
])
def test_a_results_rows_say_where_nothing_was_found_or_each_metric(shown, rows) -> None:
    found = result_tables.result_rows(shown)
    assert found == rows and all(type(v) is not ResultOutcome for r in found for v in r.values())


def test_the_nightly_row_names_the_missed_thresholds_and_the_first_metrics() -> None:
    missed = result(checks=[check(value=0.6), check("mae", 50.0, "<=", 40)],
                    metrics={f"m{i}": i / 3 for i in range(8)})
    row = result_tables.summary_row(version(), missed)
    assert row == {"version": "credit-risk:2", "outcome": "tested", "passed": False,
                   "missed": "roc_auc, mae", "m0": 0.0, "m1": 0.3333, "m2": 0.6667, "m3": 1.0,
                   "m4": 1.3333, "m5": 1.6667}
    assert type(row["outcome"]) is str
    assert result_tables.summary_row(version(), PASSED)["missed"] == "-"


def test_the_monitor_markdown_lists_each_check_and_links_the_report() -> None:
    drift = result("drift", [check("income.wasserstein_std", 0.3, "<=", 0.1)], window="w")
    fair = result("fairness:gender", outcome=ResultOutcome.INSUFFICIENT_DATA, window="w")
    text = result_tables.monitor_markdown(version(), [drift, fair], "http://x/reports/a.html")
    assert text.splitlines()[0] == "## Monitoring credit-risk:2, w"
    assert "| drift | tested | ❌ | income.wasserstein_std |" in text
    assert "| fairness:gender | insufficient data | ❌ | - |" in text
    assert "[Evidently data-drift report](http://x/reports/a.html)" in text
    assert "Evidently" not in result_tables.monitor_markdown(version(), [drift], None)


def test_the_report_is_the_first_result_that_has_one() -> None:
    with_report = result("drift").model_copy(update={"report_uri": "/store/r.html"})
    assert result_tables.report_uri([result("performance"), with_report]) == "/store/r.html"
    assert result_tables.report_uri([result("performance")]) is None


def test_the_monitor_tables_hold_every_check_and_measure_and_empty_ones_are_left_out() -> None:
    drift = result("drift", [check("income.wasserstein_std", 0.31234, "<=", 0.1),
                             check("age.ks", None, "<=", 0.1)],
                   metrics={"share_drifted": 0.5})
    checks, details = result_tables.monitor_tables(version(), [drift])
    assert checks.key == "monitor-credit-risk-checks" and details.key == (
        "monitor-credit-risk-details")
    assert checks.table == [
        {"check": "drift", "metric": "income.wasserstein_std", "value": 0.3123,
         "limit": "<= 0.1", "passed": False},
        {"check": "drift", "metric": "age.ks", "value": None, "limit": "<= 0.1",
         "passed": False}]
    assert details.table == [{"check": "drift", "measure": "share_drifted", "value": 0.5}]
    assert result_tables.monitor_tables(version(), [result("drift", metrics={})]) == []
