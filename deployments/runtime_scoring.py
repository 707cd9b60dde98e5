"""A runtime's scoring routes: MLflow's scoring protocol (`/models/{name}/invocations`, and
`/invocations` on a runtime serving one model; `/ping`, `/version`) and the Open Inference
Protocol V2 (`/v2/...`, as KServe, MLServer and Triton speak it). Errors answer in each
protocol's own shape. Small requests are scored on the event loop (a thread hop costs more
than their predict); large ones in the thread pool."""

from importlib.metadata import version as package_version
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from deployments.runtime_capture import CaptureQueue
from deployments.runtime_models import Loaded
from mlc_tasks.errors import NotFoundError, RequestTooLargeError
from mlc_tasks.open_inference import (
    check_media_type,
    read_v2_infer,
    v2_error,
    v2_infer_response,
    v2_model_metadata,
)
from mlc_tasks.runtimes import SMOKE_TEST_HEADER
from mlc_tasks.scoring import (
    RequestLimits,
    ScoringInput,
    check_charset,
    media_type,
    mlflow_error,
    mlflow_predictions,
    read_mlflow,
)

INLINE_ROWS = 200  # up to this many rows a compiled model scores without a thread hop
INLINE_BYTES = 64 * 1024  # a larger body is parsed in the thread pool: the loop stays free
JSON = "application/json"


class NotServing(Exception):
    """No model is served yet: 503, in either protocol's shape."""


def add_scoring_routes(app: FastAPI, runtime: Any, limits: RequestLimits,
                       capture: CaptureQueue | None, is_admin: Any) -> None:
    """`runtime` is deployments.runtime_server.Runtime: one_model() and model(name)."""

    async def score(http: Request, served: Loaded, scoring: ScoringInput) -> np.ndarray:
        inline = served.fast is not None and scoring.rows <= INLINE_ROWS
        predictions = (served.predict(scoring) if inline
                       else await run_in_threadpool(served.predict, scoring))
        # only our own checks, which hold the admin token, may score without being kept
        smoke = http.headers.get(SMOKE_TEST_HEADER) and is_admin(
            http.headers.get("authorization"))
        if capture is not None and not smoke:
            capture.keep(served.request.model, served.request.number, scoring)
        return predictions

    async def mlflow(http: Request, find: Any) -> Response:
        content_type = http.headers.get("content-type")
        try:
            served = find()
            media_type(content_type)
            check_charset(content_type)
            body = await http.body()  # bounded by BoundedBody
            scoring = await parsed(read_mlflow, body, content_type,
                                   served.request.input_schema, limits)
            predictions = await score(http, served, scoring)
        except NotServing as exc:
            return JSONResponse({"error_code": "TEMPORARILY_UNAVAILABLE", "message": str(exc)},
                                503)
        except HTTPException as exc:  # BoundedBody: stalled (408) or too busy reading (503)
            if exc.status_code != 413:
                return JSONResponse({"error_code": "TEMPORARILY_UNAVAILABLE",
                                     "message": str(exc.detail)}, exc.status_code)
            status, answer = mlflow_error(_cut_off(exc))
            return JSONResponse(answer, status)
        except Exception as exc:  # every refusal and failure in MLflow's shape
            status, answer = mlflow_error(_cut_off(exc))
            return JSONResponse(answer, status)
        return Response(mlflow_predictions(predictions), media_type=JSON)

    @app.post("/invocations")
    async def invocations(http: Request) -> Response:
        return await mlflow(http, runtime.one_model)

    @app.post("/models/{name}/invocations")
    async def model_invocations(name: str, http: Request) -> Response:
        return await mlflow(http, lambda: runtime.model(name))

    @app.get("/ping")
    def ping() -> PlainTextResponse:
        return PlainTextResponse("\n")

    @app.get("/version")
    def version() -> PlainTextResponse:
        return PlainTextResponse(package_version("mlc-manager"))

    add_v2_routes(app, runtime, limits, score)


async def parsed(read: Any, body: bytes, *args: Any) -> Any:
    """A request read on the event loop when small, in the thread pool when large (an odd
    number may send the parser down a slow path: one client must not stall the others)."""
    if len(body) <= INLINE_BYTES:
        return read(body, *args)
    return await run_in_threadpool(read, body, *args)


def add_v2_routes(app: FastAPI, runtime: Any, limits: RequestLimits, score: Any) -> None:
    def v2_model(name: str, version: str | None) -> Loaded:
        served = runtime.model(name)
        if version is not None and version != str(served.request.number):
            raise NotFoundError(f"model '{name}' is served at version "
                                f"{served.request.number}, not {version[:20]}")
        return served

    def metadata(name: str, version: str | None) -> JSONResponse:
        try:
            served = v2_model(name, version)
        except Exception as exc:
            return _v2_refusal(exc)
        return JSONResponse(v2_model_metadata(name, [str(served.request.number)],
                                              served.request.input_schema, served.output_type))

    def ready(name: str, version: str | None) -> JSONResponse:
        try:
            v2_model(name, version)
        except Exception as exc:
            return _v2_refusal(exc)
        return JSONResponse({"name": name, "ready": True})

    async def infer(http: Request, name: str, version: str | None) -> Response:
        try:
            served = v2_model(name, version)
            check_media_type(http.headers.get("content-type"))
            request = await parsed(read_v2_infer, await http.body(),
                                   served.request.input_schema, limits)
            predictions = await score(http, served, request.input)
            answer = v2_infer_response(name, str(served.request.number), request.id,
                                       predictions, request.outputs)
        except Exception as exc:
            return _v2_refusal(exc)
        return JSONResponse(answer)

    @app.get("/v2")
    def server_metadata() -> dict[str, Any]:
        return {"name": "mlc-runtime", "version": package_version("mlc-manager"),
                "extensions": []}

    @app.get("/v2/health/live")
    def live() -> dict[str, bool]:
        return {"live": True}

    @app.get("/v2/health/ready")
    def server_ready() -> JSONResponse:
        ok = runtime.fleet.applied >= 0  # it has joined its fellow workers and loaded
        return JSONResponse({"ready": ok}, 200 if ok else 503)

    @app.get("/v2/models/{name}")
    def model_metadata(name: str) -> JSONResponse:
        return metadata(name, None)

    @app.get("/v2/models/{name}/versions/{version}")
    def version_metadata(name: str, version: str) -> JSONResponse:
        return metadata(name, version)

    @app.get("/v2/models/{name}/ready")
    def model_ready(name: str) -> JSONResponse:
        return ready(name, None)

    @app.get("/v2/models/{name}/versions/{version}/ready")
    def version_ready(name: str, version: str) -> JSONResponse:
        return ready(name, version)

    @app.post("/v2/models/{name}/infer")
    async def model_infer(name: str, http: Request) -> Response:
        return await infer(http, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer")
    async def version_infer(name: str, version: str, http: Request) -> Response:
        return await infer(http, name, version)


def _cut_off(exc: Exception) -> Exception:
    """BoundedBody's refusal of a body streamed past the limit, as the protocols name it."""
    if isinstance(exc, HTTPException) and exc.status_code == 413:
        return RequestTooLargeError(str(exc.detail))
    return exc


def _v2_refusal(exc: Exception) -> JSONResponse:
    if isinstance(exc, NotServing):
        return JSONResponse({"error": str(exc)}, 503)
    if isinstance(exc, HTTPException) and exc.status_code != 413:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code)
    status, answer = v2_error(_cut_off(exc))
    return JSONResponse(answer, status)

