"""test-model: run a version's test job on its package's labelled test data, store the standard
test record, show it in the Prefect UI, and alert on every missed threshold. A step of
on-model-changed, and a deployment of its own. (Named so that pytest never collects it.)"""

from __future__ import annotations

import hashlib
import io

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.alerts import raise_alert
from flows.run_names import run_name
from mlc_tasks import evaluation
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import TestResult, ThresholdCheck, VersionRecord
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.resources import resources
from mlc_tasks.submission import package_member, stored_spec


@task(name="run-test-job", cache_policy=NO_CACHE, retries=1)
def run_test_job(version: VersionRecord) -> TestResult:
    """The package's test data and own metrics function (from its stored model.yaml), the
    policy's thresholds for the model's type."""
    ctx = resources()
    if version.package_uri is None or version.artifact_uri is None:
        raise InvalidPackageError(f"{version.ref}: no stored package or artifact to test")
    spec = stored_spec(version.package_uri)
    if not spec.test_data:
        raise InvalidPackageError(f"{version.ref}: model.yaml declares no test_data")
    raw = package_member(version.package_uri, spec.test_data)
    return evaluation.test_version(version, evaluation.version_model(
                                       version, ctx.settings.trusted_types),
                                   pd.read_csv(io.BytesIO(raw)),
                                   f"{version.package_uri}#{spec.test_data}",
                                   hashlib.sha256(raw).hexdigest(),
                                   ctx.policy().thresholds_for(spec.type),
                                   own_metrics=evaluation.own_metrics(
                                       version, spec, ctx.settings.sandbox_limits()))


def missed_threshold(version: VersionRecord, check: ThresholdCheck) -> AlertSignal:
    side = "below" if check.op == ">=" else "above"
    value = "missing" if check.value is None else f"{check.value:.6g}"
    return AlertSignal(
        severity=Severity.WARNING, model=version.model, version=version.number,
        source="test-model", monitor="threshold", metric=check.metric, window=f"v{version.number}",
        title=f"{version.ref} {check.metric} {value} {side} threshold {check.threshold:g}",
        detail="The version's test on its package's test data missed a business threshold "
               "(policy file, thresholds section).",
        value=check.value, threshold=check.threshold)


@flow(name="test-model", flow_run_name=run_name("test-model"))
def model_test(model: str, number: int) -> bool:
    """Test a submitted version; a rerun reuses the stored result and alerts nothing new.

    Args:
        model: the registered model
        number: the version number to test
    """
    ctx, logger = resources(), get_run_logger()
    version = ctx.registry.get_version(model, number)
    done = [r for r in ctx.registry.test_results(version.id) if r.kind == ResultKind.TEST]
    result = done[-1] if done else ctx.registry.add_test_result(
        run_test_job(version), actor="test-model")
    create_table_artifact(
        key=f"test-{model}-v{number}", description=f"test of {version.ref}",
        table=evaluation.result_table(result))
    for check in result.thresholds:
        if not check.passed:
            raise_alert(missed_threshold(version, check))
    if result.passed and version.state in (State.SUBMITTED, State.TRAINED):
        ctx.registry.transition(version.id, State.TESTED, "test-model", "all thresholds met")
    logger.info("%s %s its test", version.ref, "passed" if result.passed else "did not pass")
    return result.passed

