"""deploy-model and the model-ready event on a real Prefect server with a real runtime."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from flows.deploy_model import deploy_model
from flows.model_testing import run_test_job
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import DeployRefusedError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import REPO, TOKEN, ApiProcess, enroll, mlc_bin, mlc_env, runtime_serving


@pytest.fixture
def mlc_settings_env(local_settings: MlcSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow builds its settings from the environment, as a served deployment does."""
    monkeypatch.setenv("MLC_HOME", str(local_settings.home))
    monkeypatch.setenv("MLC_ADMIN_TOKEN", TOKEN)


def submit(settings: MlcSettings, package: Path, api_url: str) -> str:
    token = enroll(settings, "ana")  # the submitter is who holds the token
    api = ApiProcess(settings, PREFECT_API_URL=api_url).start()
    try:
        env = {**mlc_env(settings), "MLC_API_URL": api.url, "MLC_TOKEN": token}
        done = subprocess.run([mlc_bin(), "submit", str(package)], env=env,
                              text=True, capture_output=True, timeout=120, check=True)
    finally:
        api.stop()
    assert "did not take the event" not in done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_submit_emits_model_ready_event(local_settings, examples_dir, prefect_server) -> None:
    version_id = submit(local_settings, examples_dir / "house-prices", prefect_server)
    query = {"filter": {"event": {"name": ["mlc.model.ready"]},
                        "resource": {"id": [f"mlc.version.{version_id}"]}}}
    deadline, found = time.monotonic() + 30, []
    while not found and time.monotonic() < deadline:
        found = httpx.post(f"{prefect_server}/events/filter", json=query).json()["events"]
        time.sleep(0.5)
    assert len(found) == 1
    assert found[0]["payload"] == {"model": "house-prices", "number": 1,
                                   "version_id": version_id, "submitted_by": "ana"}


def register(settings: MlcSettings, package: Path) -> None:
    """The package registered straight in the registry (the deploy tests need no CLI)."""
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    submit_package(package, registry, ArtifactStore(settings.artifact_url()),
                   list(REVIEWED_TYPES), "ana")
    registry.close()


def test_deploy_model_flow(local_settings, examples_dir, start_runtime, mlc_settings_env,
                           prefect_server) -> None:
    register(local_settings, examples_dir / "credit-risk")
    runtime = start_runtime("qa", "env=qa")
    outcome = deploy_model("credit-risk", 1, {"env": "qa"}, reason="try it")
    assert outcome == "credit-risk:1 deployed on qa"
    body = json.loads((examples_dir / "credit-risk" / "sample.json").read_text())
    assert len(httpx.post(f"{runtime.url}/invocations", json=body).json()["predictions"]) == 3
    assert deploy_model("credit-risk", 1, {"env": "qa"}) == "credit-risk:1 already on qa"
    registry = Registry(local_settings.registry_url())
    [deployed] = registry.deployments("credit-risk")
    assert deployed.deployed_by == "deploy-model"  # no parameter names who acted
    registry.close()


def test_deploy_model_refuses_production(local_settings, examples_dir, start_runtime,
                                         mlc_settings_env, prefect_server) -> None:
    """Anyone who reaches Prefect may run deploy-model: asked for production, or for tags only
    the production runtime carries, it refuses, and production stays as it was."""
    register(local_settings, examples_dir / "credit-risk")
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    version = registry.get_version("credit-risk", 1)
    registry.add_test_result(run_test_job.fn(version), "tester")
    for state in (State.TESTED, State.APPROVED):  # production would take it
        registry.transition(version.id, state, "tester")
    prod = start_runtime("prod", "env=prod,zone=eu")
    qa = start_runtime("qa", "env=qa")
    for tags, refused in [({"env": "prod"}, "tags: env=prod"),
                          ({"zone": "eu"}, "runtime: env=prod,zone=eu")]:
        with pytest.raises(DeployRefusedError, match=f"^{refused} is production .* only "
                                                     "through on-model-changed"):
            deploy_model("credit-risk", 1, tags, reason="straight to prod")
    assert runtime_serving(prod.url) is None
    assert registry.deployments("credit-risk") == []
    trail = [e.action for e in registry.audit_events("credit-risk")]
    assert "version.deployed_to" not in trail and trail.count("deploy.refused") == 2

    assert deploy_model("credit-risk", 1, {"env": "qa"}) == "credit-risk:1 deployed on qa"
    assert runtime_serving(qa.url)["version_id"] == version.id
    assert [d.env for d in registry.deployments("credit-risk")] == ["qa"]
    registry.close()


def test_every_prefect_yaml_entrypoint_imports_and_is_served(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.serve import all_deployments

    monkeypatch.setenv("MLC_HOME", str(tmp_path / "home"))  # serving reads the registry

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    served = {d.name for d in all_deployments()}
    for deployment in config["deployments"]:
        flow = load_flow_from_entrypoint(str(REPO / deployment["entrypoint"]))
        assert flow.name == deployment["name"], "a flow's name equals its deployment name"
        assert deployment["name"] in served
    assert served == {d["name"] for d in config["deployments"]}


def test_each_model_gets_the_retraining_schedule_of_its_policy_rule(
        package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.serve import all_deployments

    monkeypatch.setenv("MLC_HOME", str(tmp_path / "home"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("retraining:\n  - match: {model: [credit-risk]}\n"
                      "    schedule: '0 3 * * 1'\n")
    monkeypatch.setenv("MLC_POLICY_FILE", str(policy))
    settings = MlcSettings()
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    submit_package(package, registry, ArtifactStore(settings.artifact_url()),
                   list(REVIEWED_TYPES), "ana")
    retrain = next(d for d in all_deployments() if d.name == "retrain")
    [schedule] = retrain.schedules
    assert schedule.schedule.cron == "0 3 * * 1"
    assert schedule.parameters == {"model": "credit-risk", "trigger": "schedule"}
    assert {t.expect.pop() for t in retrain.triggers} == {"mlc.retrain.requested"}
