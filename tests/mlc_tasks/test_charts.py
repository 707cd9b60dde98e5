"""Inline SVG charts: results become one series per (kind, metric) over days, and nothing a
package names (a metric, a window) reaches the SVG unescaped."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest

from mlc_tasks import charts
from mlc_tasks.registry.records import ResultOutcome, TestResult, ThresholdCheck

START = datetime(2025, 3, 1, 6, 0)


def result(day: int, metrics: dict[str, float], kind: str = "backtest",
           window: str | None = "auto", outcome: ResultOutcome = ResultOutcome.TESTED,
           made: datetime | None = None) -> TestResult:
    checks = [ThresholdCheck(metric="roc_auc", op=">=", threshold=0.7, value=metrics.get(
        "roc_auc"), passed=True)] if "roc_auc" in metrics else []
    return TestResult(id=f"r{day}-{kind}", version_id="v1", kind=kind, dataset_uri="/d",
                      dataset_sha256="0" * 64, metrics=metrics, thresholds=checks,
                      passed=True, report_uri=None,
                      created_at=made or START + timedelta(days=day),
                      window=f"2025-03-{day:02d}" if window == "auto" else window,
                      outcome=outcome)


def test_results_become_series_by_kind_and_metric_sorted_by_day() -> None:
    found = charts.metric_series([
        result(3, {"roc_auc": 0.8, "accuracy": 0.7}), result(1, {"roc_auc": 0.75}),
        result(2, {"roc_auc": 0.9}, kind="test", window=None)])
    assert [(s.kind, s.metric) for s in found] == [
        ("backtest", "accuracy"), ("backtest", "roc_auc"), ("test", "roc_auc")]
    assert found[1].points == [("2025-03-01", 0.75), ("2025-03-03", 0.8)]
    assert found[1].threshold == 0.7
    assert found[2].points == [("2025-03-03", 0.9)]  # no window: the day it was made


def test_a_rerun_for_a_day_replaces_it_and_untested_or_nan_values_are_left_out() -> None:
    found = charts.metric_series([
        result(1, {"roc_auc": 0.5}), result(1, {"roc_auc": 0.6}, made=START + timedelta(days=9)),
        result(2, {"roc_auc": math.nan}), result(4, {}, outcome=ResultOutcome.NO_DATA)])
    assert [s.points for s in found] == [[("2025-03-01", 0.6)]]


@pytest.mark.parametrize("points", [[], [("2025-03-01", 1.0)],
                                    [("2025-03-01", 0.5), ("2025-03-02", 0.5)],
                                    [("a", -3.0), ("b", 1e6), ("c", 0.0)]])
def test_every_chart_is_well_formed_svg(points: list[tuple[str, float]]) -> None:
    svg = charts.line_chart(charts.Series(kind="backtest", metric="mae", points=points,
                                          threshold=2.0))
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg") and root.get("class") == "chart"
    assert "style=" not in svg and "<script" not in svg  # renders under a strict CSP
    assert len(root.findall(".//{http://www.w3.org/2000/svg}circle")) == len(points)


def test_labels_from_a_package_are_escaped() -> None:
    evil = '"><script>alert(1)</script><x a="'
    svg = charts.line_chart(charts.Series(kind=f"fairness:{evil}", metric=evil,
                                          points=[(evil, 1.0), ("2025-03-02", 2.0)]))
    assert "<script" not in svg and "&lt;script&gt;" in svg
    root = ET.fromstring(svg)  # still one well-formed document: nothing broke out
    assert evil in root.get("aria-label", "")
