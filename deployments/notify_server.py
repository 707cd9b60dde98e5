"""The inbound notification endpoint (Prefect OSS has no inbound webhooks): an outside system
POSTs a notification signed with HMAC-SHA256 (mlc_tasks/notifications.py); we emit the Prefect
event that a deployment trigger turns into a retraining or a backtest run.

    POST /notifications   202 accepted, 401 bad signature/stale/replay, 404 unknown model
                          (or no process expects the custom event),
                          413 body over 64 KiB, 422 invalid field, 503 event not emitted
    GET  /health          200

Run by `mlc up`, or alone: `python -m deployments.notify_server`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from mlc_tasks import events
from mlc_tasks.business_events import send_custom_event
from mlc_tasks.errors import InvalidInputError, NotFoundError, SignatureError, TransientError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.notifications import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notification,
    body_sha256,
    check_data,
    parse,
    sign,
    verify,
)
from mlc_tasks.processes import CUSTOM_PREFIX, Process, checked_payload, expecting
from mlc_tasks.registry import Registry
from mlc_tasks.registry.notifications import NotificationBook
from mlc_tasks.settings import MlcSettings

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024
ACTOR = "notification-endpoint"


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body (the signature covers its exact bytes); 413 past `limit` bytes, without
    reading the rest."""
    too_large = HTTPException(413, f"body over {limit} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def create_app(secret: str, registry: Registry, emit_event: Callable[[dict[str, Any]], None],
               clock: Callable[[], float] = time.time, roots: LocationPolicy | None = None,
               processes: Callable[[], list[Process]] = list) -> FastAPI:
    """The endpoint; `emit_event` sends a Prefect event (TransientError when it could not);
    a notification's `data` must lie under the model's data location within `roots`; a custom
    event is checked against the `processes` that expect it."""
    roots = roots or LocationPolicy.from_settings(MlcSettings())
    if not secret:
        raise ValueError("the notification secret must not be empty")
    book = NotificationBook(registry)
    app = FastAPI(title="mlc notifications")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/notifications", status_code=202)
    async def notifications(request: Request) -> dict[str, str]:
        body = await read_body(request)
        try:
            verify(secret, request.headers.get(TIMESTAMP_HEADER),
                   request.headers.get(SIGNATURE_HEADER), body, clock())
        except SignatureError as exc:
            raise HTTPException(401, str(exc)) from exc
        try:
            notification = parse(body)
        except InvalidInputError as exc:
            raise HTTPException(422, str(exc)) from exc
        if notification.action == "event":
            return await run_in_threadpool(_send, notification, body, registry, book,
                                           emit_event, processes)
        return await run_in_threadpool(_act, notification, body, registry, book, emit_event,
                                       roots)

    return app


def _act(notification: Notification, body: bytes, registry: Registry, book: NotificationBook,
         emit_event: Callable[[dict[str, Any]], None], roots: LocationPolicy
         ) -> dict[str, str]:
    """Accept, then emit. The id is claimed first, so of two identical requests racing only one
    emits; when the emit fails the claim is released (audited) and the sender's retry with the
    same id goes through. The other order (emit, then record) would leave no release to write,
    but two racing requests would both emit and start two runs. Left open: a crash between the
    claim and the emit loses the notification (its retry is refused as a replay)."""
    try:
        model = registry.get_model(notification.model)
    except NotFoundError as exc:
        raise HTTPException(404, f"no model named '{notification.model}'") from exc
    try:  # before the id is claimed: a refused notification may be sent again, corrected
        check_data(notification, model.data_location, roots)
    except InvalidInputError as exc:
        raise HTTPException(422, str(exc)) from exc
    if not book.accept(notification, body_sha256(body), ACTOR):
        raise HTTPException(401, f"notification {notification.id} was already accepted "
                                 "(replay)")
    event = events.request_event(notification.model, notification.action, trigger="notification",
                                 data=notification.data,
                                 detail={"notification_id": notification.id,
                                         "note": notification.note})
    try:
        emit_event(event)
    except TransientError as exc:
        book.release(notification, ACTOR, f"event not emitted: {exc}")
        log.warning("notification %s not acted on: %s", notification.id, exc)
        raise HTTPException(503, "the Prefect server did not take the event; send the "
                                 "notification again") from exc
    log.info("notification %s: %s for %s", notification.id, event["event"], notification.model)
    return {"accepted": notification.id, "event": event["event"], "event_id": event["id"]}


def _send(notification: Notification, body: bytes, registry: Registry, book: NotificationBook,
          emit_event: Callable[[dict[str, Any]], None], processes: Callable[[], list[Process]]
          ) -> dict[str, str]:
    """A custom event: checked, the id claimed (a replay is refused), then recorded and emitted
    (the sender is recorded as the endpoint); a failed emit releases the id, as for _act."""
    declared = processes()
    try:  # before the id is claimed: a refused notification may be sent again, corrected
        for process in expecting(declared, str(notification.event)):
            checked_payload(process, notification.payload)
        registry.get_model(notification.model)
    except NotFoundError as exc:
        raise HTTPException(404, str(exc)) from exc
    except InvalidInputError as exc:
        raise HTTPException(422, str(exc)) from exc
    if not book.accept(notification, body_sha256(body), ACTOR):
        raise HTTPException(401, f"notification {notification.id} was already accepted "
                                 "(replay)")
    try:
        sent = send_custom_event(registry, declared, actor=f"{ACTOR}:{notification.id}"[:255],
                                 name=str(notification.event), model=notification.model,
                                 payload=notification.payload, emit=emit_event)
    except (InvalidInputError, TransientError) as exc:
        book.release(notification, ACTOR, f"event not sent: {exc}")
        status = 422 if isinstance(exc, InvalidInputError) else 503
        raise HTTPException(status, str(exc)) from exc
    return {"accepted": notification.id, "event": CUSTOM_PREFIX + sent.event,
            "request": sent.request}


def post_signed(url: str, secret: str, body: bytes, timestamp: int | None = None,
                timeout: float = 10.0) -> httpx.Response:
    """POST `body` to the endpoint URL (…/notifications), signed at `timestamp` (default: now)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: stamp,
               SIGNATURE_HEADER: sign(secret, stamp, body)}
    return httpx.post(url, content=body, headers=headers, timeout=timeout)


def send_notification(url: str, secret: str, notification: Notification,
                      timestamp: int | None = None) -> httpx.Response:
    """Send a notification to the endpoint URL, e.g. http://127.0.0.1:8710/notifications."""
    return post_signed(url, secret, notification.model_dump_json().encode(), timestamp)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import uvicorn

    settings = MlcSettings()
    api_url = os.environ.get("PREFECT_API_URL") or settings.prefect_api_url()
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    from flows.catalog import load_processes

    app = create_app(settings.resolved_notify_secret(), registry,
                     lambda event: events.emit(event, api_url),
                     roots=LocationPolicy.from_settings(settings),
                     processes=lambda: [d.process for d in
                                        load_processes(settings.process_folders())])
    uvicorn.run(app, host=settings.host, port=settings.notify_port, log_level="warning")


if __name__ == "__main__":
    main()
