"""Serves every deployment with its schedules and triggers (run by `mlc up`)."""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from flows.alerts import alert_sweeper
from flows.batch_score import batch_score
from flows.daily_backtest import daily_backtest
from flows.deploy_model import deploy_model
from flows.monitor import monitor
from flows.on_model_changed import on_model_changed
from flows.test_model import test_model
from mlc_tasks.events import MODEL_READY
from mlc_tasks.policy import load_policy
from mlc_tasks.settings import MlcSettings


def all_deployments() -> list[RunnerDeployment]:
    """Every process, each deployment named as its flow."""
    return [
        deploy_model.to_deployment(
            name="deploy-model",
            description="Deploy a model version onto the runtime whose tags match.",
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
        test_model.to_deployment(
            name="test-model",
            description="Test a version against the policy's thresholds (a step of "
                        "on-model-changed).",
            tags=["mlc"],
        ),
        daily_backtest.to_deployment(
            name="daily-backtest",
            description="Backtest each production version on yesterday's labelled data.",
            cron=load_policy(MlcSettings().policy_file).schedules.daily_backtest,
            tags=["mlc", "monitoring"],
        ),
        monitor.to_deployment(
            name="monitor",
            description="Drift, performance and fairness of each production version.",
            cron=load_policy(MlcSettings().policy_file).schedules.monitor,
            tags=["mlc", "monitoring"],
        ),
        batch_score.to_deployment(
            name="batch-score",
            description="Score a dataset with the production version; predictions beside it.",
            tags=["mlc", "jobs"],
        ),
        alert_sweeper.to_deployment(
            name="alert-sweeper",
            description="Re-send alert notifications that earlier runs could not deliver.",
            interval=60,
            tags=["mlc", "alerts"],
        ),
    ]


def main() -> None:
    serve(*all_deployments())


if __name__ == "__main__":
    main()
