"""The Command Center's pages (GET): the inventory, a model, the task inbox and a task, the
alerts, the submit form, and each version's evidence packet (sandboxed like /reports)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from deployments.command_center import views
from deployments.command_center.doors import reader
from deployments.command_center.render import STATIC, page
from deployments.command_center.session import PREFIX, PageError, Visitor
from mlc_tasks import reports
from mlc_tasks.people import Scope
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.task_records import TaskStatus

# the sandbox /reports serves stored HTML in (deployments/api.py REPORT_HEADERS; importing it
# here would be a cycle: that module builds this package's router)
PACKET_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
}
SNOOZES = {"1h": 1, "4h": 4, "1d": 24}


def add_pages(router: APIRouter, ctx: Resources) -> None:
    key = ctx.settings.resolved_session_key
    who = reader(ctx)

    @router.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.get(PREFIX, include_in_schema=False)
    def bare() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @router.get(f"{PREFIX}/style.css", include_in_schema=False)
    def style() -> Response:
        return Response((STATIC / "style.css").read_bytes(), media_type="text/css",
                        headers={"Cache-Control": "private, max-age=300"})

    @router.get(f"{PREFIX}/")
    def inventory(request: Request, visitor: Annotated[Visitor, Depends(who)]) -> Response:
        return page(request, key(), "inventory.html", visitor, rows=views.inventory(ctx),
                    prefect=prefect_ui(ctx))

    @router.get(f"{PREFIX}/models/{{name}}")
    def model(request: Request, name: str, visitor: Annotated[Visitor, Depends(who)],
              at: str = "", env: str = "prod") -> Response:
        if env not in ("prod", "qa"):
            raise PageError(400, f"env: '{env[:20]}' is not prod or qa")
        shown = views.model_page(ctx, name, at or None, env)
        return page(request, key(), "model.html", visitor, m=shown,
                    report=lambda uri: reports.report_link("", uri))

    @router.get(f"{PREFIX}/models/{{name}}/versions/{{number}}/packet")
    def packet(name: str, number: int, visitor: Annotated[Visitor, Depends(who)]) -> Response:
        try:
            from mlc_tasks.evidence_packet import current_packet_html
        except ImportError as exc:
            raise PageError(404, "evidence packets are not part of this installation yet") \
                from exc
        html, sha256 = current_packet_html(ctx, name, number)
        return Response(html, media_type="text/html; charset=utf-8",
                        headers={**PACKET_HEADERS, "X-Evidence-SHA256": sha256})

    @router.get(f"{PREFIX}/tasks")
    def tasks(request: Request, visitor: Annotated[Visitor, Depends(who)],
              all: bool = False) -> Response:  # noqa: A002 (mlc tasks --all)
        found = TaskBook(ctx.registry).list(None if all else TaskStatus.OPEN)
        return page(request, key(), "tasks.html", visitor, tasks=found, all=all)

    @router.get(f"{PREFIX}/tasks/{{task_id}}")
    def task(request: Request, task_id: int, visitor: Annotated[Visitor, Depends(who)]
             ) -> Response:
        return page(request, key(), "task.html", visitor, may_decide=visitor.may(Scope.DECIDE),
                    **views.task_view(ctx, task_id))

    @router.get(f"{PREFIX}/alerts")
    def alerts(request: Request, visitor: Annotated[Visitor, Depends(who)],
               status: str = "active") -> Response:
        return page(request, key(), "alerts.html", visitor, alerts=views.alerts(ctx, status),
                    status=status, snoozes=SNOOZES, may_operate=visitor.may(Scope.OPERATE))

    @router.get(f"{PREFIX}/submit")
    def submit_form(request: Request, visitor: Annotated[Visitor, Depends(who)]) -> Response:
        return page(request, key(), "submit.html", visitor, may_submit=visitor.may(Scope.SUBMIT))


def prefect_ui(ctx: Resources) -> str:
    """The Prefect UI beside this installation (its API URL without /api)."""
    return ctx.prefect_api_url().removesuffix("/api")
