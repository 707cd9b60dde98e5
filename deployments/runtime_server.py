"""Our scoring runtime: a FastAPI app that serves one model version at a time.

Predict follows MLflow's scoring server (`POST /invocations` with `dataframe_split` or
`dataframe_records`, answering `{"predictions": [...]}`); admin endpoints need the bearer token.
"""

from __future__ import annotations

import hmac
import logging
import platform
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import sklearn
import skops
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mlc_tasks import lifecycle
from mlc_tasks.artifacts import fetch_verified
from mlc_tasks.capture import InputCapture
from mlc_tasks.errors import InvalidInputError, MlcError, SchemaMismatchError, UnsafeArtifactError
from mlc_tasks.registry import Registry
from mlc_tasks.runtimes import SMOKE_TEST_HEADER, DeployRequest
from mlc_tasks.scoring import frame_from_rows, rows_from_request
from mlc_tasks.serialization import load_artifact

log = logging.getLogger(__name__)


# Module level: FastAPI resolves string annotations against module globals.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


def capabilities() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "formats": ["skops"],
    }


@dataclass(frozen=True)
class Served:
    request: DeployRequest
    model: Any
    deployed_at: datetime

    def summary(self) -> dict[str, Any]:
        r = self.request
        return {"version_id": r.version_id, "model": r.model, "number": r.number,
                "artifact_sha256": r.artifact_sha256, "deployed_at": self.deployed_at.isoformat()}


class ScoringSlot:
    """The served version and the one before it; a deploy loads and warms up the new version
    before one reference switch, so predict never sees a half-loaded model. Only types this
    runtime's own settings list as reviewed are trusted, whatever the request says."""

    def __init__(self, reviewed_types: list[str]) -> None:
        self.reviewed_types = set(reviewed_types)
        self.current: Served | None = None
        self.previous: Served | None = None
        self._lock = threading.Lock()

    def deploy(self, request: DeployRequest) -> Served:
        unreviewed = sorted(set(request.trusted_types) - self.reviewed_types)
        if unreviewed:
            raise UnsafeArtifactError(f"types not reviewed on this runtime: {unreviewed}")
        data = fetch_verified(request.artifact_uri, request.artifact_sha256)
        model = load_artifact(data, request.artifact_uri, request.trusted_types)
        served = Served(request, model, datetime.now(UTC))
        try:  # warm up: a model that cannot score its own sample rows is refused
            predict(served, request.sample_rows)
        except Exception as exc:
            raise InvalidInputError(f"warm-up on the sample rows failed: {exc}") from exc
        with self._lock:
            if self.current is None or self.current.request.version_id != request.version_id:
                self.previous = self.current
            self.current = served
        return served

    def rollback(self) -> Served:
        with self._lock:
            if self.previous is None:
                raise InvalidInputError("no previous version to roll back to")
            self.current, self.previous = self.previous, self.current
            return self.current


def predict(served: Served, rows: list[dict[str, Any]], capture: InputCapture | None = None
            ) -> list[Any]:
    frame = frame_from_rows(rows, served.request.input_schema)
    predictions: list[Any] = np.asarray(served.model.predict(frame)).tolist()
    if capture is not None:
        try:  # the drift monitor's "recent scoring inputs"; never fails a prediction
            capture.record(served.request.model, served.request.number, frame)
        except OSError as exc:
            log.warning("scoring inputs not captured: %s", exc)
    return predictions


def create_app(
    name: str, tags: dict[str, str], token: str, reviewed_types: list[str],
    registry: Registry | None = None, public_url: str | None = None,
    heartbeat_seconds: float = 15.0, capture: InputCapture | None = None,
) -> FastAPI:
    """The runtime app; with a registry it registers itself, restores what the registry says it
    serves, and beats its heartbeat."""
    slot = ScoringSlot(reviewed_types)
    def require_admin(creds: Credentials) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "admin endpoints need the runtime's bearer token")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if registry is not None and public_url is not None:
            registry.upsert_runtime(name, public_url, tags, capabilities())
            await run_in_threadpool(_restore, registry, name, tags, slot)
            threading.Thread(target=_beat, args=(registry, name, stop, heartbeat_seconds),
                             daemon=True).start()
        yield
        stop.set()

    app = FastAPI(title=f"mlc runtime {name}", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"name": name, "tags": tags, "status": "ok", "capabilities": capabilities(),
                "deployed": slot.current.summary() if slot.current else None,
                "previous": slot.previous.summary() if slot.previous else None}

    @app.post("/admin/deploy", dependencies=[Depends(require_admin)])
    def deploy(request: DeployRequest) -> dict[str, Any]:
        try:
            served = slot.deploy(request)
        except (InvalidInputError, OSError) as exc:
            raise HTTPException(422, f"deploy of {request.model}:{request.number} refused: "
                                     f"{exc}") from exc
        log.info("%s now serves %s:%d", name, request.model, request.number)
        return served.summary()

    @app.post("/admin/rollback", dependencies=[Depends(require_admin)])
    def rollback() -> dict[str, Any]:
        try:
            return slot.rollback().summary()
        except InvalidInputError as exc:
            raise HTTPException(409, str(exc)) from exc

    @app.post("/invocations")
    async def invocations(http: Request) -> dict[str, Any]:
        served = slot.current
        if served is None:
            raise HTTPException(503, f"runtime {name} serves no model yet")
        try:
            rows = rows_from_request(await http.json())
            keep = None if http.headers.get(SMOKE_TEST_HEADER) else capture
            predictions = await run_in_threadpool(predict, served, rows, keep)
        except SchemaMismatchError as exc:
            raise HTTPException(422, {"column": exc.column, "message": str(exc)}) from exc
        except (ValueError, TypeError) as exc:  # malformed body
            raise HTTPException(422, str(exc)) from exc
        return {"predictions": predictions}

    return app


def _restore(registry: Registry, name: str, tags: dict[str, str], slot: ScoringSlot) -> None:
    """After a restart, serve again what the registry says this runtime serves, if the version
    may still run under the runtime's tags now (a runtime restarted as env=prod is checked)."""
    current = registry.current_deployment(name)
    if current is None:
        return
    try:
        version = registry.get_version_by_id(current.version_id)
        lifecycle.check_deployable(version.state, tags.get("env"))
        slot.deploy(DeployRequest.for_version(version))
        log.info("%s restored %s:%d", name, current.model, current.version_number)
    except (MlcError, OSError) as exc:
        log.error("%s could not restore %s:%d: %s", name, current.model,
                  current.version_number, exc)


def _beat(registry: Registry, name: str, stop: threading.Event, seconds: float) -> None:
    while not stop.wait(seconds):
        try:
            registry.heartbeat(name)
        except Exception as exc:  # a database hiccup must not kill the runtime; log and go on
            log.warning("heartbeat of %s failed: %s", name, exc)
