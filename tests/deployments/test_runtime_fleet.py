"""A runtime's workers serve the same models: the state changes (pure), and a real runtime of
two uvicorn worker processes: a deploy reaches both before it is reported done, and a worker
killed mid-life comes back serving what the others serve."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from deployments.runtime_fleet import FleetState, with_deployed, with_reverted, without_version
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import InvalidInputError, MlcError, RuntimeFullError
from mlc_tasks.registry import Registry
from mlc_tasks.runtimes import DeployRequest, RuntimeClient, deploy_version
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import TOKEN


def request(model: str, version: str) -> DeployRequest:
    return DeployRequest(version_id=version, model=model, number=int(version[-1]),
                         artifact_uri=f"file:///a/{version}", artifact_sha256="0" * 64,
                         trusted_types=[], input_schema=[], sample_rows=[])


def test_a_deploy_keeps_the_model_before_it_as_previous_and_others_untouched() -> None:
    state = with_deployed(FleetState(), request("a", "a1"), 2)
    state = with_deployed(state, request("b", "b1"), 2)
    state = with_deployed(state, request("a", "a2"), 2)
    assert state.generation == 3 and list(state.models) == ["a", "b"]
    assert (state.models["a"].current.version_id, state.models["a"].previous.version_id) == (
        "a2", "a1")
    again = with_deployed(state, request("a", "a2"), 2)  # the same version: previous stays
    assert again.models["a"].previous.version_id == "a1"
    assert state.models["b"] == with_deployed(state, request("a", "a3"), 2).models["b"]


def test_a_model_beyond_capacity_is_refused_but_a_served_one_may_change() -> None:
    state = with_deployed(with_deployed(FleetState(), request("a", "a1"), 2),
                          request("b", "b1"), 2)
    with pytest.raises(RuntimeFullError, match="serves 2 of its 2 models"):
        with_deployed(state, request("c", "c1"), 2)
    assert with_deployed(state, request("b", "b2"), 2).models["b"].current.version_id == "b2"


def test_revert_and_retirement() -> None:
    state = with_deployed(FleetState(), request("a", "a1"), 9)
    state = with_deployed(state, request("a", "a2"), 9)
    assert with_reverted(state, "a").models["a"].current.version_id == "a1"
    assert with_reverted(with_reverted(state, "a"), "a").models == {}  # first deploy undone
    with pytest.raises(InvalidInputError, match="serves no model 'z'"):
        with_reverted(state, "z")
    assert without_version(state, "a", "a2").models == {}  # retired current: no fallback
    assert without_version(state, "a", "a1").models["a"].previous is None
    assert without_version(state, "a", "zz") is state
    assert without_version(state, "b", "a2") is state  # another model's version: untouched


# ---- a real runtime of two workers ----------------------------------------------------------

def submit(examples_dir: Path, registry: Registry, settings: MlcSettings, name: str):
    return submit_package(examples_dir / name, registry, ArtifactStore(settings.artifact_url()),
                          list(REVIEWED_TYPES), "ana")[0]


def each_worker(url: str, workers: int) -> dict[int, dict]:
    """The health of every worker: fresh connections until each pid has answered."""
    seen: dict[int, dict] = {}
    for _ in range(400):
        health = httpx.get(f"{url}/health", headers={"Connection": "close"}).json()
        seen[health["worker"]] = health
        if len(seen) == workers:
            return seen
    raise AssertionError(f"only workers {sorted(seen)} answered")


def test_a_deploy_reaches_every_worker_before_it_is_done(start_runtime, local_registry,
                                                         local_settings, examples_dir) -> None:
    runtime = start_runtime(workers=2)
    credit = submit(examples_dir, local_registry, local_settings, "credit-risk")
    house = submit(examples_dir, local_registry, local_settings, "house-prices")
    client = RuntimeClient(runtime.url, TOKEN)
    record = local_registry.get_runtime("qa")
    assert deploy_version(local_registry, client, record, credit, "ops")
    first = each_worker(runtime.url, 2)  # read right after the deploy returned: no waiting
    assert all(list(h["models"]) == ["credit-risk"] and h["workers"] == 2
               for h in first.values())
    assert deploy_version(local_registry, client, record, house, "ops")
    after = each_worker(runtime.url, 2)
    assert all(list(h["models"]) == ["credit-risk", "house-prices"] for h in after.values())
    body = json.loads((examples_dir / "house-prices" / "sample.json").read_text())
    answers = {json.dumps(httpx.post(f"{runtime.url}/models/house-prices/invocations",
                                     json=body, headers={"Connection": "close"}).json())
               for _ in range(20)}
    assert len(answers) == 1  # whichever worker answers, the same predictions


def test_a_killed_worker_comes_back_serving_what_the_others_serve(
        start_runtime, local_registry, local_settings, examples_dir) -> None:
    runtime = start_runtime(workers=2)
    credit = submit(examples_dir, local_registry, local_settings, "credit-risk")
    deploy_version(local_registry, RuntimeClient(runtime.url, TOKEN),
                   local_registry.get_runtime("qa"), credit, "ops")
    victim = min(each_worker(runtime.url, 2))
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            workers = each_worker(runtime.url, 2)
        except (AssertionError, httpx.TransportError):
            continue  # the replacement is still starting
        if victim not in workers:
            break
    else:
        raise AssertionError("no replacement worker answered")
    assert all(list(h["models"]) == ["credit-risk"] for h in workers.values())
    # and a refused deploy changes nothing on either worker
    with pytest.raises(MlcError, match="409"):
        RuntimeClient(runtime.url, TOKEN).deploy(
            DeployRequest.for_version(credit).model_copy(update={"number": 7}))
    assert all(list(h["models"]) == ["credit-risk"] for h in each_worker(runtime.url, 2).values())
