"""Small real records for the rule tables: a version, a test result, a check, a deployment."""

from __future__ import annotations

from datetime import datetime, timedelta

from mlc_tasks.lifecycle import State
from mlc_tasks.registry import DeploymentRecord, TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.records import ResultOutcome
from mlc_tasks.scoring import Column

T0 = datetime(2026, 11, 25, 6, 0)


def version(number: int = 2, state: State = State.DEPLOYED, **changes: object) -> VersionRecord:
    return VersionRecord(
        id=f"v{number}", model="credit-risk", number=number, state=state, created_by="ana",
        created_at=T0, source_sha256="s" * 64, artifact_uri="/store/aa.skops",
        artifact_sha256="a" * 64, format="skops", artifact_types=[], trusted_types=[],
        label="default", metrics=["roc_auc"], input_schema=[Column(name="income", dtype="float")],
        sensitive_attributes=[], sample_rows=[{"income": 1.0}], training=None,
        parent_version_id=None, training_data_sha256=None, parameters={}, seed=None,
        package_uri=None,
    ).model_copy(update=changes)


def check(metric: str = "roc_auc", value: float | None = 0.6, op: str = ">=",
          threshold: float = 0.7) -> ThresholdCheck:
    passed = value is not None and (value >= threshold if op == ">=" else value <= threshold)
    return ThresholdCheck(metric=metric, op=op, threshold=threshold, value=value, passed=passed)


def result(kind: str = "backtest", checks: list[ThresholdCheck] | None = None,
           outcome: ResultOutcome = ResultOutcome.TESTED, metrics: dict[str, float] | None = None,
           window: str | None = "2026-11-24", created: datetime = T0,
           version_id: str = "v2") -> TestResult:
    checks = checks or []
    return TestResult(
        id=f"r-{kind}-{created:%H%M%S}", version_id=version_id, kind=kind,
        dataset_uri="/data/credit/2026-11-24/*.csv", dataset_sha256="d" * 64,
        metrics=metrics if metrics is not None else {c.metric: c.value for c in checks
                                                     if c.value is not None},
        thresholds=checks, passed=outcome is ResultOutcome.TESTED and all(c.passed for c in checks),
        report_uri=None, created_at=created, window=window, outcome=outcome)


def deployment(id: int, number: int, minutes: int, env: str | None = "prod",
               replaced: int | None = None, runtime: str = "prod") -> DeploymentRecord:
    """Deployment `id` of version `number` at T0 + `minutes`, replaced `replaced` minutes after
    T0 (None: current)."""
    return DeploymentRecord(
        id=id, model="credit-risk", version_number=number, version_id=f"v{number}",
        runtime=runtime, env=env, deployed_at=T0 + timedelta(minutes=minutes),
        replaced_at=None if replaced is None else T0 + timedelta(minutes=replaced),
        deployed_by="on-model-changed", reason="promoted")
