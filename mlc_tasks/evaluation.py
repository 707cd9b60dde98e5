"""The test job: a version's metrics on labelled data, checked against the policy's thresholds."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from mlc_tasks.artifacts import fetch_verified
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.package_metrics import PackageCode, run_metrics_function
from mlc_tasks.packages import ModelSpec
from mlc_tasks.policy import Threshold
from mlc_tasks.registry import TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.sandbox import SandboxLimits
from mlc_tasks.scoring import Column, frame_from_rows
from mlc_tasks.serialization import load_artifact
from mlc_tasks.submission import package_member

log = logging.getLogger(__name__)
Scorer = Callable[[Any, pd.Series, pd.DataFrame], float]

SCORERS: dict[str, Scorer] = {
    "accuracy": lambda m, y, X: skm.accuracy_score(y, m.predict(X)),
    "precision": lambda m, y, X: skm.precision_score(y, m.predict(X), zero_division=0),
    "recall": lambda m, y, X: skm.recall_score(y, m.predict(X), zero_division=0),
    "f1": lambda m, y, X: skm.f1_score(y, m.predict(X), zero_division=0),
    "roc_auc": lambda m, y, X: skm.roc_auc_score(y, m.predict_proba(X)[:, 1]),
    "log_loss": lambda m, y, X: skm.log_loss(y, m.predict_proba(X), labels=m.classes_),
    "mae": lambda m, y, X: skm.mean_absolute_error(y, m.predict(X)),
    "rmse": lambda m, y, X: math.sqrt(skm.mean_squared_error(y, m.predict(X))),
    "r2": lambda m, y, X: skm.r2_score(y, m.predict(X)),
}


def labelled_frame(data: pd.DataFrame, schema: list[Column], label: str, name: str
                   ) -> tuple[pd.DataFrame, pd.Series]:
    """Features in schema order and the label; errors name the file and the column."""
    if data.empty:
        raise InvalidInputError(f"{name}: no rows")
    if label not in data.columns:
        raise InvalidInputError(f"{name}: label column '{label}' is missing")
    if data[label].isna().all():
        raise InvalidInputError(f"{name}: label column '{label}' is empty")
    data = data[data[label].notna()]  # outcomes are known only for some rows yet
    try:
        features = frame_from_rows(data.to_dict("records"), schema)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{name}: {exc}") from exc
    return features, data[label]


def compute_metrics(model: Any, features: pd.DataFrame, labels: pd.Series,
                    names: list[str]) -> dict[str, float]:
    return {name: float(SCORERS[name](model, labels, features)) for name in names}


def package_metrics(model: Any, features: pd.DataFrame, labels: pd.Series, code: PackageCode,
                    standard: set[str]) -> dict[str, float]:
    """The package's own metrics on the same rows (labels, predictions, positive scores)."""
    scores = (model.predict_proba(features)[:, 1].tolist()
              if hasattr(model, "predict_proba") else None)
    return run_metrics_function(code, labels.tolist(), model.predict(features).tolist(),
                                scores, standard)


def check_thresholds(metrics: dict[str, float], thresholds: dict[str, Threshold]
                     ) -> list[ThresholdCheck]:
    """One check per threshold; a metric the thresholds need but nobody computed fails."""
    checks = []
    for metric, threshold in sorted(thresholds.items()):
        value = metrics.get(metric)
        op, bound = (">=", threshold.min) if threshold.min is not None else ("<=", threshold.max)
        assert bound is not None  # the policy model guarantees one of min/max
        passed = value is not None and not np.isnan(value) and (
            value >= bound if op == ">=" else value <= bound)
        checks.append(ThresholdCheck(metric=metric, op=op, threshold=bound, value=value,
                                     passed=passed))
    return checks


def test_version(version: VersionRecord, model: Any, data: pd.DataFrame, dataset_uri: str,
                 dataset_sha256: str, thresholds: dict[str, Threshold], kind: str = ResultKind.TEST,
                 own_metrics: PackageCode | None = None) -> TestResult:
    """Run the test job and build the standard test record (not stored here). `own_metrics`
    is the package's metrics function: (file.py:function, its source)."""
    features, labels = labelled_frame(data, version.input_schema, version.label, dataset_uri)
    names = sorted(set(version.metrics) | set(thresholds))
    metrics = compute_metrics(model, features, labels, names)
    if own_metrics is not None:
        metrics |= package_metrics(model, features, labels, own_metrics, set(SCORERS))
    checks = check_thresholds(metrics, thresholds)
    log.info("%s on %s: %s", version.ref, dataset_uri, metrics)
    return TestResult(id=uuid.uuid4().hex, version_id=version.id, kind=kind,
                      dataset_uri=dataset_uri, dataset_sha256=dataset_sha256, metrics=metrics,
                      thresholds=checks, passed=all(c.passed for c in checks), report_uri=None,
                      created_at=datetime.now(UTC).replace(tzinfo=None))


def result_table(result: TestResult) -> list[dict[str, Any]]:
    """One row per metric, with its threshold and pass where the policy sets one."""
    checks = {c.metric: c for c in result.thresholds}
    rows = []
    for metric, value in sorted(result.metrics.items()):
        row: dict[str, Any] = {"metric": metric, "value": round(value, 6)}
        if metric in checks:
            row |= {"threshold": f"{checks[metric].op} {checks[metric].threshold:g}",
                    "passed": checks[metric].passed}
        rows.append(row)
    return rows


def version_model(version: VersionRecord, reviewed: list[str]) -> Any:
    """The version's model: its artifact fetched, sha256-checked and loaded trusting only the
    recorded types that `reviewed` (the loading installation's own list) also holds."""
    if version.artifact_uri is None or version.artifact_sha256 is None:
        raise InvalidInputError(f"{version.ref} has no artifact yet (train it first)")
    data = fetch_verified(version.artifact_uri, version.artifact_sha256)
    return load_artifact(data, version.artifact_uri, version.trusted_types, reviewed)


def own_metrics(version: VersionRecord, spec: ModelSpec, limits: SandboxLimits
                ) -> PackageCode | None:
    """The package's metrics function and the sandbox limits it runs in, if it declares one."""
    if not spec.metrics_function or version.package_uri is None:
        return None
    file = spec.metrics_function.partition(":")[0]
    return PackageCode(reference=spec.metrics_function,
                       source=package_member(version.package_uri, file).decode(), limits=limits)
