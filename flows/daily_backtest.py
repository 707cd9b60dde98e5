"""daily-backtest: every morning, test the exact version each model serves in production on
the labelled data of the day before, store the standard test record (one per model and date:
a rerun replaces it), show it in the Prefect UI, and alert when a threshold is missed or no
data arrived."""

from __future__ import annotations

from datetime import date

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.change_management import rollback_if_critical
from flows.run_names import run_name
from flows.steps import production_version, raise_alert
from mlc_tasks import breaches, center_links, evaluation, monitoring, result_tables
from mlc_tasks.daily_data import day_pattern, parse_day, read_day
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.records import ResultKind
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
        return monitoring.no_data(version, ResultKind.BACKTEST, day.isoformat(),
                                  day_pattern(location, day))
    rows, where, sha = found
    spec = stored_spec(str(version.package_uri))
    model = evaluation.version_model(version, ctx.settings.trusted_types)
    result = evaluation.test_version(
        version, model, rows, where, sha, ctx.policy().thresholds_for(spec.type),
        kind=ResultKind.BACKTEST,
        own_metrics=evaluation.own_metrics(version, spec, ctx.settings.sandbox_limits()))
    return result.model_copy(update={"window": day.isoformat()})


@task(name="backtest-models", cache_policy=NO_CACHE)
def backtest_models(names: list[str], day: date, strict: bool = False
                    ) -> list[tuple[VersionRecord, TestResult]]:
    """One task for a batch of models: a Prefect task per small model would cost more than
    the test itself. A model whose data is wrong is alerted and the others go on (`strict`:
    the error is raised, for a person who asked for one model)."""
    ctx, logger = resources(), get_run_logger()
    models = {m.name: m for m in ctx.registry.list_models()}
    stored = []
    for name in names:
        version = production_version(name)  # the one serving now
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
            raise_alert(breaches.backtest_bad_data(version, day.isoformat(), exc, FLOW))
            continue
        stored.append((version, ctx.registry.add_test_result(result, actor=FLOW)))
    return stored


@flow(name=FLOW, flow_run_name=run_name(FLOW))
def daily_backtest(model: str | None = None, day: date | None = None) -> list[TestResult]:
    """Backtest every model in production (or one) on `day`.

    Args:
        model: one model's name; empty: every model in production
        day: the day of labelled data to backtest on; empty: yesterday (UTC)
    """
    ctx = resources()
    when = parse_day(day, utcnow().date())
    if model:
        ctx.registry.get_model(model)  # a clear error for an unknown model
    names = [model] if model else [m.name for m in ctx.registry.list_models()]
    done = backtest_models(names, when, strict=model is not None)
    shown = result_tables.backtest_table(model, done, when)
    if shown is not None:
        create_table_artifact(key=shown.key, table=shown.table, description=shown.description)
    for version, result in done:
        create_link_artifact(key=f"charts-{version.model}",
                             link=center_links.model_page(ctx.settings, version.model),
                             link_text=f"{version.model}: every metric over the days, as charts",
                             description=f"the Command Center's page of {version.model}")
        for signal in breaches.backtest_signals(version, result, FLOW):
            raise_alert(signal)
        rollback_if_critical(ctx, version, [result], FLOW)
    get_run_logger().info("backtested %d model(s) on %s", len(done), when)
    return [result for _, result in done]
