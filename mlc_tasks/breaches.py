"""What the results of a backtest or a monitor mean for people: the alerts they raise. The
window is never part of an alert's fingerprint, so a breach that lasts a week is one alert
with a count, not seven."""

from __future__ import annotations

from typing import Any

from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.registry import TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.records import ResultOutcome

BACKTEST = "backtest"  # the monitor name of a backtest's alerts
MONITOR = "monitor"    # the monitor name of the monitor's data alerts


def backtest_signals(version: VersionRecord, result: TestResult, source: str
                     ) -> list[AlertSignal]:
    """One alert per missed threshold; one for a day without data."""
    base: dict[str, Any] = {"model": version.model, "version": version.number,
                            "source": source, "monitor": BACKTEST, "window": "daily"}
    if result.outcome is ResultOutcome.NO_DATA:
        return [AlertSignal(**base, severity=Severity.WARNING, metric="no-data",
                            title=f"{version.ref}: no labelled data for {result.window}",
                            detail=f"Nothing at {result.dataset_uri}; the backtest recorded "
                                   "'no data'.")]
    return [AlertSignal(**base, severity=Severity.WARNING, metric=check.metric,
                        value=check.value, threshold=check.threshold,
                        title=f"{version.ref} backtest {result.window}: {missed(check)}",
                        detail=f"Backtest on {result.dataset_uri}.")
            for check in result.thresholds if not check.passed]


def missed(check: ThresholdCheck) -> str:
    """"roc_auc 0.61 below 0.7", "mae missing below 40"."""
    value = "missing" if check.value is None else f"{check.value:.4g}"
    return (f"{check.metric} {value} {'below' if check.op == '>=' else 'above'} "
            f"{check.threshold:g}")


def monitor_signals(version: VersionRecord, results: list[TestResult], source: str
                    ) -> list[AlertSignal]:
    """Per result: no data is a warning, a group too small to judge is information, a failed
    check a warning for its kind (drift, performance, fairness of an attribute)."""
    base: dict[str, Any] = {"model": version.model, "version": version.number,
                            "source": source, "window": ""}
    signals = []
    for r in results:
        failing = [c for c in r.thresholds if not c.passed]
        if r.outcome is ResultOutcome.NO_DATA:
            signals.append(AlertSignal(**base, severity=Severity.WARNING, monitor=MONITOR,
                                       metric="no-data", title=f"{version.ref}: no labelled "
                                       f"data in {r.window}", detail=r.dataset_uri))
        elif r.outcome is ResultOutcome.INSUFFICIENT_DATA:
            signals.append(AlertSignal(**base, severity=Severity.INFO, monitor=r.kind,
                                       metric="insufficient-data",
                                       title=f"{version.ref}: {r.kind} has too few rows in a "
                                             f"group to judge ({r.window})"))
        elif failing:
            signals.append(breach_signal(version, r, failing, base))
    return signals


def breach_signal(version: VersionRecord, result: TestResult, failing: list[ThresholdCheck],
                  base: dict[str, Any]) -> AlertSignal:
    """A fairness breach is alerted per attribute (its metric); the others as "data"."""
    names = ", ".join(c.metric.split(".")[0] for c in failing)
    return AlertSignal(
        **base, severity=Severity.WARNING, monitor=result.family.value,
        metric=result.attribute or "data",
        title=f"{version.ref}: {result.kind} breach in {result.window}: {names}"[:300],
        detail="; ".join(f"{c.metric} {c.value:.4g} (limit {c.op} {c.threshold:g})"
                         for c in failing if c.value is not None)[:2000],
        value=failing[0].value, threshold=failing[0].threshold)


def backtest_bad_data(version: VersionRecord, day: str, error: Exception, source: str
                      ) -> AlertSignal:
    """A day's labelled data that could not be tested (a missing column, a refused location)."""
    return AlertSignal(severity=Severity.WARNING, model=version.model, version=version.number,
                       source=source, monitor=BACKTEST, metric="bad-data", window="daily",
                       title=f"{version.ref}: labelled data for {day} is not usable"[:300],
                       detail=str(error)[:2000])


def monitor_bad_data(version: VersionRecord, error: Exception, source: str) -> AlertSignal:
    """A window's data that could not be monitored."""
    return AlertSignal(severity=Severity.WARNING, model=version.model, version=version.number,
                       source=source, monitor=MONITOR, metric="bad-data",
                       title=f"{version.ref}: monitoring data not usable"[:300],
                       detail=str(error)[:2000])
