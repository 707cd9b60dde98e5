"""The monitor's judgements as standard test records: data drift, performance against the
version's own test, and fairness per sensitive attribute; and the Evidently report a person
opens to look closer (built from a sample; the decisions come from every row)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

import pandas as pd

from mlc_tasks.drift import DriftReport, DriftSettings
from mlc_tasks.fairness import FairnessResult, Outcome
from mlc_tasks.registry import TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.store import utcnow

LOWER_IS_BETTER = {"log_loss", "mae", "rmse"}


def record(version: VersionRecord, kind: str, window: str, dataset_uri: str, sha256: str,
           metrics: dict[str, float], checks: list[ThresholdCheck], outcome: str = "tested",
           report_uri: str | None = None) -> TestResult:
    return TestResult(id=uuid.uuid4().hex, version_id=version.id, kind=kind,
                      dataset_uri=dataset_uri, dataset_sha256=sha256, metrics=metrics,
                      thresholds=checks, passed=outcome == "tested" and all(
                          c.passed for c in checks),
                      report_uri=report_uri, created_at=utcnow(), window=window,
                      outcome=outcome)


def drift_checks(report: DriftReport, settings: DriftSettings
                 ) -> tuple[dict[str, float], list[ThresholdCheck]]:
    """Per column the effect against its minimum; a column passes unless it drifted (a
    corrected p-value below alpha and the effect at least the minimum)."""
    metrics = {"share_drifted": report.share_drifted}
    checks = []
    for column in report.columns:
        metrics[f"{column.column}.{column.effect_name}"] = column.effect
        metrics[f"{column.column}.p_adjusted"] = column.adjusted_p_value
        minimum = (settings.min_numeric_effect if column.kind == "numeric"
                   else settings.min_categorical_effect)
        checks.append(ThresholdCheck(metric=f"{column.column}.{column.effect_name}", op="<",
                                     threshold=minimum, value=column.effect,
                                     passed=not column.drifted))
    return metrics, checks


def performance_checks(current: dict[str, float], baseline: dict[str, float],
                       tolerance: float) -> list[ThresholdCheck]:
    """Each metric against the version's own test: no worse than `tolerance` of it."""
    checks = []
    for metric, base in sorted(baseline.items()):
        if metric not in current:
            continue
        if metric in LOWER_IS_BETTER:
            bound, op = base + tolerance * abs(base), "<="
            passed = current[metric] <= bound
        else:  # abs: an r2 below zero must not make the bound stricter than the baseline
            bound, op = base - tolerance * abs(base), ">="
            passed = current[metric] >= bound
        checks.append(ThresholdCheck(metric=metric, op=op, threshold=bound,
                                     value=current[metric], passed=passed))
    return checks


def fairness_checks(result: FairnessResult, limits: dict[str, tuple[str, float]]
                    ) -> tuple[dict[str, float], list[ThresholdCheck]]:
    metrics: dict[str, float] = {}
    for group in result.groups:
        metrics[f"{group.group}.selection_rate"] = group.selection_rate
        metrics[f"{group.group}.rows"] = float(group.rows)
        for name in ("true_positive_rate", "false_positive_rate"):
            value = getattr(group, name)
            if value is not None:
                metrics[f"{group.group}.{name}"] = value
    checks = []
    for name, (op, bound) in limits.items():
        value = getattr(result, name)
        if value is not None:
            metrics[name] = value
        passed = (result.outcome != Outcome.INSUFFICIENT and value is not None
                  and (value <= bound if op == "<=" else value >= bound))
        checks.append(ThresholdCheck(metric=name, op=op, threshold=bound, value=value,
                                     passed=passed))
    return metrics, checks


def evidently_report(reference: pd.DataFrame, current: pd.DataFrame, sample_rows: int,
                     seed: int = 0) -> bytes:
    """Evidently's data-drift report as HTML, with the methods set explicitly (KS p-values for
    numbers, Jensen-Shannon distance for categories), on at most `sample_rows` rows a side."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def sample(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sample(sample_rows, random_state=seed) if len(frame) > sample_rows \
            else frame

    preset = DataDriftPreset(num_method="ks", num_threshold=0.05, cat_method="jensenshannon",
                             cat_threshold=0.1)
    snapshot = Report([preset]).run(sample(current), sample(reference))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        snapshot.save_html(str(path))
        return path.read_bytes()
