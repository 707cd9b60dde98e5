"""The control-plane API's actions: each is done for the authenticated caller (the actor the
registry records is the principal's id, never a name in the body), and each needs its scope:
`submit` a package, `decide` a task, `operate` alerts, retrainings, manual deploys, rollbacks
and model changes."""

# no `from __future__ import annotations`: FastAPI must see the dependencies (closures) in
# the annotations as objects, not as names it cannot resolve
import uuid
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from deployments import api_upload
from deployments.api_auth import allowed
from deployments.api_read import dumped
from mlc_tasks import runtimes
from mlc_tasks.errors import InvalidInputError, TransientError
from mlc_tasks.people import Principal, Scope
from mlc_tasks.resources import Resources
from mlc_tasks.run_requests import RequestKind, record_request
from mlc_tasks.task_records import CHOICE_PATTERN

SNOOZE_MAX_MINUTES = 7 * 24 * 60


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DecisionBody(Body):
    decision: str = Field(pattern=CHOICE_PATTERN,
                          description="approve or reject (approvals, changes); retry or abort "
                                      "(reviews); one of a question's choices")
    comment: str = Field(default="", max_length=5000)


class RetrainBody(Body):
    data: str | None = Field(default=None, max_length=2000,
                             description="labelled data (fsspec URL) under the data location")


class SnoozeBody(Body):
    minutes: int = Field(ge=1, le=SNOOZE_MAX_MINUTES,
                         description="how long repeats are counted but not notified")


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
        version, created, warning = api_upload.submit_upload(ctx, body, principal.id)
        return {"version": dumped(version), "created": created, "warning": warning}


def add_operate_routes(router: APIRouter, ctx: Resources) -> None:
    operator = allowed(ctx, Scope.OPERATE)

    @router.post("/alerts/{alert_id}/ack")
    def ack(alert_id: int, principal: Annotated[Principal, Depends(operator)]) -> Any:
        from mlc_tasks.registry.alerts import AlertBook

        return dumped(AlertBook(ctx.registry).acknowledge(alert_id, principal.id))

    @router.post("/alerts/{alert_id}/snooze")
    def snooze(alert_id: int, body: SnoozeBody,
               principal: Annotated[Principal, Depends(operator)]) -> Any:
        """Hold the alert's notifications for a while; a repeat after that notifies again."""
        from datetime import timedelta

        from mlc_tasks.registry.alerts import AlertBook
        from mlc_tasks.registry.store import utcnow

        until = utcnow() + timedelta(minutes=body.minutes)
        return dumped(AlertBook(ctx.registry).snooze(alert_id, until, principal.id))

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
        """A verified manual deploy: who asked for what is recorded, then deploy-model runs
        here with that request (retried, alerting on failure) and deploys as the caller onto
        the one live runtime whose tags match; a runtime with the policy's production tags
        (whatever they are) takes approved versions only."""
        from flows.deploy_model import deploy_model

        tags = runtimes.parse_tags(body.tags) if isinstance(body.tags, str) else body.tags
        record = ctx.registry.get_version(name, body.version)
        runtime = ctx.choose_runtime(tags, name)  # clear errors before anything is recorded
        before = {d.id for d in ctx.registry.deployments(name)}
        request = record_request(ctx.registry, RequestKind.DEPLOY, name, principal.id,
                                 {"version": body.version, "tags": tags, "reason": body.reason})
        outcome, run = run_flow(deploy_model, model=name, version=body.version, tags=tags,
                                reason=body.reason, request=request)
        done = next((d for d in reversed(ctx.registry.deployments(name))
                     if d.runtime == runtime.name and d.id not in before), None)
        return {"deployed": done, "version": dumped(record), "runtime": dumped(runtime),
                "outcome": outcome, "request": request, "run": run}

    @router.post("/models/{name}/rollback")
    def rollback(name: str, body: RollbackBody, principal: Annotated[Principal, Depends(operator)]
                 ) -> dict[str, Any]:
        """Redeploy the version served before the current one on the stage: recorded as the
        caller's request, carried out by rollback-model here (retried, alerting on failure)."""
        from flows.deploy_model import rollback_model

        runtime = ctx.choose_runtime(getattr(ctx.policy().deployment, body.env), name)
        target = runtimes.rollback_target(ctx.registry.deployments(name), runtime.name)
        request = record_request(ctx.registry, RequestKind.ROLLBACK, name, principal.id,
                                 {"env": body.env, "reason": body.reason})
        outcome, run = run_flow(rollback_model, model=name, env=body.env, reason=body.reason,
                                request=request)
        now = next((d for d in ctx.registry.deployments(name)
                    if d.runtime == runtime.name and d.replaced_at is None), target)
        return {"version": dumped(ctx.registry.get_version(name, now.version_number)),
                "runtime": dumped(runtime), "outcome": outcome, "request": request, "run": run}

    def run_flow(process: Any, **parameters: Any) -> tuple[Any, dict[str, str | None]]:
        """Run the flow in this process as a run on the installation's Prefect server (with
        its retries and alerts, shown in the UI), with these resources; what it returned and
        its run, or what it raised."""
        from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

        from mlc_tasks.resources import using

        prefect = ctx.prefect_api_url()
        with using(ctx), temporary_settings({PREFECT_API_URL: prefect}):
            try:  # the run's own failure is in its state; this is Prefect not answering
                state = process(**parameters, return_state=True)
            except (httpx.HTTPError, RuntimeError) as exc:
                raise TransientError(f"{process.name} did not start: the Prefect server at "
                                     f"{prefect} did not answer ({exc})") from exc
            ui = PREFECT_UI_URL.value()
        run_id = str(state.state_details.flow_run_id)
        return state.result(), {"id": run_id, "url": f"{ui}/runs/flow-run/{run_id}" if ui
                                else None}

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
