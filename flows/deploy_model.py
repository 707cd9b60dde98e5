"""deploy-model: put a version on the runtime whose tags match, and record it."""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task

from deployments.context import Context
from mlc_tasks import runtimes
from mlc_tasks.errors import TransientError


def _transient_only(_task: Any, _run: Any, state: Any) -> bool:
    """Retry a runtime that did not answer; never retry a refusal."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


deploy_version = task(
    name="deploy-version", retries=2, retry_delay_seconds=[2, 10],
    retry_condition_fn=_transient_only,
)(runtimes.deploy_version)


@flow(name="deploy-model")
def deploy_model(
    model: str, version: int, tags: dict[str, str], actor: str, reason: str = ""
) -> str:
    """Deploy version `version` of `model` onto the one runtime matching `tags`."""
    logger = get_run_logger()
    ctx = Context()
    record = ctx.registry.get_version(model, version)
    runtime = ctx.choose_runtime(tags)
    client = ctx.runtime_client(runtime.url)
    done = deploy_version(ctx.registry, client, runtime, record, actor, reason)
    outcome = f"{record.ref} {'deployed on' if done else 'already on'} {runtime.name}"
    logger.info(outcome)
    return outcome
