"""retrain: new labelled data (the data sensor, a signed notification, the policy's schedule
or a person) trains a challenger with the champion's recipe; both are compared on the same
held-out rows with paired tests; a challenger that wins as the policy's rule demands goes the
on-model-changed way (re-test, scan, approval with the comparison as evidence, QA, then
production), and one that does not is rejected while the champion stays."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, runtime, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from flows.on_model_changed import on_model_changed
from flows.run_names import run_name
from mlc_tasks import challenge, comparison, evaluation, retraining, training
from mlc_tasks.comparison import ComparisonSettings
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.evaluation import own_metrics, version_model
from mlc_tasks.lifecycle import State as Life
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.package_metrics import PackageCode
from mlc_tasks.packages import ModelType, TrainingSpec
from mlc_tasks.registry import VersionRecord
from mlc_tasks.registry.champions import ChampionBook, ComparisonRecord
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.registry.refusals import record_refusal
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources, resources
from mlc_tasks.run_requests import checked_trigger
from mlc_tasks.submission import stored_spec

FLOW = "retrain"


@task(name="train-challenger", cache_policy=NO_CACHE)
def train_challenger(champion: VersionRecord, spec: TrainingSpec, train: pd.DataFrame,
                     data: retraining.NewData, requester: str) -> VersionRecord:
    """Fit the champion's recipe on the training rows and register the challenger (the same
    champion and data again is the same version), submitted by whoever asked for it."""
    ctx = resources()
    model = ctx.registry.get_model(champion.model)
    pipeline = training.fit(ModelType(model.type), spec, champion.input_schema, train,
                            champion.label)
    artifact = training.stored_artifact(pipeline, f"{champion.model} challenger",
                                        ctx.settings.trusted_types, ctx.store(), data.sha256)
    version, _ = ctx.registry.register_version(
        retraining.model_spec(model, champion), retraining.challenger(champion, spec, artifact,
                                                                      data), requester)
    return version


@task(name="compare-champion-challenger", cache_policy=NO_CACHE)
def compare(champion: VersionRecord, challenger: VersionRecord, held: pd.DataFrame,
            uri: str, rule: ComparisonSettings) -> ComparisonRecord:
    """Paired tests on the held-out rows, recorded once on both versions."""
    ctx = resources()
    held_sha = retraining.frame_sha256(held)
    book = ChampionBook(ctx.registry)
    done = book.comparison(challenger.id, champion.id, held_sha)
    if done is not None:
        return done
    models = {v.id: version_model(v, ctx.settings.trusted_types) for v in (champion, challenger)}
    own = own_metrics(champion, stored_spec(str(champion.package_uri)),
                      ctx.settings.sandbox_limits())
    model_type = ctx.registry.get_model(champion.model).type
    found = challenge.judge(model_type, champion, models[champion.id], models[challenger.id],
                            held, rule, own)
    for version, kind in retraining.holdout_kinds(champion, challenger):
        record_holdout_test(ctx, version, models[version.id], held, held_sha, kind, own, uri)
    return book.record_comparison(champion, challenger, uri, held_sha, found.rows,
                                  found.outcome.value, found.reason,
                                  found.model_dump(mode="json"), FLOW)


def record_holdout_test(ctx: Resources, version: VersionRecord, model: Any, held: pd.DataFrame,
                        held_sha: str, kind: ResultKind, own: PackageCode | None, uri: str
                        ) -> None:
    """The standard test record of each on the held-out rows (retraining.holdout_kinds)."""
    if not retraining.needs_holdout_test(kind, ctx.registry.test_results(version.id)):
        return
    result = evaluation.test_version(version, model, held, uri, held_sha,
                                     ctx.policy().thresholds_for(ctx.registry.get_model(
                                         version.model).type), kind=kind, own_metrics=own)
    ctx.registry.add_test_result(result.model_copy(update={
        "window": retraining.holdout_window(kind, held_sha)}), actor=FLOW)


@flow(name=FLOW, flow_run_name=run_name(FLOW))
def retrain(model: str, data: str | None = None, trigger: str = "manual",
            request: str | None = None) -> State:
    """Retrain `model` on `data` (a CSV file under its data location), or on its data location's
    recent days; compare with the champion; promote through on-model-changed if it wins.
    `trigger` (manual, schedule, new data, notification) says what asked; an event may carry
    any parameters, so it is checked, and the audited actor is this flow.

    Args:
        model: the model to retrain
        data: a CSV file under the model's data location; empty: its recent days
        trigger: what asked: manual, schedule, new-data or notification
        request: the id of a person's recorded retraining request, if one asked
    """
    ctx = resources()
    job = admitted(ctx, model, data, trigger, request)
    record_start(ctx, job, request)
    champion, new = job.champion, job.data
    spec = retraining.recipe(champion)
    train, held = retraining.split_holdout(new.rows, champion.label, job.rule.holdout, spec.seed)
    challenger = train_challenger(champion, spec, train, new, job.requester)
    decided = compare(champion, challenger, held, f"{new.uri} (held-out rows)",
                      job.rule.comparison)
    show(decided, champion, challenger)
    if not retraining.wins(decided):
        return keep_champion(ctx, champion, challenger, decided)
    get_run_logger().info("%s beat %s: %s", challenger.ref, champion.ref, decided.reason)
    return on_model_changed(model, challenger.number)


def admitted(ctx: Resources, model: str, data: str | None, trigger: str, request: str | None
             ) -> retraining.Retraining:
    """The retraining the run asks for, checked: an event or a run may carry anything, so a
    refusal is on the record."""
    record = ctx.registry.get_model(model)
    try:
        asked = checked_trigger(trigger)
        requester = retraining.requester(ctx.registry.audit_events(model), model, asked,
                                         request)
        champion = retraining.champion_to_challenge(
            model, ChampionBook(ctx.registry).champion(model))
        rule = ctx.policy().retraining_for(model, record.type, record.risk_tier)
        new = retraining.read_new_data(data, record.data_location, utcnow().date(),
                                       rule.window_days, LocationPolicy.from_settings(ctx.settings))
    except InvalidInputError as exc:
        record_refusal(ctx.registry, actor=FLOW, action="model.retraining_refused",
                       model=model, reason=str(exc), detail=retraining.refusal_detail(
                           trigger, data, request, str(runtime.flow_run.id)))
        raise
    return retraining.Retraining(asked, requester, champion, rule, new)


def record_start(ctx: Resources, job: retraining.Retraining, request: str | None) -> None:
    """What asked, in the model's story."""
    model, champion, new = job.champion.model, job.champion, job.data
    get_run_logger().info("%s: retraining %s (%s) on %d rows of %s", model, champion.ref,
                          job.trigger, len(new.rows), new.uri)
    with ctx.registry.transaction() as session:
        ctx.registry.append_audit(
            session, actor=FLOW, action="model.retraining", entity="model", entity_id=model,
            model=model, reason=job.audit_reason(),
            detail=job.audit_detail(request, str(runtime.flow_run.id)),
            evidence_sha256=new.sha256)


def keep_champion(ctx: Resources, champion: VersionRecord, challenger: VersionRecord,
                  decided: ComparisonRecord) -> State:
    """The champion stays; the challenger is rejected (unless it ended or serves meanwhile)."""
    current = ctx.registry.get_version(challenger.model, challenger.number)
    if retraining.may_reject(current.state):
        ctx.registry.transition(challenger.id, Life.REJECTED, FLOW,
                                retraining.kept_reason(champion, decided))
    return Completed(message=f"{champion.ref} kept ({decided.outcome}); "
                             f"{challenger.ref} rejected")


def show(decided: ComparisonRecord, champion: VersionRecord, challenger: VersionRecord) -> None:
    """The comparison side by side in the Prefect UI."""
    found = comparison.Comparison.model_validate(decided.detail)
    key = f"comparison-{champion.model}"
    create_table_artifact(key=key, table=comparison.comparison_table(found),
                          description=f"{champion.ref} (champion) against {challenger.ref} "
                                      f"(challenger): {decided.outcome}")
    create_markdown_artifact(key=f"{key}-decision", markdown=comparison.comparison_markdown(
        found, champion.ref, challenger.ref), description=f"decision on {challenger.ref}")
