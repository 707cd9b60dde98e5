"""daily-backtest: every morning, test the exact version each model serves in production on
the labelled data of the day before, store the standard test record (one per model and date:
a rerun replaces it), show it in the Prefect UI, and alert when a threshold is missed or no
data arrived."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from deployments.context import Context
from flows.alerts import raise_alert
from mlc_tasks import evaluation
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.artifacts import fetch_verified
from mlc_tasks.daily_data import day_pattern, read_day
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.serialization import load_artifact
from mlc_tasks.submission import package_member, stored_spec

FLOW = "daily-backtest"


def backtest_version(ctx: Context, version: VersionRecord, location: str, day: date
                     ) -> TestResult:
    """The test job on the day's labelled rows; a "no data" record when nothing arrived."""
    found = read_day(location, day)
    if found is None:
        return TestResult(id=uuid.uuid4().hex, version_id=version.id, kind="backtest",
                          dataset_uri=day_pattern(location, day), dataset_sha256="",
                          metrics={}, thresholds=[], passed=False, report_uri=None,
                          created_at=utcnow(), window=day.isoformat(), outcome="no data")
    rows, where, sha = found
    spec = stored_spec(str(version.package_uri))
    model = load_artifact(fetch_verified(str(version.artifact_uri), str(version.artifact_sha256)),
                          str(version.artifact_uri), version.trusted_types)
    own = (spec.metrics_function, package_member(str(version.package_uri),
           spec.metrics_function.partition(":")[0]).decode()) if spec.metrics_function else None
    result = evaluation.test_version(version, model, rows, where, sha,
                                     ctx.policy().thresholds_for(spec.type), kind="backtest",
                                     own_metrics=own)
    return result.model_copy(update={"window": day.isoformat()})


@task(name="backtest-models", cache_policy=NO_CACHE)
def backtest_models(models: list[str], day: date, strict: bool = False) -> list[TestResult]:
    """One task for a batch of models: a Prefect task per small model would cost more than
    the test itself. A model whose data is wrong is alerted and the others go on (`strict`:
    the error is raised, for a person who asked for one model)."""
    ctx, logger = Context(), get_run_logger()
    stored = []
    for name in models:
        model = ctx.registry.get_model(name)
        version = ctx.registry.version_in_env_at(name, prod_env(ctx), utcnow())
        if version is None or not model.data_location:
            logger.warning("%s: %s", name, "not in production" if version is None
                           else "no data_location in its model.yaml")
            continue
        try:
            result = backtest_version(ctx, version, model.data_location, day)
        except InvalidInputError as exc:
            if strict:
                raise
            raise_alert(bad_data(version, day, exc))
            continue
        stored.append(ctx.registry.add_test_result(result, actor=FLOW))
    return stored


@flow(name=FLOW)
def daily_backtest(model: str | None = None, day: str | None = None) -> list[TestResult]:
    """Backtest every model in production (or one) on `day` (YYYY-MM-DD; default yesterday)."""
    ctx = Context()
    when = parse_day(day)
    names = [model] if model else [m.name for m in ctx.registry.list_models()]
    if model:
        ctx.registry.get_model(model)  # a clear error for an unknown model
    results = backtest_models(names, when, strict=model is not None)
    for result in results:
        version = ctx.registry.get_version_by_id(result.version_id)
        create_table_artifact(key=f"backtest-{version.model}", table=result_rows(result),
                              description=f"backtest of {version.ref} on {when}")
        for signal in backtest_signals(version, result):
            raise_alert(signal)
    get_run_logger().info("backtested %d model(s) on %s", len(results), when)
    return results


def parse_day(day: str | None) -> date:
    if day is None:
        return utcnow().date() - timedelta(days=1)
    try:
        return date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInputError(f"day: '{day}' is not a date like 2026-11-25") from exc


def prod_env(ctx: Context) -> str:
    return ctx.policy().deployment.prod.get("env", "prod")


def result_rows(result: TestResult) -> list[dict[str, object]]:
    if result.outcome == "no data":
        return [{"outcome": "no data", "looked in": result.dataset_uri}]
    return evaluation.result_table(result)


def backtest_signals(version: VersionRecord, result: TestResult) -> list[AlertSignal]:
    """A missed threshold is one alert for as long as it lasts (the window is not the date);
    so is a stretch of days without data."""
    base = {"model": version.model, "version": version.number, "source": FLOW,
            "monitor": "backtest", "window": "daily"}
    if result.outcome == "no data":
        return [AlertSignal(**base, severity=Severity.WARNING, metric="no-data",
                            title=f"{version.ref}: no labelled data for {result.window}",
                            detail=f"Nothing at {result.dataset_uri}; the backtest recorded "
                                   "'no data'.")]
    return [AlertSignal(
        **base, severity=Severity.WARNING, metric=check.metric, value=check.value,
        threshold=check.threshold,
        title=f"{version.ref} backtest {result.window}: {check.metric} "
              f"{'missing' if check.value is None else f'{check.value:.4g}'} "
              f"{'below' if check.op == '>=' else 'above'} {check.threshold:g}",
        detail=f"Backtest on {result.dataset_uri}.")
        for check in result.thresholds if not check.passed]


def bad_data(version: VersionRecord, day: date, exc: Exception) -> AlertSignal:
    return AlertSignal(severity=Severity.WARNING, model=version.model, version=version.number,
                       source=FLOW, monitor="backtest", metric="bad-data", window="daily",
                       title=f"{version.ref}: labelled data for {day} is not usable"[:300],
                       detail=str(exc)[:2000])
