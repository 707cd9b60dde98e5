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

from flows.alerts import raise_alert
from flows.change_management import rollback_if_critical
from mlc_tasks import evaluation
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.daily_data import day_pattern, read_day
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources
from mlc_tasks.submission import stored_spec

FLOW = "daily-backtest"


def backtest_version(ctx: Resources, version: VersionRecord, location: str, day: date
                     ) -> TestResult:
    """The test job on the day's labelled rows; a "no data" record when nothing arrived. A
    location outside the allowed roots is refused before it is looked in (bad data: alerted)."""
    found = read_day(location, day, LocationPolicy.from_settings(ctx.settings))
    if found is None:
        return TestResult(id=uuid.uuid4().hex, version_id=version.id, kind="backtest",
                          dataset_uri=day_pattern(location, day), dataset_sha256="",
                          metrics={}, thresholds=[], passed=False, report_uri=None,
                          created_at=utcnow(), window=day.isoformat(), outcome="no data")
    rows, where, sha = found
    spec = stored_spec(str(version.package_uri))
    result = evaluation.test_version(version, evaluation.version_model(
                                         version, ctx.settings.trusted_types), rows, where,
                                     sha, ctx.policy().thresholds_for(spec.type),
                                     kind="backtest",
                                     own_metrics=evaluation.own_metrics(
                                         version, spec, ctx.settings.sandbox_limits()))
    return result.model_copy(update={"window": day.isoformat()})


@task(name="backtest-models", cache_policy=NO_CACHE)
def backtest_models(names: list[str], day: date, strict: bool = False
                    ) -> list[tuple[VersionRecord, TestResult]]:
    """One task for a batch of models: a Prefect task per small model would cost more than
    the test itself. A model whose data is wrong is alerted and the others go on (`strict`:
    the error is raised, for a person who asked for one model)."""
    ctx, logger = resources(), get_run_logger()
    models = {m.name: m for m in ctx.registry.list_models()}
    env, stored = prod_env(ctx), []
    for name in names:
        version = ctx.registry.version_in_env_at(name, env, utcnow())  # the one serving now
        location = models[name].data_location
        if version is None or not location:
            logger.warning("%s: %s", name, "not in production" if version is None
                           else "no data_location in its model.yaml")
            continue
        try:
            result = backtest_version(ctx, version, location, day)
        except Exception as exc:  # one model's bad data must not stop the night's run
            if strict:
                raise
            raise_alert(bad_data(version, day, exc))
            continue
        stored.append((version, ctx.registry.add_test_result(result, actor=FLOW)))
    return stored


@flow(name=FLOW)
def daily_backtest(model: str | None = None, day: str | None = None) -> list[TestResult]:
    """Backtest every model in production (or one) on `day` (YYYY-MM-DD; default yesterday)."""
    ctx = resources()
    when = parse_day(day)
    if model:
        ctx.registry.get_model(model)  # a clear error for an unknown model
    names = [model] if model else [m.name for m in ctx.registry.list_models()]
    done = backtest_models(names, when, strict=model is not None)
    if model and done:
        create_table_artifact(key=f"backtest-{model}", table=result_rows(done[0][1]),
                              description=f"backtest of {done[0][0].ref} on {when}")
    elif done:  # one summary for the night, not an API call per model
        create_table_artifact(key="backtest-nightly", table=[summary_row(v, r) for v, r in done],
                              description=f"backtest of {len(done)} models on {when}")
    for version, result in done:
        for signal in backtest_signals(version, result):
            raise_alert(signal)
        rollback_if_critical(ctx, version, [result], FLOW)
    get_run_logger().info("backtested %d model(s) on %s", len(done), when)
    return [result for _, result in done]


def summary_row(version: VersionRecord, result: TestResult) -> dict[str, object]:
    missed = [c.metric for c in result.thresholds if not c.passed]
    return {"version": version.ref, "outcome": result.outcome, "passed": result.passed,
            "missed": ", ".join(missed) or "-",
            **{k: round(v, 4) for k, v in sorted(result.metrics.items())[:6]}}


def parse_day(day: str | None) -> date:
    if day is None:
        return utcnow().date() - timedelta(days=1)
    try:
        return date.fromisoformat(day)
    except ValueError as exc:
        raise InvalidInputError(f"day: '{day}' is not a date like 2026-11-25") from exc


def prod_env(ctx: Resources) -> str:
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
