"""The control-plane API's actions: each is done for the authenticated caller (the actor the
registry records is the principal's id, never a name in the body), and each needs its scope:
`submit` a package, `decide` a task, `operate` alerts, retrainings, manual deploys, rollbacks
and model changes."""

# no `from __future__ import annotations`: FastAPI must see the dependencies (closures) in
# the annotations as objects, not as names it cannot resolve
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from deployments import api_upload
from deployments.api_auth import allowed
from deployments.api_read import dumped
from mlc_tasks import runtimes
from mlc_tasks.errors import InvalidInputError, TransientError
from mlc_tasks.people import Principal, Scope
from mlc_tasks.resources import Resources


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DecisionBody(Body):
    decision: str = Field(description="approve or reject (approvals, changes); retry or abort")
    comment: str = Field(default="", max_length=5000)


class RetrainBody(Body):
    data: str | None = Field(default=None, max_length=2000,
                             description="labelled data (fsspec URL) under the data location")


class DeployBody(Body):
    version: int
    tags: dict[str, str] | str = Field(
        description="runtime tags that must all match: an object, or 'env=qa,zone=eu'")
    reason: str = Field(default="manual deploy", max_length=2000)


class RollbackBody(Body):
    env: str = Field(default="prod", pattern="^(prod|qa)$")
    reason: str = Field(default="rollback", max_length=2000)


class ModelChange(Body):
    risk_tier: str | None = None
    type: str | None = None
    owner: str | None = None
    team: str | None = None
    data_location: str | None = None


