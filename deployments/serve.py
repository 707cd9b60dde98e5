"""Serves every deployment with its schedules and triggers (run by `mlc up`)."""

from __future__ import annotations

from prefect import serve
from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.schedules import Cron, Interval, Schedule

from flows.alerts import alert_sweeper
from flows.audit_anchor import audit_anchor
from flows.batch_score import batch_score
from flows.catalog import Declared, load_processes
from flows.change_management import retire_champions, rollback_review
from flows.daily_backtest import daily_backtest
from flows.data_sensor import data_sensor
from flows.deploy_model import deploy_model, rollback_model
from flows.model_change import model_change
from flows.model_testing import model_test
from flows.monitor import monitor
from flows.on_model_changed import on_model_changed
from flows.retrain import retrain
from mlc_tasks.events import MODEL_READY, REQUESTED, ROLLED_BACK
from mlc_tasks.governance import CHANGE_REQUESTED
from mlc_tasks.policy import Policy
from mlc_tasks.processes import CUSTOM_PREFIX
from mlc_tasks.resources import Resources

REQUEST = {"model": "{{ event.payload.model }}"}
SENSOR_RUN_SECONDS = 60


def retrain_schedules(ctx: Resources, policy: Policy) -> list[Schedule]:
    """One cron per registered model whose retraining rule has a schedule (a model registered
    later gets its schedule at the next `mlc up`)."""
    schedules = []
    for model in ctx.registry.list_models():
        rule = policy.retraining_for(model.name, model.type, model.risk_tier)
        if rule.schedule:
            schedules.append(Cron(rule.schedule, slug=f"retrain-{model.name}",
                                  parameters={"model": model.name, "trigger": "schedule"}))
    return schedules


def process_deployments(ctx: Resources, declared: list[Declared]) -> list[RunnerDeployment]:
    """A team's own processes (flows/catalog.py), served like ours: a cron becomes one
    schedule per registered model, custom events a trigger passing the model and the request
    the run reads its payload from."""
    models = [m.name for m in ctx.registry.list_models()]
    return [found.flow.to_deployment(
        name=found.process.name, description=found.process.description,
        schedules=[Cron(found.process.schedule, slug=f"{found.process.name}-{m}",
                        parameters={"model": m}) for m in models] if found.process.schedule
        else None,
        triggers=[DeploymentEventTrigger(
            expect={CUSTOM_PREFIX + e for e in found.process.events},
            parameters={"model": "{{ event.payload.model }}",
                        "event": "{{ event.payload.request }}"})] if found.process.events
        else None,
        tags=["mlc", "process", *found.process.tags]) for found in declared]


def all_deployments() -> list[RunnerDeployment]:
    """Every process, ours and the process folders', each deployment named as its flow."""
    ctx = Resources()
    declared = load_processes(ctx.settings.process_folders())
    return our_deployments(ctx) + process_deployments(ctx, declared)


def our_deployments(ctx: Resources) -> list[RunnerDeployment]:
    policy = ctx.policy()
    return [
        deploy_model.to_deployment(
            name="deploy-model",
            description="Deploy a model version onto the runtime whose tags match (never "
                        "production).",
            tags=["mlc"],
        ),
        rollback_model.to_deployment(
            name="rollback-model",
            description="Put back the version a stage served before its current one (production "
                        "only at a person's request through the control-plane API).",
            tags=["mlc"],
        ),
        on_model_changed.to_deployment(
            name="on-model-changed",
            description="From submission to production: train, test, scan, approve, deploy "
                        "QA then production.",
            triggers=[DeploymentEventTrigger(
                expect={MODEL_READY},
                parameters={"model": "{{ event.payload.model }}",
                            "number": "{{ event.payload.number }}"},
            )],
            tags=["mlc"],
        ),
        model_test.to_deployment(
            name="test-model",
            description="Test a version against the policy's thresholds (a step of "
                        "on-model-changed).",
            tags=["mlc"],
        ),
        daily_backtest.to_deployment(
            name="daily-backtest",
            description="Backtest each production version on yesterday's labelled data.",
            cron=policy.schedules.daily_backtest,
            triggers=[DeploymentEventTrigger(  # new data or a notification asked for one
                expect={REQUESTED["backtest"]},
                parameters={**REQUEST, "day": "{{ event.payload.day }}"})],
            tags=["mlc", "monitoring"],
        ),
        monitor.to_deployment(
            name="monitor",
            description="Drift, performance and fairness of each production version.",
            cron=policy.schedules.monitor,
            tags=["mlc", "monitoring"],
        ),
        batch_score.to_deployment(
            name="batch-score",
            description="Score a dataset with the production version; predictions beside it.",
            tags=["mlc", "jobs"],
        ),
        retrain.to_deployment(
            name="retrain",
            description="Train a challenger on new data, compare it with the champion, promote "
                        "it through on-model-changed if it wins.",
            schedules=retrain_schedules(ctx, policy),
            triggers=[DeploymentEventTrigger(
                expect={REQUESTED["retrain"]},
                parameters={**REQUEST, "data": "{{ event.payload.data }}",
                            "trigger": "{{ event.payload.trigger }}",
                            "request": "{{ event.payload.request }}"})],
            tags=["mlc", "retraining"],
        ),
        data_sensor.to_deployment(
            name="data-sensor",
            description="Notice new labelled files in the models' data locations.",
            # one run a minute, looking every `sensor.every` within it (a run per look would
            # start a Python process every few seconds); a run still looking when the next
            # is due cancels the newcomer, so runs never pile up
            schedules=[Interval(SENSOR_RUN_SECONDS, parameters={
                "watch_seconds": SENSOR_RUN_SECONDS - 10})],
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
            tags=["mlc", "retraining"],
        ),
        retire_champions.to_deployment(
            name="retire-champions",
            description="Retire replaced champions once their grace period has passed.",
            cron="17 * * * *",
            tags=["mlc", "retraining"],
        ),
        model_change.to_deployment(
            name="model-change",
            description="A change of a model's governance fields waits for the model-risk "
                        "group; approved, it is written to the registry.",
            triggers=[DeploymentEventTrigger(
                expect={CHANGE_REQUESTED},
                parameters={"model": "{{ event.payload.model }}",
                            "change_id": "{{ event.payload.change_id }}"})],
            tags=["mlc", "governance"],
        ),
        rollback_review.to_deployment(
            name="rollback-review",
            description="After an automatic rollback: serve the version again, or retire it.",
            triggers=[DeploymentEventTrigger(
                expect={ROLLED_BACK},
                parameters={**REQUEST, "number": "{{ event.payload.number }}",
                            "breach": "{{ event.payload.breach }}"})],
            tags=["mlc", "retraining"],
        ),
        alert_sweeper.to_deployment(
            name="alert-sweeper",
            description="Re-send alert notifications that earlier runs could not deliver.",
            interval=60,
            tags=["mlc", "alerts"],
        ),
        audit_anchor.to_deployment(
            name="audit-anchor",
            description="Check the audit log and write its head outside the database.",
            cron="41 * * * *",
            tags=["mlc", "audit"],
        ),
    ]


def main() -> None:
    serve(*all_deployments())


if __name__ == "__main__":
    main()
