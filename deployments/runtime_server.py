"""Our scoring runtime: a FastAPI app that serves one model version at a time.

Predict follows MLflow's scoring server (`POST /invocations` with JSON `dataframe_split` or
`dataframe_records`, or CSV; answering `{"predictions": [...]}`), within limits on bytes, rows
and media types. Admin endpoints need this runtime's own bearer token, and deploy only what the
registry allows on it (production: its tags hold the policy's production tags).
"""

from __future__ import annotations

import hmac
import logging
import platform
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import numpy as np
import sklearn
import skops
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlc_tasks import lifecycle, runtimes
from mlc_tasks.artifacts import fetch_verified
from mlc_tasks.capture import InputCapture
from mlc_tasks.errors import (
    DeployRefusedError,
    InvalidInputError,
    MlcError,
    NotFoundError,
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsafeArtifactError,
    UnsupportedMediaTypeError,
)
from mlc_tasks.registry import Registry
from mlc_tasks.run_requests import BUILT_IN_PROD, is_production
from mlc_tasks.runtimes import SMOKE_TEST_HEADER, DeployRequest
from mlc_tasks.scoring import (
    RequestLimits,
    frame_from_rows,
    media_type,
    rows_from_body,
    too_large,
)
from mlc_tasks.serialization import load_artifact

log = logging.getLogger(__name__)


# Module level: FastAPI resolves string annotations against module globals.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


class BoundedBody:
    """ASGI middleware: no route reads more than `limit` body bytes (FastAPI reads a body
    before it checks the caller's token). A declared Content-Length over the limit is answered
    413 before anything is read; a longer stream is cut off at the chunk that passes it (FastAPI
    passes on an HTTPException raised while it reads)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            answer = JSONResponse({"detail": too_large(int(declared), self.limit)}, 413)
            await answer(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, too_large(seen, self.limit, at_least=True))
            return message

        await self.app(scope, bounded, send)


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
        model = load_artifact(data, request.artifact_uri, request.trusted_types,
                              sorted(self.reviewed_types))
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

    def rollback(self, check: Callable[[Served], None]) -> Served:
        """Serve the previous version again, if `check` (the registry) still allows it."""
        with self._lock:
            if self.previous is None:
                raise InvalidInputError("no previous version to roll back to")
            check(self.previous)
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


def score(served: Served, media: str, body: bytes, limits: RequestLimits,
          capture: InputCapture | None) -> list[Any]:
    rows = rows_from_body(body, media, served.request.input_schema, limits)
    return predict(served, rows, capture)


def scoring_refusal(exc: Exception) -> HTTPException:
    """The answer to a scoring request the runtime will not score: 413 over a limit, 415 a
    media type it does not read, 400 too deep or out of range, 422 not fitting the schema or
    malformed."""
    if isinstance(exc, RequestTooLargeError):
        return HTTPException(413, str(exc))
    if isinstance(exc, UnsupportedMediaTypeError):
        return HTTPException(415, str(exc))
    if isinstance(exc, ScoringRequestError):
        return HTTPException(400, {"column": exc.column, "message": str(exc)})
    if isinstance(exc, SchemaMismatchError):
        return HTTPException(422, {"column": exc.column, "message": str(exc)})
    return HTTPException(422, str(exc))


def registered_request(registry: Registry, request: DeployRequest, production: bool
                       ) -> DeployRequest:
    """The registry's version the request names, if this runtime may serve it; else 409 (503
    when the registry does not answer)."""
    try:
        version = registry.get_version_by_id(request.version_id)
        return runtimes.check_request(request, version, production)
    except NotFoundError as exc:
        raise HTTPException(409, f"deploy refused: the registry has no version "
                                 f"{request.version_id} ({request.model}:{request.number})"
                            ) from exc
    except DeployRefusedError as exc:
        raise HTTPException(409, f"deploy refused: {exc}") from exc
    except SQLAlchemyError as exc:
        raise HTTPException(503, f"the registry did not answer: {type(exc).__name__}") from exc


def create_app(
    name: str, tags: dict[str, str], token: str, reviewed_types: list[str],
    registry: Registry, public_url: str, heartbeat_seconds: float = 15.0,
    capture: InputCapture | None = None, limits: RequestLimits | None = None,
    prod: Mapping[str, str] = BUILT_IN_PROD,
) -> FastAPI:
    """The runtime app: it registers itself, restores what the registry says it serves, beats
    its heartbeat, and serves only what the registry allows on it: approved versions only when
    its tags hold all of `prod` (the policy's production tags)."""
    slot = ScoringSlot(reviewed_types)
    production, limits = is_production(tags, prod), limits or RequestLimits()

    def is_admin(authorization: str | None) -> bool:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  token.encode())

    def require_admin(creds: Credentials) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
            raise HTTPException(401, "admin endpoints need the runtime's bearer token")

    def still_allowed(served: Served) -> None:
        registered_request(registry, served.request, production)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        registry.upsert_runtime(name, public_url, tags, capabilities())
        await run_in_threadpool(_restore, registry, name, production, slot)
        threading.Thread(target=_beat, args=(registry, name, stop, heartbeat_seconds),
                         daemon=True).start()
        yield
        stop.set()

    app = FastAPI(title=f"mlc runtime {name}", lifespan=lifespan)
    app.add_middleware(BoundedBody, limit=limits.max_bytes)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"name": name, "tags": tags, "status": "ok", "capabilities": capabilities(),
                "deployed": slot.current.summary() if slot.current else None,
                "previous": slot.previous.summary() if slot.previous else None}

    @app.post("/admin/deploy", dependencies=[Depends(require_admin)])
    def deploy(request: DeployRequest) -> dict[str, Any]:
        registered = registered_request(registry, request, production)
        try:
            served = slot.deploy(registered)
        except (InvalidInputError, OSError) as exc:
            raise HTTPException(422, f"deploy of {request.model}:{request.number} refused: "
                                     f"{exc}") from exc
        log.info("%s now serves %s:%d", name, request.model, request.number)
        return served.summary()

    @app.post("/admin/rollback", dependencies=[Depends(require_admin)])
    def rollback() -> dict[str, Any]:
        try:
            return slot.rollback(still_allowed).summary()
        except InvalidInputError as exc:
            raise HTTPException(409, str(exc)) from exc

    @app.post("/invocations")
    async def invocations(http: Request) -> dict[str, Any]:
        served = slot.current
        if served is None:
            raise HTTPException(503, f"runtime {name} serves no model yet")
        try:
            media = media_type(http.headers.get("content-type"))
            body = await http.body()  # bounded by BoundedBody
            # only our own checks, which hold the admin token, may score without being kept
            smoke = http.headers.get(SMOKE_TEST_HEADER) and is_admin(
                http.headers.get("authorization"))
            predictions = await run_in_threadpool(score, served, media, body, limits,
                                                  None if smoke else capture)
        except (InvalidInputError, ValueError, TypeError) as exc:  # TypeError: malformed body
            raise scoring_refusal(exc) from exc
        return {"predictions": predictions}

    return app


def _restore(registry: Registry, name: str, production: bool, slot: ScoringSlot) -> None:
    """After a restart, serve again what the registry says this runtime serves, if the version
    may still run under the runtime's tags now (a runtime restarted as env=prod is checked)."""
    current = registry.current_deployment(name)
    if current is None:
        return
    try:
        version = registry.get_version_by_id(current.version_id)
        lifecycle.check_deployable(version.state, production)
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
