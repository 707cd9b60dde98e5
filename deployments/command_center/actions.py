"""The Command Center's actions (POST, then a redirect to a page that says what happened):
decide a task, acknowledge / resolve / snooze an alert, submit a package. Each acts as the
verified visitor, through the same code the control-plane API's routes use."""

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from deployments import api_upload
from deployments.api_actions import DecisionBody
from deployments.command_center.doors import acting, actor
from deployments.command_center.forms import form_fields, upload_form
from deployments.command_center.pages import SNOOZES
from deployments.command_center.render import redirect
from deployments.command_center.session import PREFIX, PageError, Visitor
from mlc_tasks.errors import MlcError
from mlc_tasks.people import Scope
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources


def first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"]) or "form"
    return f"{field}: {error['msg']}"


def add_actions(router: APIRouter, ctx: Resources) -> None:
    key = ctx.settings.resolved_session_key
    add_alert_actions(router, ctx)
    add_submit_action(router, ctx)

    @router.post(f"{PREFIX}/tasks/{{task_id}}/decision")
    def decide(task_id: int, visitor: Annotated[Visitor, Depends(actor(ctx, Scope.DECIDE))],
               form: Annotated[dict[str, str], Depends(form_fields)]) -> Response:
        from deployments.decide import submit_decision

        back = f"{PREFIX}/tasks/{task_id}"
        try:
            body = DecisionBody(decision=form.get("decision", ""),
                                comment=form.get("comment", ""))
        except ValidationError as exc:
            return redirect(key(), back, "error", first_problem(exc))
        try:
            made, task = submit_decision(ctx, task_id, visitor.principal.id, body.decision,
                                         body.comment, channel="command-center")
        except MlcError as exc:
            return redirect(key(), back, "error", str(exc))
        if made.accepted:
            return redirect(key(), back, "ok", f"Your {made.decision} of {task.ref} is "
                                               f"recorded; the task is {task.status}.")
        return redirect(key(), back, "error", f"Your {made.decision} was refused: "
                                              f"{made.refusal}")


def add_alert_actions(router: APIRouter, ctx: Resources) -> None:
    key = ctx.settings.resolved_session_key
    operator = actor(ctx, Scope.OPERATE)
    back = f"{PREFIX}/alerts"

    @router.post(f"{PREFIX}/alerts/{{alert_id}}/ack")
    def ack(alert_id: int, visitor: Annotated[Visitor, Depends(operator)]) -> Response:
        try:
            alert = AlertBook(ctx.registry).acknowledge(alert_id, visitor.principal.id)
        except MlcError as exc:
            return redirect(key(), back, "error", str(exc))
        return redirect(key(), back, "ok", f"Alert {alert.id} acknowledged: {alert.title}")

    @router.post(f"{PREFIX}/alerts/{{alert_id}}/resolve")
    def resolve(alert_id: int, visitor: Annotated[Visitor, Depends(operator)]) -> Response:
        try:
            alert = AlertBook(ctx.registry).resolve(alert_id, visitor.principal.id)
        except MlcError as exc:
            return redirect(key(), back, "error", str(exc))
        ctx.deliver_alerts()  # the channels that were told hear it is resolved, as the API does
        return redirect(key(), back, "ok", f"Alert {alert.id} resolved: {alert.title}")

    @router.post(f"{PREFIX}/alerts/{{alert_id}}/snooze")
    def snooze(alert_id: int, visitor: Annotated[Visitor, Depends(operator)],
               form: Annotated[dict[str, str], Depends(form_fields)]) -> Response:
        duration = form.get("duration", "")
        if duration not in SNOOZES:
            return redirect(key(), back, "error", f"duration: '{duration[:10]}' is not one of "
                                                  f"{', '.join(SNOOZES)}")
        book = AlertBook(ctx.registry)
        if not hasattr(book, "snooze"):
            raise PageError(501, "snoozing alerts is not part of this installation yet")
        until = utcnow() + timedelta(hours=SNOOZES[duration])
        try:
            alert = book.snooze(alert_id, until, visitor.principal.id)
        except MlcError as exc:
            return redirect(key(), back, "error", str(exc))
        return redirect(key(), back, "ok", f"Alert {alert.id} snoozed until "
                                           f"{until:%Y-%m-%d %H:%M} UTC: {alert.title}")


def add_submit_action(router: APIRouter, ctx: Resources) -> None:
    key = ctx.settings.resolved_session_key

    @router.post(f"{PREFIX}/submit")
    async def submit(request: Request) -> Response:
        from deployments.command_center.render import LoginRequired
        from deployments.command_center.session import same_origin
        from deployments.command_center.session import visitor as visitor_of

        if not same_origin(request, ctx.settings.browser_url()):  # before the body is read
            raise PageError(403, "refused: this form was sent from another site (Origin)")
        found = visitor_of(ctx, request)  # who, before a byte of the upload is held
        if found is None:
            raise LoginRequired(f"{PREFIX}/submit")
        if not found.may(Scope.SUBMIT):
            raise PageError(403, f"{found.principal.id} lacks the 'submit' scope")
        csrf, body = await upload_form(request)
        visitor = acting(ctx, request, csrf, Scope.SUBMIT)
        try:
            model, said = await run_in_threadpool(submit_upload, ctx, body,
                                                  visitor.principal.id)
        except MlcError as exc:
            return redirect(key(), f"{PREFIX}/submit", "error", str(exc))
        return redirect(key(), f"{PREFIX}/models/{quote(model, safe='')}", "ok", said)


def submit_upload(ctx: Resources, body: bytes, submitter: str) -> tuple[str, str]:
    """What POST /v1/packages does; returns the model and what to tell the submitter."""
    version, created, warning = api_upload.submit_upload(ctx, body, submitter)
    said = f"Registered {version.ref}." if created else \
        f"{version.ref} was registered before: the same package."
    return version.model, said + (f" Its process did not start yet: {warning}" if warning else "")
