"""monitor: drift, performance and fairness of each production version over the last days of
labelled data (its data_location), against the version's training-data snapshot and its own
test. One standard record per check, a summary and the Evidently report in the Prefect UI,
and an alert per breach — one while it lasts, not one per run."""

from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE

from flows.alerts import raise_alert
from flows.change_management import rollback_if_critical
from flows.daily_backtest import parse_day, prod_env
from mlc_tasks import evaluation, monitoring, reports
from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.capture import capped_notes, captured_rows
from mlc_tasks.daily_data import read_day
from mlc_tasks.drift import drift_report
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.fairness import Outcome, fairness
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.policy import MonitoringPolicy
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources
from mlc_tasks.submission import stored_spec
from mlc_tasks.training import read_training_data

FLOW = "monitor"


def recent_rows(location: str, last_day: date, days: int, policy: LocationPolicy
                ) -> tuple[pd.DataFrame, str, str] | None:
    """The labelled rows of the `days` days ending `last_day`; None when none arrived."""
    found = [read_day(location, last_day - timedelta(days=back), policy)
             for back in range(days)]
    found = [f for f in found if f is not None]
    if not found:
        return None
    digest = hashlib.sha256("".join(sha for _, _, sha in found).encode()).hexdigest()
    return (pd.concat([rows for rows, _, _ in found], ignore_index=True),
            f"{location} ({len(found)} of {days} days)", digest)


def scoring_inputs(ctx: Resources, version: VersionRecord, last_day: date, days: int
                   ) -> tuple[pd.DataFrame | None, str]:
    """What the runtimes scored for this version in the window and since (inputs are there
    at once; labels arrive a day later)."""
    root = ctx.settings.capture_dir()
    first, today = last_day - timedelta(days=days - 1), utcnow().date()
    window = [first + timedelta(days=n) for n in range((max(today, last_day) - first).days + 1)]
    rows = captured_rows(root, version.model, version.number, window)
    capped = capped_notes(root, version.model, version.number, window)
    return rows, (f"scoring inputs captured under {root} ({0 if rows is None else len(rows)} rows"
                  + (f"; capture capped: {'; '.join(capped)}" if capped else "") + ")")


def training_snapshot(version: VersionRecord, policy: LocationPolicy) -> pd.DataFrame:
    spec = stored_spec(str(version.package_uri))
    location = spec.training.data if spec.training else spec.lineage.training_data
    if not location:
        raise InvalidInputError(f"{version.ref}: model.yaml names no training data "
                                "(lineage.training_data) to compare with")
    return pd.read_csv(io.BytesIO(read_training_data(location, str(version.package_uri),
                                                     policy)))


def check_version(ctx: Resources, version: VersionRecord, location: str, last_day: date,
                  policy: MonitoringPolicy) -> list[TestResult]:
    """Drift, performance and fairness records for one version (not stored here)."""
    window = f"{last_day - timedelta(days=policy.window_days - 1)}..{last_day}"
    roots = LocationPolicy.from_settings(ctx.settings)  # checked before anything is read
    found = recent_rows(location, last_day, policy.window_days, roots)
    if found is None:
        return [monitoring.record(version, "drift", window, location, "", {}, [], "no data")]
    rows, where, sha = found
    features, labels = evaluation.labelled_frame(rows, version.input_schema, version.label,
                                                 where)
    reference = training_snapshot(version, roots)
    inputs, inputs_where = scoring_inputs(ctx, version, last_day, policy.window_days)
    if inputs is None or len(inputs) < policy.min_scoring_rows:
        # too little production traffic to judge: the labelled rows' inputs stand in
        inputs, inputs_where = features, f"{where} (inputs of the labelled rows)"
    report = drift_report(reference, inputs, version.input_schema, policy.drift)
    columns = [c.name for c in version.input_schema]
    html = monitoring.evidently_report(reference[columns], inputs[columns],
                                       policy.report_sample_rows)
    report_uri, _ = ctx.store().put(html, reports.SUFFIX)
    metrics, checks = monitoring.drift_checks(report, policy.drift)
    results = [monitoring.record(version, "drift", window, inputs_where, sha, metrics, checks,
                                 report_uri=report_uri)]
    model = evaluation.version_model(version, ctx.settings.trusted_types)
    current = evaluation.compute_metrics(model, features, labels, version.metrics)
    baseline = [r for r in ctx.registry.test_results(version.id) if r.kind == "test"]
    if baseline:
        results.append(monitoring.record(
            version, "performance", window, where, sha, current,
            monitoring.performance_checks(current, baseline[-1].metrics,
                                          policy.performance_tolerance)))
    predictions = pd.Series(model.predict(features))
    limits = {"demographic_parity_difference": ("<=", policy.fairness.max_parity_difference),
              "disparate_impact_ratio": (">=", policy.fairness.min_impact_ratio),
              "equalized_odds_difference": ("<=",
                                            policy.fairness.max_equalized_odds_difference)}
    for attribute in version.sensitive_attributes:
        if attribute not in rows.columns:
            raise InvalidInputError(f"{where}: sensitive attribute column '{attribute}' is "
                                    "missing")
        judged = fairness(attribute, labels.reset_index(drop=True), predictions,
                          rows[attribute].reset_index(drop=True), policy.fairness)
        metrics, checks = monitoring.fairness_checks(judged, limits)
        outcome = "insufficient data" if judged.outcome == Outcome.INSUFFICIENT else "tested"
        results.append(monitoring.record(version, f"fairness:{attribute}", window, where, sha,
                                         metrics, checks, outcome))
    return results


