"""Prefect events that start processes (a model marked ready)."""

from __future__ import annotations

import asyncio
import logging

from prefect.events import Event
from prefect.events.clients import PrefectEventsClient

from mlc_tasks.errors import TransientError
from mlc_tasks.registry import VersionRecord

log = logging.getLogger(__name__)
MODEL_READY = "mlc.model.ready"


def model_ready_event(version: VersionRecord, actor: str) -> Event:
    return Event(
        event=MODEL_READY,
        resource={
            "prefect.resource.id": f"mlc.version.{version.id}",
            "prefect.resource.name": version.ref,
            "mlc.model": version.model,
        },
        payload={"model": version.model, "number": version.number, "version_id": version.id,
                 "submitted_by": actor},
    )


def emit(event: Event, api_url: str) -> None:
    """Send the event and wait until the server took it; TransientError if it is unreachable.
    (prefect.events.emit_event queues in the background and drops events it cannot send.)"""

    async def send() -> None:
        async with PrefectEventsClient(api_url=api_url) as client:
            await client.emit(event)

    try:
        asyncio.run(send())
    except Exception as exc:  # OSError, or websockets' own errors for a refused handshake
        raise TransientError(f"Prefect server at {api_url} did not take the event: {exc}") from exc
    log.info("emitted %s for %s", event.event, event.resource.get("prefect.resource.name"))
