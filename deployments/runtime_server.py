"""Our scoring runtime: a FastAPI app that serves many models, each with its current and
previous version, on one or several worker processes (deployments/runtime_fleet.py).

Predict follows MLflow's scoring server (`POST /models/{name}/invocations`, and `POST
/invocations` on a runtime serving one model) and the Open Inference Protocol (`/v2/...`),
within limits on bytes, rows and media types. Admin endpoints need this runtime's own bearer
token, and deploy only what the registry allows on it (production: its tags hold the policy's
production tags), up to its capacity.

No `from __future__ import annotations`: FastAPI reads the route closures' annotations.
"""

import asyncio
import hmac
import logging
import platform
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import numpy as np
import sklearn
import skops
from fastapi import Depends, FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.runtime_capture import CaptureQueue
from deployments.runtime_fleet import (
    Fleet,
    FleetState,
    ServedModel,
    with_deployed,
    with_reverted,
    without_version,
)
from deployments.runtime_models import Loaded, ModelTable, load_version
from deployments.runtime_scoring import NotServing, add_scoring_routes
from mlc_tasks import lifecycle, runtimes
from mlc_tasks.errors import (
    DeployRefusedError,
    IllegalTransitionError,
    InvalidInputError,
    MlcError,
    NotFoundError,
    RuntimeFullError,
    RuntimeUnavailableError,
    ScoringRequestError,
)
from mlc_tasks.registry import Registry
from mlc_tasks.run_requests import BUILT_IN_PROD, is_production
from mlc_tasks.runtimes import DeployRequest
from mlc_tasks.scoring import RequestLimits, too_large

log = logging.getLogger(__name__)


# Module level: FastAPI resolves string annotations against module globals.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


class BoundedBody:
    """ASGI middleware: no route reads more than `limit` body bytes (FastAPI reads a body
    before it checks the caller's token). A declared Content-Length over the limit is answered
    413 before anything is read (in the shape of the route's protocol); a longer stream is cut
    off at the chunk that passes it (FastAPI passes on an HTTPException raised while it reads;
    the scoring routes answer it in their protocol's shape). Bodies being read hold at most
    `in_flight` bytes together (else 503), and a body that stalls for `stall_seconds` is
    answered 408: slow uploads cannot pile up memory."""

    def __init__(self, app: ASGIApp, limit: int, in_flight: int | None = None,
                 stall_seconds: float = 30.0) -> None:
        self.app, self.limit, self.stall_seconds = app, limit, stall_seconds
        self.budget, self.held = in_flight or 4 * limit, 0  # one event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            message = too_large(int(declared), self.limit)
            answer = JSONResponse({"error": message} if scope["path"].startswith("/v2/") else
                                  {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": message,
                                   "detail": message}, 413)
            await answer(scope, receive, send)
            return
        seen = held = 0

        async def bounded() -> Message:
            nonlocal seen, held
            try:
                message = await asyncio.wait_for(receive(), self.stall_seconds)
            except TimeoutError:
                raise HTTPException(408, f"the request body stalled for "
                                         f"{self.stall_seconds:.0f} s") from None
            size = len(message.get("body", b""))
            seen += size
            if seen > self.limit:
                raise HTTPException(413, too_large(seen, self.limit, at_least=True))
            if self.held + size > self.budget:
                raise HTTPException(503, "the runtime is reading too many request bodies at "
                                         "once; try again")
            self.held, held = self.held + size, held + size
            return message

        try:
            await self.app(scope, bounded, send)
        finally:
            self.held -= held


def capabilities(max_models: int | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": np.__version__,
        "formats": ["skops"],
        "protocols": ["mlflow", "open-inference-v2"],
    }
    if max_models is not None:
        found["max_models"] = max_models
    return found


def checked(registry: Registry, request: DeployRequest, production: bool) -> DeployRequest:
    """The registry's version the request names, if this runtime may serve it."""
    return runtimes.check_request(request, registry.get_version_by_id(request.version_id),
                                  production)


def refusal(exc: Exception, request: DeployRequest) -> HTTPException:
    """A deploy the runtime will not make: 409 when the registry or the capacity refuses, 422
    when the version does not load or warm up, 503 when the registry or a worker fails."""
    what = f"deploy of {request.model}:{request.number} refused"
    if isinstance(exc, NotFoundError):
        return HTTPException(409, f"{what}: the registry has no version {request.version_id}")
    if isinstance(exc, DeployRefusedError | RuntimeFullError):
        return HTTPException(409, f"{what}: {exc}")
    if isinstance(exc, SQLAlchemyError):
        return HTTPException(503, f"the registry did not answer: {type(exc).__name__}")
    if isinstance(exc, RuntimeUnavailableError):
        return HTTPException(503, f"{what}: {exc}")
    return HTTPException(422, f"{what}: {exc}")


