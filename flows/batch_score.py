"""batch-score: the production version's predictions for a dataset at a location, written
beside it; progress in the Prefect UI (a progress artifact) and to whoever listens (the CLI's
progress bar); the job recorded in the audit log."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.run_names import run_name
from flows.steps import production_version
from mlc_tasks import locations
from mlc_tasks.batch_scoring import Progress, score_file
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.evaluation import version_model
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.progress import PercentSteps
from mlc_tasks.registry import VersionRecord
from mlc_tasks.resources import Resources, resources

FLOW = "batch-score"
# The CLI sets this to drive its progress bar; a served run has no listener.
progress_listener: ContextVar[Callable[[int, int], None] | None] = ContextVar(
    "progress_listener", default=None)


@flow(name=FLOW, flow_run_name=run_name(FLOW))
def batch_score(model: str, input_uri: str, chunk_rows: int = 50_000) -> str:
    """Score `input_uri` (a CSV under an allowed data root) with the version serving
    production.

    Args:
        model: the registered model whose production version scores the rows
        input_uri: a CSV file (path or fsspec URL) under an allowed data root
        chunk_rows: rows scored at a time (bounds memory)
    """
    ctx = resources()
    policy = LocationPolicy.from_settings(ctx.settings)
    input_uri = locations.check(input_uri, policy, "input_uri").url  # before anything loads
    version = production_version(model)
    if version is None:
        raise InvalidInputError(f"{model} has no version in production to score with")
    scorer = version_model(version, ctx.settings.trusted_types)
    artifact_id = create_progress_artifact(progress=0.0, key=f"batch-score-{model}",
                                           description=f"scoring {input_uri} with {version.ref}")
    output, rows = score_file(scorer, version, input_uri, policy, chunk_rows,
                              shown_progress(artifact_id))
    update_progress_artifact(artifact_id, progress=100.0)
    record_job(ctx, version, input_uri, output, rows)
    get_run_logger().info("%s scored %d rows of %s into %s", version.ref, rows, input_uri,
                          output)
    return output


def shown_progress(artifact_id: UUID) -> Progress:
    """Progress to the artifact a whole percent at a time, and every chunk to the listener."""
    listener, steps = progress_listener.get(), PercentSteps()

    def progress(read: int, total: int) -> None:
        percent = steps.advance(read, total)
        if percent is not None:
            update_progress_artifact(artifact_id, progress=float(percent))
        if listener:
            listener(read, total)
    return progress


def record_job(ctx: Resources, version: VersionRecord, input_uri: str, output: str,
               rows: int) -> None:
    """The job in the model's audit log."""
    with ctx.registry.transaction() as session:
        ctx.registry.append_audit(session, actor=FLOW, action="version.batch_scored",
                                  entity="version", entity_id=version.id, model=version.model,
                                  detail={"number": version.number, "input": input_uri,
                                          "output": output, "rows": rows})
