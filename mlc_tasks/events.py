"""Prefect events that start processes: a model marked ready; retraining or a backtest asked
for by new data, a notification or a person.

Sent with one POST to the server's events API (what Prefect's own clients do over a
websocket): the `mlc submit` command does not import Prefect, which takes seconds."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from mlc_tasks.errors import PrefectAuthError, TransientError
from mlc_tasks.prefect_auth import PrefectAuth
from mlc_tasks.registry import VersionRecord

log = logging.getLogger(__name__)
MODEL_READY = "mlc.model.ready"
ROLLED_BACK = "mlc.version.rolled-back"
REQUESTED = {"retrain": "mlc.retrain.requested", "backtest": "mlc.backtest.requested"}


def model_ready_event(version: VersionRecord, actor: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": MODEL_READY,
        "resource": {
            "prefect.resource.id": f"mlc.version.{version.id}",
            "prefect.resource.name": version.ref,
            "mlc.model": version.model,
        },
        "related": [],
        "payload": {"model": version.model, "number": version.number,
                    "version_id": version.id, "submitted_by": actor},
    }


def rolled_back_event(version: VersionRecord, previous: int, breach: str) -> dict[str, Any]:
    """Production went back from `version` to version `previous` on a critical breach."""
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": ROLLED_BACK,
        "resource": {"prefect.resource.id": f"mlc.version.{version.id}",
                     "prefect.resource.name": version.ref, "mlc.model": version.model},
        "related": [],
        "payload": {"model": version.model, "number": version.number, "previous": previous,
                    "breach": breach},
    }


def request_event(model: str, action: str, trigger: str, data: str | None = None,
                  detail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Ask for a retraining or a backtest of `model`. `trigger` says what asked (data, a
    notification, a schedule, a person); `data` is the new labelled data's location, if any."""
    if action not in REQUESTED:
        raise ValueError(f"action '{action}' is not one of {', '.join(REQUESTED)}")
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": REQUESTED[action],
        "resource": {"prefect.resource.id": f"mlc.model.{model}",
                     "prefect.resource.name": model, "mlc.model": model},
        "related": [],
        # every key the deployments' triggers template must exist: an undefined one fails the run
        "payload": {"model": model, "trigger": trigger, "data": data, "day": None,
                    "request": None, **(detail or {})},
    }


def custom_event(name: str, model: str, request: str) -> dict[str, Any]:
    """A custom business event (mlc_tasks/processes.py) for `model`; the payload is in the
    registry under `request`, where the started run reads it."""
    from mlc_tasks.processes import CUSTOM_PREFIX

    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": CUSTOM_PREFIX + name,
        "resource": {"prefect.resource.id": f"mlc.model.{model}",
                     "prefect.resource.name": model, "mlc.model": model},
        "related": [],
        "payload": {"model": model, "request": request},
    }


def emit(event: dict[str, Any], api_url: str, timeout: float = 10.0) -> None:
    """Send the event (with PREFECT_API_AUTH_STRING) and wait until the server took it (204);
    TransientError if it did not, also when it refused the credentials: the same event may be
    sent again once they are right."""
    try:
        answer = httpx.post(f"{api_url.rstrip('/')}/events", json=[event], timeout=timeout,
                            auth=PrefectAuth(api_url))
    except (httpx.HTTPError, PrefectAuthError) as exc:
        raise TransientError(f"Prefect server at {api_url} did not take the event: {exc}") from exc
    if answer.status_code != 204:
        raise TransientError(f"Prefect server at {api_url} did not take the event: "
                             f"HTTP {answer.status_code} {answer.text[:200]}")
    log.info("emitted %s for %s", event["event"], event["resource"]["prefect.resource.name"])
