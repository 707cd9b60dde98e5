"""The installation's API, started by `mlc up` on MLC_API_PORT (8700): how a command in any
folder or HOME finds the running installation, and the stored reports a browser opens.

    GET /health                    200
    GET /installation              where its state lives and its Prefect server answers
    GET /reports/<sha256>.html     a stored HTML report (e.g. Evidently's), 404 otherwise
    /v1/...                        the control-plane API: every action a person takes, for
                                   the caller it authenticates (deployments/api_auth.py);
                                   reads (api_read.py), actions (api_actions.py), custom
                                   business events (api_events.py), /docs
    POST /slack/interactions       Slack's buttons, signed by Slack (slack_interactions.py)
    /center/...                    the Command Center: pages for people, behind a login
                                   (deployments/command_center/)

The installation answer is unauthenticated, so it names no secret and only what a command
needs: every URL in it loses its user info (user:password@) and its query string. A report's
name is the sha256 of its bytes, known to whoever can read the result that links it;
it is served as text/html in a sandbox (no access to this origin), never as anything else.

Served without proxy headers: uvicorn would otherwise rewrite the client address from
X-Forwarded-For sent from 127.0.0.1, and then any local process could claim to be a trusted SSO
proxy. The trusted-proxy check (api_auth.py) sees the real TCP peer; listing 127.0.0.1 in
MLC_TRUSTED_PROXIES therefore means every process on this host can be anyone.

Run by `mlc up`, or alone: `python -m deployments.api`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import make_url

from deployments.api_actions import action_router
from deployments.api_events import events_router
from deployments.api_read import read_router, whoami_router
from deployments.command_center import command_center_router
from deployments.slack_interactions import slack_router
from mlc_tasks import reports
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import InvalidInputError, MlcError, NotFoundError, TransientError
from mlc_tasks.resources import Resources
from mlc_tasks.settings import MlcSettings

REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=3600",
    "Referrer-Policy": "no-referrer",
}


def installation(settings: MlcSettings, prefect_api_url: str) -> dict[str, Any]:
    """What a command needs to work with this installation (deployments/installation.py reads
    it), without secrets: no password, user info or query string in any URL."""
    registry = make_url(settings.registry_url()).set(query={})
    return {"home": str(settings.home.resolve()),
            "registry_url": registry.render_as_string(hide_password=True),
            "prefect_api_url": public_url(prefect_api_url),
            "policy_file": str(settings.policy_file.resolve()) if settings.policy_file else "",
            "trusted_types": settings.trusted_types,
            "audit_anchor_url": public_url(settings.anchor_url()),
            "data_roots": [public_url(root) for root in settings.data_roots]}


def public_url(location: str) -> str:
    """A URL without user info, query or fragment (where credentials ride); a path as is."""
    if "://" not in location:
        return location
    parts = urlsplit(location)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def error_status(exc: MlcError) -> int:
    """Our errors as HTTP: bad input 400, unknown 404, try again 503, the rest (a closed task,
    an illegal transition, a refused deploy) 409."""
    for kind, status in ((NotFoundError, 404), (InvalidInputError, 400), (TransientError, 503)):
        if isinstance(exc, kind):
            return status
    return 409


async def mlc_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MlcError)
    return JSONResponse({"detail": str(exc)}, status_code=error_status(exc))


async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A number beyond what the database stores (SQLite raises OverflowError for ids past
    64 bits): bad input, never a 500."""
    return JSONResponse({"detail": "a number in the request is out of range (ids and "
                                   "versions are below 2^63)"}, status_code=400)


def create_app(settings: MlcSettings, prefect_api_url: str) -> FastAPI:
    store = ArtifactStore(settings.artifact_url())
    about = installation(settings, prefect_api_url)
    app = FastAPI(title="mlc installation and control-plane API")
    app.add_exception_handler(MlcError, mlc_error)
    app.add_exception_handler(OverflowError, out_of_range)
    ctx = Resources(settings)
    for router in (whoami_router(ctx), read_router(ctx), action_router(ctx), events_router(ctx),
                   slack_router(ctx), command_center_router(ctx)):
        app.include_router(router)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/installation")
    def where() -> dict[str, Any]:
        return about

    @app.get("/reports/{name}")
    def report(name: str) -> Response:
        found = reports.NAME.match(name)
        if found is None:
            raise HTTPException(404, "no such report")
        try:
            html = store.read(found["digest"], reports.SUFFIX)
        except FileNotFoundError as exc:
            raise HTTPException(404, "no such report") from exc
        return Response(html, media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)

    return app


def main() -> None:
    import os

    import uvicorn

    settings = MlcSettings()
    prefect = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url()
    # no proxy headers: the SSO check must see the real peer, not what X-Forwarded-For claims
    uvicorn.run(create_app(settings, prefect), host=settings.host, port=settings.api_port,
                log_level="warning", proxy_headers=False, forwarded_allow_ips=[])


if __name__ == "__main__":
    main()
