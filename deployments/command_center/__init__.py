"""The Command Center: server-rendered pages on the control-plane API for people in a browser
— the inventory, each model (versions, deployments, results with charts, comparisons, the
audit timeline), the task inbox (decide as the verified person), alerts (acknowledge,
resolve, snooze) and package submission — behind the same credentials as /v1 (a session
from the person's API token, or the trusted SSO header).

    GET  /                                         → /center/
    GET  /center/login, POST /center/login         paste a token; POST /center/logout
    GET  /center/                                  the inventory
    GET  /center/models/<name>[?env=prod&at=…]     a model; what served env at a time
    GET  /center/models/<name>/versions/<n>/packet the version's evidence packet (sandboxed)
    GET  /center/tasks[?all=true], /center/tasks/<id>
    POST /center/tasks/<id>/decision               decision, comment
    GET  /center/alerts[?status=…]
    POST /center/alerts/<id>/ack | resolve | snooze (duration 1h, 4h, 1d)
    GET  /center/submit, POST /center/submit        a package as a .tar.gz (`mlc submit`'s)

No JavaScript: plain forms, POST then redirect. Every answer carries a strict
Content-Security-Policy (nothing but our stylesheet loads; forms post only here; no framing).
Sessions, CSRF and the login door: session.py and doors.py."""

from fastapi import APIRouter

from deployments.command_center.actions import add_actions
from deployments.command_center.doors import add_login_routes
from deployments.command_center.pages import add_pages
from deployments.command_center.render import CenterRoute
from mlc_tasks.resources import Resources


def command_center_router(ctx: Resources) -> APIRouter:
    router = APIRouter(route_class=CenterRoute, include_in_schema=False)
    add_login_routes(router, ctx)
    add_pages(router, ctx)
    add_actions(router, ctx)
    return router