@task(name="monitor-models", cache_policy=NO_CACHE)
def monitor_models(models: list[str], last_day: date, strict: bool) -> list[TestResult]:
    ctx, logger = resources(), get_run_logger()
    policy, stored = ctx.policy().monitoring, []
    for name in models:
        model = ctx.registry.get_model(name)
        version = ctx.registry.version_in_env_at(name, prod_env(ctx), utcnow())
        if version is None or not model.data_location:
            logger.warning("%s: %s", name, "not in production" if version is None
                           else "no data_location in its model.yaml")
            continue
        try:
            found = check_version(ctx, version, model.data_location, last_day, policy)
        except Exception as exc:  # one model's bad data must not stop the others
            if strict:
                raise
            raise_alert(AlertSignal(severity=Severity.WARNING, model=name,
                                    version=version.number, source=FLOW, monitor="monitor",
                                    metric="bad-data", title=f"{version.ref}: monitoring "
                                    f"data not usable"[:300], detail=str(exc)[:2000]))
            continue
        stored += [ctx.registry.add_test_result(r, actor=FLOW) for r in found]
    return stored


@flow(name=FLOW)
def monitor(model: str | None = None, day: str | None = None) -> list[TestResult]:
    """Monitor every model in production (or one) over the days ending `day` (default
    yesterday)."""
    ctx = resources()
    last_day = parse_day(day)
    if model:
        ctx.registry.get_model(model)
    results = monitor_models([model] if model else [m.name for m in ctx.registry.list_models()],
                             last_day, strict=model is not None)
    by_version: dict[str, list[TestResult]] = {}
    for result in results:
        by_version.setdefault(result.version_id, []).append(result)
    for version_id, found in by_version.items():
        version = ctx.registry.get_version_by_id(version_id)
        show(ctx, version, found)
        for signal in breach_signals(version, found):
            raise_alert(signal)
        rollback_if_critical(ctx, version, found, FLOW)
    return results


def show(ctx: Resources, version: VersionRecord, results: list[TestResult]) -> None:
    lines = [f"## Monitoring {version.ref}, {results[0].window}", "",
             "| check | outcome | passed | failing |", "|---|---|---|---|"]
    for r in results:
        failing = ", ".join(c.metric for c in r.thresholds if not c.passed) or "-"
        lines.append(f"| {r.kind} | {r.outcome} | {'✅' if r.passed else '❌'} | {failing} |")
    report = reports.report_link(ctx.settings.installation_url(),
                         next((r.report_uri for r in results if r.report_uri), None))
    lines += ["", f"[Evidently data-drift report]({report})" if report else "",
              f"Data: `{results[0].dataset_uri}`"]
    if report:
        create_link_artifact(key=f"drift-report-{version.model}", link=report,
                             link_text=f"Evidently data-drift report of {version.ref}",
                             description=f"drift of {version.ref} in {results[0].window}")
    create_markdown_artifact(key=f"monitor-{version.model}", markdown="\n".join(lines),
                             description=f"monitoring of {version.ref}")
    rows = [{"check": r.kind, "metric": c.metric, "value": None if c.value is None
             else round(c.value, 4), "limit": f"{c.op} {c.threshold:g}", "passed": c.passed}
            for r in results for c in r.thresholds]
    if rows:
        create_table_artifact(key=f"monitor-{version.model}-checks", table=rows,
                              description=f"checks of {version.ref} against their limits")
    details = [{"check": r.kind, "measure": name, "value": round(value, 6)}
               for r in results for name, value in sorted(r.metrics.items())]
    if details:  # per column effect and corrected p-value; per group rows and rates
        create_table_artifact(key=f"monitor-{version.model}-details", table=details,
                              description=f"drift per column and metrics per group of "
                                          f"{version.ref}")


def breach_signals(version: VersionRecord, results: list[TestResult]) -> list[AlertSignal]:
    """One alert per kind of breach; the window is not part of the fingerprint, so a breach
    that lasts a week is one alert with a count."""
    base = {"model": version.model, "version": version.number, "source": FLOW, "window": ""}
    signals = []
    for r in results:
        failing = [c for c in r.thresholds if not c.passed]
        if r.outcome == "no data":
            signals.append(AlertSignal(**base, severity=Severity.WARNING, monitor="monitor",
                                       metric="no-data", title=f"{version.ref}: no labelled "
                                       f"data in {r.window}", detail=r.dataset_uri))
        elif r.outcome == "insufficient data":
            signals.append(AlertSignal(**base, severity=Severity.INFO, monitor=r.kind,
                                       metric="insufficient-data",
                                       title=f"{version.ref}: {r.kind} has too few rows in a "
                                             f"group to judge ({r.window})"))
        elif failing:
            names = ", ".join(c.metric.split(".")[0] for c in failing)
            signals.append(AlertSignal(
                **base, severity=Severity.WARNING, monitor=r.kind.split(":")[0],
                metric=r.kind.partition(":")[2] or "data",
                title=f"{version.ref}: {r.kind} breach in {r.window}: {names}"[:300],
                detail="; ".join(f"{c.metric} {c.value:.4g} (limit {c.op} {c.threshold:g})"
                                 for c in failing if c.value is not None)[:2000],
                value=failing[0].value, threshold=failing[0].threshold))
    return signals