def allowed_hosts(public_url: str) -> list[str]:
    """The Host headers a runtime answers: its pinned URL's host, and loopback's names (all,
    when it listens on every address)."""
    host = urlsplit(public_url).hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):  # bound to every address: reachable by any name anyway
        return ["*"]
    return sorted({host, "127.0.0.1", "localhost", "[::1]"})


@dataclass(frozen=True)
class RuntimeSpec:
    """Who a runtime is and what it allows: its name, tags and URL, its admin token, the types
    its installation reviewed, the policy's production tags, its request limits and capacity."""

    name: str
    tags: dict[str, str]
    token: str
    public_url: str
    reviewed_types: list[str]
    prod: Mapping[str, str] = field(default_factory=lambda: dict(BUILT_IN_PROD))
    limits: RequestLimits = field(default_factory=RequestLimits)
    heartbeat_seconds: float = 15.0
    max_models: int = 200

    @property
    def production(self) -> bool:
        return is_production(self.tags, self.prod)


class Runtime:
    """One worker's runtime: its models, its part in the fleet of workers, its registry."""

    def __init__(self, spec: RuntimeSpec, registry: Registry, fleet_dir: Path) -> None:
        self.spec, self.registry, self.table = spec, registry, ModelTable()
        self.fleet = Fleet(fleet_dir, self.table, self.load, self.restore)

    def load(self, request: DeployRequest) -> Loaded:
        return load_version(checked(self.registry, request, self.spec.production),
                            self.spec.reviewed_types)

    def restore(self) -> FleetState:
        """What the registry says this runtime serves, where the version may still run under
        the runtime's tags now (a runtime restarted as env=prod is checked)."""
        models = {}
        for deployment in self.registry.served_on(self.spec.name):
            try:
                version = self.registry.get_version_by_id(deployment.version_id)
                lifecycle.check_deployable(version.state, self.spec.production)
                models[version.model] = ServedModel(current=DeployRequest.for_version(version))
            except MlcError as exc:
                log.error("%s does not restore %s:%d: %s", self.spec.name, deployment.model,
                          deployment.version_number, exc)
        return FleetState(generation=1, models=models)

    def deploy(self, request: DeployRequest) -> Loaded:
        checked(self.registry, request, self.spec.production)
        self.fleet.change(lambda s: with_deployed(s, request, self.spec.max_models))
        served = self.table.get(request.model)
        assert served is not None
        log.info("%s now serves %s:%d", self.spec.name, request.model, request.number)
        return served

    def revert(self, model: str) -> Loaded | None:
        """Serve the model's previous version again (if the registry still allows it), or,
        after its first deploy, nothing of it."""
        def back(state: FleetState) -> FleetState:
            served = state.models.get(model)
            if served and served.previous:
                checked(self.registry, served.previous, self.spec.production)
            return with_reverted(state, model)

        self.fleet.change(back)
        return self.table.get(model)

    def unload(self, model: str, version_id: str) -> bool:
        """Serve version `version_id` of `model` no more; False when it held no such version."""
        state = self.fleet.read() or FleetState()
        if without_version(state, model, version_id) is state:
            return False
        self.fleet.change(lambda s: without_version(s, model, version_id))
        log.info("%s no longer serves version %s of %s", self.spec.name, version_id, model)
        return True

    def unload_refused(self) -> None:
        """A version this worker holds that the registry no longer allows here (retired, or
        rejected while it was served) is unloaded, as a restart would leave it out, and its
        deployment closed."""
        held = [loaded.request for slot in self.table.slots().values()
                for loaded in (slot.current, slot.previous) if loaded is not None]
        states = self.registry.version_states([r.version_id for r in held])
        for request in held:
            try:
                lifecycle.check_deployable(states[request.version_id], self.spec.production)
            except (IllegalTransitionError, KeyError):
                self.unload(request.model, request.version_id)
                self.registry.record_undeployment(request.version_id, self.spec.name,
                                                  f"runtime:{self.spec.name}",
                                                  "the registry no longer allows it here")

    def health(self) -> dict[str, Any]:
        spec, slots = self.spec, self.table.summary()
        return {"name": spec.name, "tags": spec.tags, "status": "ok",
                "capabilities": capabilities(spec.max_models), "models": slots,
                "capacity": {"max_models": spec.max_models, "models": len(slots),
                             "memory_bytes": self.table.memory_bytes()},
                "workers": len(self.fleet.workers()), "worker": self.fleet.pid,
                "generation": self.fleet.applied}

    def one_model(self) -> Loaded:
        """The model `/invocations` scores: MLflow's convention of one model per server."""
        slots = self.table.slots()
        if len(slots) == 1:
            return next(iter(slots.values())).current
        if not slots:
            raise NotServing(f"runtime {self.spec.name} serves no model yet")
        raise ScoringRequestError(f"runtime {self.spec.name} serves {len(slots)} models "
                                  f"({', '.join(sorted(slots))}): POST to "
                                  "/models/{name}/invocations")

    def model(self, name: str) -> Loaded:
        served = self.table.get(name)
        if served is None:
            raise NotFoundError(f"runtime {self.spec.name} serves no model '{name[:100]}'")
        return served