async def upload_body(request: Request) -> bytes:
    """The request body, refused (413) beyond the upload limit before it is all read."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > api_upload.MAX_UPLOAD_BYTES:
            raise HTTPException(413, f"package upload over {api_upload.MAX_UPLOAD_BYTES >> 20} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def action_router(ctx: Resources) -> APIRouter:
    router = APIRouter(prefix="/v1")
    add_submit_route(router, ctx)
    add_operate_routes(router, ctx)
    add_model_routes(router, ctx)

    decider = allowed(ctx, Scope.DECIDE)

    @router.post("/tasks/{task_id}/decision")
    def decide(task_id: int, body: DecisionBody,
               principal: Annotated[Principal, Depends(decider)]) -> dict[str, Any]:
        """Decide for the caller; a refused attempt is answered (accepted false), not raised."""
        from deployments.decide import submit_decision
        from mlc_tasks.task_records import Decision

        if body.decision not in {d.value for d in Decision}:
            raise InvalidInputError(f"decision: '{body.decision[:50]}' is not one of "
                                    f"{', '.join(d.value for d in Decision)}")
        made, task = submit_decision(ctx, task_id, principal.id, body.decision, body.comment)
        return {"decision": dumped(made), "task": dumped(task)}

    return router


def add_submit_route(router: APIRouter, ctx: Resources) -> None:
    @router.post("/packages", openapi_extra={"requestBody": {"content": {
        "application/gzip": {"schema": {"type": "string", "format": "binary"}}}}})
    def submit(principal: Annotated[Principal, Depends(allowed(ctx, Scope.SUBMIT))],
               body: Annotated[bytes, Depends(upload_body)]) -> dict[str, Any]:
        """Register the uploaded package folder (a tar.gz) as a version submitted by the
        caller, and mark it ready (its process starts from that event)."""
        from mlc_tasks import events
        from mlc_tasks.submission import submit_package

        with tempfile.TemporaryDirectory(prefix="mlc-upload-") as temp:
            folder = api_upload.unpack(body, Path(temp) / "package")
            version, created = submit_package(folder, ctx.registry, ctx.store(),
                                              ctx.settings.trusted_types, principal.id)
        warning = None
        try:
            events.emit(events.model_ready_event(version, principal.id), ctx.prefect_api_url())
        except TransientError as exc:
            warning = str(exc)
        return {"version": dumped(version), "created": created, "warning": warning}


def add_operate_routes(router: APIRouter, ctx: Resources) -> None:
    operator = allowed(ctx, Scope.OPERATE)

    @router.post("/alerts/{alert_id}/ack")
    def ack(alert_id: int, principal: Annotated[Principal, Depends(operator)]) -> Any:
        from mlc_tasks.registry.alerts import AlertBook

        return dumped(AlertBook(ctx.registry).acknowledge(alert_id, principal.id))

    @router.post("/alerts/{alert_id}/resolve")
    def resolve(alert_id: int, principal: Annotated[Principal, Depends(operator)]
                ) -> dict[str, Any]:
        """Resolve the alert and tell the channels that were told of it."""
        from mlc_tasks.registry.alerts import AlertBook

        alert = AlertBook(ctx.registry).resolve(alert_id, principal.id)
        report = ctx.deliver_alerts()
        return {"alert": dumped(alert), "pending": report.pending, "failed": report.failed}

    @router.post("/models/{name}/retrain")
    def retrain(name: str, body: RetrainBody, principal: Annotated[Principal, Depends(operator)]
                ) -> dict[str, Any]:
        """Record who asked (the retraining's challenger is theirs), then ask the retrain
        deployment by its event; the request id ties the two."""
        from mlc_tasks import events

        ctx.registry.get_model(name)  # a clear 404 for an unknown model
        request = str(uuid.uuid4())
        with ctx.registry.transaction() as session:
            ctx.registry.append_audit(
                session, actor=principal.id, action="model.retrain_requested", entity="model",
                entity_id=name, model=name, detail={"request": request, "data": body.data})
        try:
            events.emit(events.request_event(name, "retrain", "manual", body.data,
                                             {"request": request}), ctx.prefect_api_url())
        except TransientError as exc:
            raise TransientError(f"retraining request {request} is recorded, but its run did "
                                 f"not start: {exc}") from exc
        return {"model": name, "request": request, "data": body.data}


def add_model_routes(router: APIRouter, ctx: Resources) -> None:
    operator = allowed(ctx, Scope.OPERATE)

    @router.post("/models/{name}/deploy")
    def deploy(name: str, body: DeployBody, principal: Annotated[Principal, Depends(operator)]
               ) -> dict[str, Any]:
        """A verified manual deploy onto the one live runtime whose tags match; a runtime with
        the policy's production tags (whatever they are) takes approved versions only."""
        tags = runtimes.parse_tags(body.tags) if isinstance(body.tags, str) else body.tags
        record = ctx.registry.get_version(name, body.version)
        runtime = ctx.choose_runtime(tags)
        done = runtimes.deploy_version(ctx.registry, ctx.runtime_client(runtime), runtime,
                                       record, principal.id, body.reason,
                                       ctx.policy().deployment.prod)
        return {"deployed": done, "version": dumped(record), "runtime": dumped(runtime)}

    @router.post("/models/{name}/rollback")
    def rollback(name: str, body: RollbackBody, principal: Annotated[Principal, Depends(operator)]
                 ) -> dict[str, Any]:
        """Redeploy the version served before the current one on the stage."""
        stages = ctx.policy().deployment
        runtime = ctx.choose_runtime(getattr(stages, body.env))
        target = runtimes.rollback_target(ctx.registry.deployments(name), runtime.name)
        version = ctx.registry.get_version(name, target.version_number)
        runtimes.deploy_version(ctx.registry, ctx.runtime_client(runtime), runtime, version,
                                principal.id, f"{body.reason}: back to {version.ref}",
                                stages.prod)
        return {"version": dumped(version), "runtime": dumped(runtime)}

    @router.patch("/models/{name}")
    def change(name: str, body: ModelChange,
               principal: Annotated[Principal, Depends(operator)]) -> Any:
        """Change governance fields: a stricter tier at once, the rest through a change task."""
        from deployments.governance import request_model_change

        given = {k: v for k, v in body.model_dump().items() if v is not None}
        if not given:
            raise InvalidInputError("give at least one of risk_tier, type, owner, team, "
                                    "data_location")
        return dumped(request_model_change(ctx, name, given, principal.id))
