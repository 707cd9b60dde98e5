"""Runtimes: choosing one by tags (pure), talking to it over HTTP, deploying versions onto it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from mlc_tasks import lifecycle
from mlc_tasks.errors import (
    DeployRefusedError,
    IllegalTransitionError,
    InvalidInputError,
    MlcError,
    RuntimeFullError,
    RuntimeRefusedError,
    RuntimeSelectionError,
    RuntimeUnavailableError,
    SmokeTestError,
)
from mlc_tasks.registry import DeploymentRecord, Registry, RuntimeRecord, VersionRecord
from mlc_tasks.run_requests import BUILT_IN_PROD, is_production
from mlc_tasks.scoring import Column

log = logging.getLogger(__name__)
SMOKE_TEST_HEADER = "X-MLC-Smoke-Test"  # our own checks, not production traffic


def parse_tags(text: str) -> dict[str, str]:
    """`env=prod,zone=eu` → {"env": "prod", "zone": "eu"}."""
    tags: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidInputError(f"tags: '{part}' is not key=value (e.g. env=prod,zone=eu)")
        tags[key.strip()] = value.strip()
    if not tags:
        raise InvalidInputError("tags: give at least one key=value")
    return tags


def live_runtimes(
    runtimes: list[RuntimeRecord], now: datetime, max_silence_seconds: float
) -> list[RuntimeRecord]:
    """Runtimes whose heartbeat is recent: one stopped for good stops matching tags."""
    cutoff = now - timedelta(seconds=max_silence_seconds)
    return [r for r in runtimes if r.last_heartbeat >= cutoff]


def select_runtime(runtimes: list[RuntimeRecord], wanted: dict[str, str], model: str = "",
                   served: Mapping[str, set[str]] | None = None) -> RuntimeRecord:
    """The runtime whose tags include all wanted tags, for `model`: the one already serving it,
    else, among those with room (fewer models than their `max_models`; `served` is each
    runtime's models), the one serving the fewest. None matching, several serving the model,
    or every match full is an error."""
    matches = [r for r in runtimes if all(r.tags.get(k) == v for k, v in wanted.items())]
    wanted_text = ",".join(f"{k}={v}" for k, v in sorted(wanted.items()))
    if not matches:
        known = "; ".join(f"{r.name} ({_tag_text(r.tags)})" for r in runtimes) or "none live"
        raise RuntimeSelectionError(f"no runtime matches {wanted_text}; runtimes: {known}")
    served = served or {}
    serving = [r for r in matches if model and model in served.get(r.name, set())]
    if len(serving) > 1:
        names = ", ".join(r.name for r in serving)
        raise RuntimeSelectionError(f"{len(serving)} runtimes matching {wanted_text} serve "
                                    f"{model} ({names}); add a tag to choose one")
    if serving:
        return serving[0]
    room = [r for r in matches if _room(r, served.get(r.name, set()))]
    if not room:
        full = "; ".join(f"{r.name}: {len(served.get(r.name, set()))} of "
                         f"{r.capabilities.get('max_models')} models" for r in matches)
        raise RuntimeFullError(f"every runtime matching {wanted_text} is full ({full}); "
                               "start another or raise MLC_RUNTIME_MAX_MODELS")
    return min(room, key=lambda r: (len(served.get(r.name, set())), r.name))


def _room(runtime: RuntimeRecord, models: set[str]) -> bool:
    limit = runtime.capabilities.get("max_models")
    return not isinstance(limit, int) or len(models) < limit


def _tag_text(tags: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(tags.items()))


class DeployRequest(BaseModel):
    """What a runtime needs to fetch, check, load and warm up a version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version_id: str
    model: str
    number: int
    artifact_uri: str
    artifact_sha256: str
    trusted_types: list[str]
    input_schema: list[Column]
    sample_rows: list[dict[str, Any]]

    @classmethod
    def for_version(cls, version: VersionRecord) -> DeployRequest:
        if version.artifact_uri is None or version.artifact_sha256 is None:
            raise InvalidInputError(f"{version.ref} has no artifact yet (train it first)")
        return cls(
            version_id=version.id, model=version.model, number=version.number,
            artifact_uri=version.artifact_uri, artifact_sha256=version.artifact_sha256,
            trusted_types=version.trusted_types, input_schema=version.input_schema,
            sample_rows=version.sample_rows,
        )


def check_request(request: DeployRequest, version: VersionRecord, production: bool
                  ) -> DeployRequest:
    """What a runtime may serve for a deploy request: the registry's own version, and only when
    the request names it exactly (artifact URI and sha256 included) and its state allows the
    runtime (production or not). DeployRefusedError names the mismatch or the state."""
    try:
        registered = DeployRequest.for_version(version)
    except InvalidInputError as exc:
        raise DeployRefusedError(str(exc)) from exc
    differs = [f for f in DeployRequest.model_fields
               if getattr(request, f) != getattr(registered, f)]
    if differs:
        raise DeployRefusedError(f"the request differs from the registry's {version.ref} in "
                                 f"{', '.join(differs)}")
    try:
        lifecycle.check_deployable(version.state, production)
    except IllegalTransitionError as exc:
        raise DeployRefusedError(f"the registry has {version.ref} as {version.state}: "
                                 f"{exc}") from exc
    return registered


class RuntimeClient:
    """HTTP client for one runtime's admin, health and scoring endpoints."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._admin = {"Authorization": f"Bearer {token}"}  # sent only where it is needed
        self._client = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health", admin=False)

    def serving(self, model: str) -> dict[str, Any]:
        """What the runtime serves of `model` now (its current version's summary), or {}."""
        found = (self.health().get("models") or {}).get(model) or {}
        return dict(found.get("current") or {})

    def deploy(self, request: DeployRequest) -> dict[str, Any]:
        return self._call("POST", "/admin/deploy", json=request.model_dump(mode="json"))

    def revert(self, model: str) -> dict[str, Any]:
        """Undo the model's last deploy: its previous version, or nothing of it."""
        return self._call("POST", f"/admin/models/{quote(model, safe='')}/revert")

    def unload(self, model: str, version_id: str) -> dict[str, Any]:
        return self._call("POST", f"/admin/models/{quote(model, safe='')}/unload",
                          json={"version_id": version_id})

    def predict(self, model: str, rows: list[dict[str, Any]]) -> list[Any]:
        """Score rows as a check (smoke test): the runtime does not keep them as scoring
        inputs for the drift monitor."""
        body = self._call("POST", f"/models/{quote(model, safe='')}/invocations",
                          json={"dataframe_records": rows}, smoke=True)
        return list(body.get("predictions", []))

    def _call(self, method: str, path: str, admin: bool = True, smoke: bool = False,
              **kwargs: Any) -> dict[str, Any]:
        headers = {**(self._admin if admin else {}), **({SMOKE_TEST_HEADER: "1"} if smoke else {})}
        try:
            response = self._client.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise RuntimeUnavailableError(f"runtime at {self.url} did not answer: {exc}") from exc
        if response.status_code >= 500:
            raise RuntimeUnavailableError(
                f"runtime at {self.url}{path} failed ({response.status_code}): {response.text}"
            )
        if response.status_code >= 400:
            raise RuntimeRefusedError(f"runtime at {self.url}{path} refused "
                                      f"({response.status_code}): {_detail(response)}")
        result: dict[str, Any] = response.json()
        return result


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("detail") or body.get("message") or response.text)
    except ValueError:
        return response.text


def deploy_version(
    registry: Registry,
    client: RuntimeClient,
    runtime: RuntimeRecord,
    version: VersionRecord,
    actor: str,
    reason: str = "",
    prod: Mapping[str, str] = BUILT_IN_PROD,
) -> DeploymentRecord | None:
    """Deploy onto the runtime, smoke-test it, then record it; the runtime's other models are
    not touched. Checks (state, capacity) run before the runtime is touched; if the runtime
    fails or the smoke test does, the runtime goes back to what it served of the model and the
    registry is unchanged. Returns None when the runtime already serves the version and the
    registry knows it (nothing done twice). The client must talk to that runtime (with that
    runtime's token). `prod` is the policy's production tags (deployment.prod): a runtime
    carrying them all takes approved versions only."""
    if client.url != runtime.url.rstrip("/"):
        raise InvalidInputError(f"the client talks to {client.url}, not to runtime "
                                f"{runtime.name} at {runtime.url}")
    lifecycle.check_deployable(version.state, is_production(runtime.tags, prod))
    request = DeployRequest.for_version(version)
    current = registry.current_deployment(runtime.name, version.model)
    if current and current.version_id == version.id \
            and client.serving(version.model).get("version_id") == version.id:
        log.info("%s already serves %s; nothing to do", runtime.name, version.ref)
        return None
    served = {d.model for d in registry.served_on(runtime.name)}
    if version.model not in served and not _room(runtime, served):
        raise RuntimeFullError(f"runtime {runtime.name} serves {len(served)} of its "
                               f"{runtime.capabilities.get('max_models')} models "
                               f"(MLC_RUNTIME_MAX_MODELS); {version.model} does not fit")
    try:
        client.deploy(request)
    except RuntimeUnavailableError:
        _undo_unconfirmed(client, version)
        raise
    try:
        smoke_test(client, version)
        record = registry.record_deployment(version.id, runtime.name, actor, reason, prod)
    except Exception:
        # the runtime must not serve what failed its smoke test or what the registry refused
        client.revert(version.model)
        raise
    log.info("deployed %s on %s for %s", version.ref, runtime.name, actor)
    return record


def _undo_unconfirmed(client: RuntimeClient, version: VersionRecord) -> None:
    """A deploy the runtime did not confirm (it timed out, or a worker failed) may have been
    applied: if the runtime serves the version now, it goes back; unrecorded, it must not
    stay. A runtime that does not answer at all is left to its own undo of failed changes."""
    try:
        if client.serving(version.model).get("version_id") == version.id:
            client.revert(version.model)
    except MlcError as exc:
        log.warning("could not check %s after its unconfirmed deploy: %s", version.ref, exc)


def undeploy_version(registry: Registry, client: RuntimeClient, runtime: RuntimeRecord,
                     version: VersionRecord, actor: str, reason: str) -> bool:
    """Unload a version from a runtime and record it (a retired version's deployments are
    closed by the retirement itself). Returns whether the runtime held it."""
    held = {s.get("version_id") for s in _summaries(client.health(), version.model)}
    if version.id in held:
        client.unload(version.model, version.id)
    if registry.current_deployment(runtime.name, version.model) is not None:
        registry.record_undeployment(version.id, runtime.name, actor, reason)
    return version.id in held


def retire_version(registry: Registry, client_for: Callable[[RuntimeRecord], RuntimeClient],
                   version: VersionRecord, actor: str, reason: str) -> VersionRecord:
    """Retire a version (the registry closes its deployments in the same step) and unload it
    from every runtime serving its model, as current or previous. A runtime that does not
    answer now unloads it at its next heartbeat."""
    runtimes = {d.runtime for d in registry.served_on() if d.model == version.model}
    retired = registry.transition(version.id, lifecycle.State.RETIRED, actor, reason)
    for name in sorted(runtimes):
        try:
            client_for(registry.get_runtime(name)).unload(version.model, version.id)
        except MlcError as exc:
            log.warning("%s stays loaded on %s until its next heartbeat: %s", version.ref,
                        name, exc)
    return retired


def _summaries(health: dict[str, Any], model: str) -> list[dict[str, Any]]:
    found = (health.get("models") or {}).get(model) or {}
    return [s for s in (found.get("current"), found.get("previous")) if s]


def smoke_test(client: RuntimeClient, version: VersionRecord) -> int:
    """The runtime's health must name the version as its model's current one, and it must
    score the sample rows on the model's route (one prediction per row). Returns the number of
    rows scored."""
    serving = client.serving(version.model)
    if serving.get("version_id") != version.id:
        raise SmokeTestError(f"{client.url} reports {version.model}:{serving.get('number')} "
                             f"after deploying {version.ref}")
    predictions = client.predict(version.model, version.sample_rows)
    if len(predictions) != len(version.sample_rows):
        raise SmokeTestError(f"{client.url} answered {len(predictions)} predictions for "
                             f"{len(version.sample_rows)} sample rows of {version.ref}")
    return len(predictions)


def rollback_target(history: list[DeploymentRecord], runtime: str) -> DeploymentRecord:
    """The deployment to go back to on `runtime`: the newest one before the current, of another
    version ("the last good one")."""
    on_runtime = [d for d in history if d.runtime == runtime]
    current = next((d for d in reversed(on_runtime) if d.replaced_at is None), None)
    if current is None:
        raise InvalidInputError(f"{runtime} serves nothing of this model; nothing to roll back")
    earlier = [d for d in on_runtime if d.deployed_at <= current.deployed_at
               and d.id != current.id and d.version_id != current.version_id]
    if not earlier:
        raise InvalidInputError(f"{runtime} has served only {current.model}:"
                                f"{current.version_number}; there is no earlier version")
    return max(earlier, key=lambda d: (d.deployed_at, d.id))