def create_app(spec: RuntimeSpec, registry: Registry, capture: CaptureQueue | None = None,
               fleet_dir: Path | None = None) -> FastAPI:
    """The runtime app (one worker of it): it registers itself, joins its fellow workers in
    `fleet_dir` (the first of a start restores what the registry says it serves), beats its
    heartbeat, and serves only what the registry allows on it: approved versions only when its
    tags hold all of the policy's production tags."""
    own_dir = None if fleet_dir else tempfile.TemporaryDirectory(prefix="mlc-runtime-")
    runtime = Runtime(spec, registry, fleet_dir or Path(own_dir.name))  # type: ignore[union-attr]
    limits = spec.limits

    def is_admin(authorization: str | None) -> bool:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(),
                                                                  spec.token.encode())

    def require_admin(creds: Credentials) -> None:
        if creds is None or not hmac.compare_digest(creds.credentials.encode(),
                                                    spec.token.encode()):
            raise HTTPException(401, "admin endpoints need the runtime's bearer token")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        registry.upsert_runtime(spec.name, spec.public_url, spec.tags,
                                capabilities(spec.max_models))
        await run_in_threadpool(runtime.fleet.start)
        threading.Thread(target=_beat, args=(runtime, stop), daemon=True).start()
        yield
        stop.set()
        runtime.fleet.stop()
        if capture is not None:
            capture.close()
        if own_dir is not None:
            own_dir.cleanup()

    # no /docs or /openapi.json: nothing describes the admin API to callers without a token
    app = FastAPI(title=f"mlc runtime {spec.name}", lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url=None)
    app.add_middleware(BoundedBody, limit=limits.max_bytes)
    # a web page that rebinds its own name to 127.0.0.1 gets no answer (DNS rebinding)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(spec.public_url))

    @app.get("/health")
    def health() -> dict[str, Any]:
        return runtime.health()

    @app.post("/admin/deploy", dependencies=[Depends(require_admin)])
    def deploy(request: DeployRequest) -> dict[str, Any]:
        try:
            return runtime.deploy(request).summary()
        except (MlcError, OSError, SQLAlchemyError) as exc:
            raise refusal(exc, request) from exc

    @app.post("/admin/models/{model}/revert", dependencies=[Depends(require_admin)])
    def revert(model: str) -> dict[str, Any]:
        try:
            served = runtime.revert(model)
        except (InvalidInputError, DeployRefusedError, NotFoundError) as exc:
            raise HTTPException(409, str(exc)[:500]) from exc
        except (MlcError, OSError, SQLAlchemyError) as exc:
            raise _change_failed(exc, f"revert of {model[:100]}") from exc
        return {"model": model, "current": served.summary() if served else None}

    @app.post("/admin/models/{model}/unload", dependencies=[Depends(require_admin)])
    def unload(model: str, body: UnloadBody) -> dict[str, Any]:
        try:
            held = runtime.unload(model, body.version_id)
        except (MlcError, OSError, SQLAlchemyError) as exc:
            raise _change_failed(exc, f"unload of {model[:100]}") from exc
        return {"model": model, "unloaded": body.version_id if held else None}

    add_scoring_routes(app, runtime, limits, capture, is_admin)
    return app


def _change_failed(exc: Exception, what: str) -> HTTPException:
    if isinstance(exc, SQLAlchemyError):
        return HTTPException(503, f"{what}: the registry did not answer")
    return HTTPException(503, f"{what} failed: {str(exc)[:500]}")


class UnloadBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version_id: str


def _beat(runtime: Runtime, stop: threading.Event) -> None:
    while not stop.wait(runtime.spec.heartbeat_seconds):
        try:
            runtime.registry.heartbeat(runtime.spec.name)
            runtime.unload_refused()
        except Exception as exc:  # a database hiccup must not kill the runtime; log and go on
            log.warning("heartbeat of %s failed: %s", runtime.spec.name, exc)
