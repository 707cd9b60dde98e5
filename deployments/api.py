"""The installation's API, started by `mlc up` on MLC_API_PORT (8700): how a command in any
folder or HOME finds the running installation, and the stored reports a browser opens.

    GET /health                    200
    GET /installation              where its state lives and its Prefect server answers
    GET /reports/<sha256>.html     a stored HTML report (e.g. Evidently's), 404 otherwise

The installation answer names no secret: a registry URL is given without its password. A
report's name is the sha256 of its bytes, known to whoever can read the result that links it;
it is served as text/html in a sandbox (no access to this origin), never as anything else.

Run by `mlc up`, or alone: `python -m deployments.api`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response
from sqlalchemy.engine import make_url

from mlc_tasks import reports
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.settings import MlcSettings

REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox allow-scripts; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, max-age=3600",
    "Referrer-Policy": "no-referrer",
}


def installation(settings: MlcSettings, prefect_api_url: str) -> dict[str, Any]:
    """What a command needs to work with this installation, without secrets."""
    registry = make_url(settings.registry_url()).render_as_string(hide_password=True)
    return {"home": str(settings.home.resolve()), "registry_url": registry,
            "prefect_api_url": prefect_api_url, "api_url": settings.installation_url(),
            "policy_file": str(settings.policy_file.resolve()) if settings.policy_file else "",
            "trusted_types": settings.trusted_types, "audit_anchor_url": settings.anchor_url(),
            "data_roots": settings.data_roots}


def create_app(settings: MlcSettings, prefect_api_url: str) -> FastAPI:
    store = ArtifactStore(settings.artifact_url())
    about = installation(settings, prefect_api_url)
    app = FastAPI(title="mlc installation")

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
    uvicorn.run(create_app(settings, prefect), host=settings.host, port=settings.api_port,
                log_level="warning")


if __name__ == "__main__":
    main()
