"""The monitor's judgements as standard test records: data drift, performance against the
version's own test, and fairness per sensitive attribute; and the Evidently report a person
opens to look closer (built from a sample; the decisions come from every row)."""

from __future__ import annotations

import io
import tempfile
import uuid
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from mlc_tasks.capture import capped_notes, captured_rows
from mlc_tasks.drift import DriftReport, DriftSettings, drift_report
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.fairness import FairnessResult, FairnessSettings, Outcome, fairness
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.registry import TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.records import ResultKind, ResultOutcome, fairness_kind
from mlc_tasks.registry.store import utcnow
from mlc_tasks.submission import stored_spec
from mlc_tasks.training import read_training_data

LOWER_IS_BETTER = {"log_loss", "mae", "rmse"}


def record(version: VersionRecord, kind: str, window: str, dataset_uri: str, sha256: str,
           metrics: dict[str, float], checks: list[ThresholdCheck],
           outcome: ResultOutcome = ResultOutcome.TESTED,
           report_uri: str | None = None) -> TestResult:
    """A result passes only when it tested something and every check passed."""
    return TestResult(id=uuid.uuid4().hex, version_id=version.id, kind=kind,
                      dataset_uri=dataset_uri, dataset_sha256=sha256, metrics=metrics,
                      thresholds=checks, passed=outcome is ResultOutcome.TESTED and all(
                          c.passed for c in checks),
                      report_uri=report_uri, created_at=utcnow(), window=window,
                      outcome=outcome)


def no_data(version: VersionRecord, kind: ResultKind, window: str, looked_in: str
            ) -> TestResult:
    """The record of a window in which no labelled data arrived: never a pass."""
    return record(version, kind, window, looked_in, "", {}, [], ResultOutcome.NO_DATA)


def window_label(last_day: date, days: int) -> str:
    """"first..last" of the `days` days ending `last_day`."""
    return f"{last_day - timedelta(days=days - 1)}..{last_day}"


def capture_days(last_day: date, days: int, today: date) -> list[date]:
    """The window's days and those since: inputs are captured at once, labels a day later."""
    first = last_day - timedelta(days=days - 1)
    return [first + timedelta(days=n) for n in range((max(today, last_day) - first).days + 1)]


def scoring_inputs(root: Path, version: VersionRecord, days: list[date]
                   ) -> tuple[pd.DataFrame | None, str]:
    """What the runtimes scored for this version on those days, and where that is said."""
    rows = captured_rows(root, version.model, version.number, days)
    capped = capped_notes(root, version.model, version.number, days)
    return rows, (f"scoring inputs captured under {root} ({0 if rows is None else len(rows)} rows"
                  + (f"; capture capped: {'; '.join(capped)}" if capped else "") + ")")


def drift_inputs(captured: pd.DataFrame | None, captured_where: str, labelled: pd.DataFrame,
                 labelled_where: str, min_rows: int) -> tuple[pd.DataFrame, str]:
    """The inputs drift is measured on: production's captured ones, unless there are too few
    to judge; then the labelled rows' inputs stand in."""
    if captured is None or len(captured) < min_rows:
        return labelled, f"{labelled_where} (inputs of the labelled rows)"
    return captured, captured_where


def training_snapshot(version: VersionRecord, policy: LocationPolicy) -> pd.DataFrame:
    """The version's training data, the reference drift is measured against."""
    spec = stored_spec(str(version.package_uri))
    location = spec.training.data if spec.training else spec.lineage.training_data
    if not location:
        raise InvalidInputError(f"{version.ref}: model.yaml names no training data "
                                "(lineage.training_data) to compare with")
    return pd.read_csv(io.BytesIO(read_training_data(location, str(version.package_uri),
                                                     policy)))


def drift_record(version: VersionRecord, window: str, reference: pd.DataFrame,
                 inputs: pd.DataFrame, where: str, sha256: str, settings: DriftSettings
                 ) -> TestResult:
    """The drift of the inputs from the reference, as a record (its report link comes later)."""
    report = drift_report(reference, inputs, version.input_schema, settings)
    metrics, checks = drift_checks(report, settings)
    return record(version, ResultKind.DRIFT, window, where, sha256, metrics, checks)


def baseline(results: list[TestResult]) -> TestResult | None:
    """What performance is judged against: the version's newest own test."""
    tests = [r for r in results if r.kind == ResultKind.TEST]
    return tests[-1] if tests else None


def performance_record(version: VersionRecord, window: str, where: str, sha256: str,
                       current: dict[str, float], base: TestResult | None, tolerance: float
                       ) -> list[TestResult]:
    """The window's metrics against the baseline; nothing without one."""
    if base is None:
        return []
    return [record(version, ResultKind.PERFORMANCE, window, where, sha256, current,
                   performance_checks(current, base.metrics, tolerance))]


def fairness_limits(settings: FairnessSettings) -> dict[str, tuple[str, float]]:
    """Each fairness gap with the side of its bound the policy allows."""
    return {"demographic_parity_difference": ("<=", settings.max_parity_difference),
            "disparate_impact_ratio": (">=", settings.min_impact_ratio),
            "equalized_odds_difference": ("<=", settings.max_equalized_odds_difference)}


def fairness_outcome(judged: FairnessResult) -> ResultOutcome:
    """A group too small to measure is insufficient data, never a pass or a breach."""
    if judged.outcome == Outcome.INSUFFICIENT:
        return ResultOutcome.INSUFFICIENT_DATA
    return ResultOutcome.TESTED


def fairness_records(version: VersionRecord, window: str, where: str, sha256: str,
                     rows: pd.DataFrame, labels: pd.Series, predictions: pd.Series,
                     settings: FairnessSettings) -> list[TestResult]:
    """One record per sensitive attribute, on the labelled rows (`labels` keeps their index
    in `rows`; `predictions` are in the same order)."""
    results = []
    for attribute in version.sensitive_attributes:
        if attribute not in rows.columns:
            raise InvalidInputError(f"{where}: sensitive attribute column '{attribute}' is "
                                    "missing")
        judged = fairness(attribute, labels.reset_index(drop=True),
                          predictions.reset_index(drop=True),
                          rows.loc[labels.index, attribute].reset_index(drop=True), settings)
        metrics, checks = fairness_checks(judged, fairness_limits(settings))
        results.append(record(version, fairness_kind(attribute), window, where, sha256,
                              metrics, checks, fairness_outcome(judged)))
    return results


def by_version(results: list[TestResult]) -> dict[str, list[TestResult]]:
    """The results grouped by version, in the order they came."""
    grouped: dict[str, list[TestResult]] = defaultdict(list)
    for result in results:
        grouped[result.version_id].append(result)
    return dict(grouped)


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
