"""monitor: drift, performance and fairness of each production version over the last days of
labelled data (its data_location), against the version's training-data snapshot and its own
test. One standard record per check, a summary and the Evidently report in the Prefect UI,
and an alert per breach — one while it lasts, not one per run."""

from __future__ import annotations

from datetime import date

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from flows.change_management import rollback_if_critical
from flows.run_names import run_name
from flows.steps import production_version, raise_alert
from mlc_tasks import breaches, center_links, evaluation, monitoring, reports, result_tables
from mlc_tasks.daily_data import parse_day, read_recent
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.policy import MonitoringPolicy
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources

FLOW = "monitor"


def check_version(ctx: Resources, version: VersionRecord, location: str, last_day: date,
                  policy: MonitoringPolicy) -> list[TestResult]:
    """Drift, performance and fairness records for one version (not stored here)."""
    window = monitoring.window_label(last_day, policy.window_days)
    roots = LocationPolicy.from_settings(ctx.settings)  # checked before anything is read
    found = read_recent(location, last_day, policy.window_days, roots)
    if found is None:
        return [monitoring.no_data(version, ResultKind.DRIFT, window, location)]
    rows, where, sha = found
    features, labels = evaluation.labelled_frame(rows, version.input_schema, version.label,
                                                 where)
    drift = drift_record(ctx, version, window, (features, where, sha), last_day, policy, roots)
    model = evaluation.version_model(version, ctx.settings.trusted_types)
    current = evaluation.compute_metrics(model, features, labels, version.metrics)
    performance = monitoring.performance_record(
        version, window, where, sha, current,
        monitoring.baseline(ctx.registry.test_results(version.id)), policy.performance_tolerance)
    predictions = pd.Series(model.predict(features))
    return [drift, *performance,
            *monitoring.fairness_records(version, window, where, sha, rows, labels, predictions,
                                         policy.fairness)]


def drift_record(ctx: Resources, version: VersionRecord, window: str,
                 labelled: tuple[pd.DataFrame, str, str], last_day: date,
                 policy: MonitoringPolicy, roots: LocationPolicy) -> TestResult:
    """Drift of what production scored (or, with too little traffic, of the labelled rows'
    inputs) from the training data, with the Evidently report stored beside it."""
    features, where, sha = labelled
    reference = monitoring.training_snapshot(version, roots)
    captured, captured_where = monitoring.scoring_inputs(
        ctx.settings.capture_dir(), version,
        monitoring.capture_days(last_day, policy.window_days, utcnow().date()))
    inputs, inputs_where = monitoring.drift_inputs(captured, captured_where, features, where,
                                                   policy.min_scoring_rows)
    result = monitoring.drift_record(version, window, reference, inputs, inputs_where, sha,
                                     policy.drift)
    columns = [c.name for c in version.input_schema]
    html = monitoring.evidently_report(reference[columns], inputs[columns],
                                       policy.report_sample_rows)
    report_uri, _ = ctx.store().put(html, reports.SUFFIX)
    return result.model_copy(update={"report_uri": report_uri})


@task(name="monitor-models", cache_policy=NO_CACHE)
def monitor_models(models: list[str], last_day: date, strict: bool) -> list[TestResult]:
    """One task for the batch; a model whose data is wrong is alerted and the others go on
    (`strict`: the error is raised, for a person who asked for one model)."""
    ctx, logger = resources(), get_run_logger()
    policy, stored = ctx.policy().monitoring, []
    for name in models:
        model = ctx.registry.get_model(name)
        version = production_version(name)
        if version is None or not model.data_location:
            logger.warning("%s: %s", name, "not in production" if version is None
                           else "no data_location in its model.yaml")
            continue
        try:
            found = check_version(ctx, version, model.data_location, last_day, policy)
        except Exception as exc:  # one model's bad data must not stop the others
            if strict:
                raise
            raise_alert(breaches.monitor_bad_data(version, exc, FLOW))
            continue
        stored += [ctx.registry.add_test_result(r, actor=FLOW) for r in found]
    return stored


@flow(name=FLOW, flow_run_name=run_name(FLOW))
def monitor(model: str | None = None, day: date | None = None) -> list[TestResult]:
    """Monitor drift, performance and fairness of every model in production (or one) over
    the days ending `day`.

    Args:
        model: one model's name; empty: every model in production
        day: the last day of the window; empty: yesterday (UTC)
    """
    ctx = resources()
    last_day = parse_day(day, utcnow().date())
    if model:
        ctx.registry.get_model(model)
    results = monitor_models([model] if model else [m.name for m in ctx.registry.list_models()],
                             last_day, strict=model is not None)
    for version_id, found in monitoring.by_version(results).items():
        version = ctx.registry.get_version_by_id(version_id)
        show(ctx, version, found)
        for signal in breaches.monitor_signals(version, found, FLOW):
            raise_alert(signal)
        rollback_if_critical(ctx, version, found, FLOW)
    return results


def show(ctx: Resources, version: VersionRecord, results: list[TestResult]) -> None:
    """The window's checks, the Evidently report's link and the tables in the Prefect UI."""
    report = reports.report_link(ctx.settings.installation_url(),
                                 result_tables.report_uri(results))
    if report:
        create_link_artifact(key=f"drift-report-{version.model}", link=report,
                             link_text=f"Evidently data-drift report of {version.ref}",
                             description=f"drift of {version.ref} in {results[0].window}")
    create_markdown_artifact(key=f"monitor-{version.model}",
                             markdown=result_tables.monitor_markdown(version, results, report),
                             description=f"monitoring of {version.ref}")
    for table in result_tables.monitor_tables(version, results):
        create_table_artifact(key=table.key, table=table.table, description=table.description)
    create_link_artifact(key=f"charts-{version.model}",
                         link=center_links.model_page(ctx.settings, version.model),
                         link_text=f"{version.model}: every metric over the days, as charts",
                         description=f"the Command Center's page of {version.model}")
