"""The ways around the governed path an outsider tried against `make run`, against a real
`mlc up` (Prefect with auth on, the control-plane API, both runtimes). Each ends with the
version not approved, production unchanged and the attempt in the audit log; then the one
real door works: Rita approves with her token and production serves credit-risk:1. Last, a
team's own process (the bundled quarterly review) is started by `mlc events emit` and answered
with `mlc answer`, while the same event sent to Prefect with a made-up request starts nothing.

(A resume through Prefect's API with a member's name is in test_up_approval.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import MlcSettings
from mlc_tasks.task_records import HumanTask
from tests.conftest import REPO, enroll, free_port, mlc_bin, mlc_env
from tests.deployments.test_up import PrefectApi
from tests.deployments.test_up_approval import Up, flow_run_state
from tests.deployments.test_up_retrain import until

RITA, OMAR, ANA = "rita.risk@bank.example", "omar.ops@bank.example", "ana.lopez@bank.example"


def paused_task(registry: Registry, api: PrefectApi, model: str) -> HumanTask | None:
    for task in TaskBook(registry).list(model=model):
        if task.flow_run_id and flow_run_state(api, task.flow_run_id) == "PAUSED":
            return task
    return None


def package_copy(examples_dir: Path, tmp_path: Path, folder_name: str, **changes: Any) -> Path:
    """The credit-risk example under tmp/pkg (beside its daily data), changed as asked."""
    folder = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "pkg" / folder_name))
    spec = yaml.safe_load((folder / "model.yaml").read_text())
    (folder / "model.yaml").write_text(yaml.safe_dump({**spec, **changes}))
    return folder


def run_deployment(api: PrefectApi, name: str, parameters: dict[str, Any]) -> str:
    deployment = api.get(f"/deployments/name/{name}").json()
    run = api.post(f"/deployments/{deployment['id']}/create_flow_run",
                   {"parameters": parameters})
    assert run.status_code == 201, run.text
    return str(run.json()["id"])


def ended(api: PrefectApi, run_id: str) -> str | None:
    state = flow_run_state(api, run_id)
    return state if state in ("FAILED", "COMPLETED", "CRASHED", "CANCELLED") else None


def retrain_event(data: str, trigger: str) -> dict[str, Any]:
    """What anyone holding Prefect's auth string can emit."""
    return {"id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat(),
            "event": "mlc.retrain.requested",
            "resource": {"prefect.resource.id": "mlc.model.credit-risk",
                         "prefect.resource.name": "credit-risk", "mlc.model": "credit-risk"},
            "related": [], "payload": {"model": "credit-risk", "trigger": trigger,
                                       "data": data, "day": None, "request": None}}


@pytest.mark.timeout(900)
def test_the_ways_around_the_governed_path_are_closed(
        local_settings: MlcSettings, examples_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(examples_dir / "daily" / "credit-risk", tmp_path / "pkg" / "daily" /
                    "credit-risk")
    package = package_copy(examples_dir, tmp_path, "credit-risk")
    prefect_port, prod_port = free_port(), free_port()
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(prefect_port),
               MLC_POLICY_FILE=str(REPO / "examples" / "policy.yaml"),
               MLC_RUNTIMES=json.dumps([
                   {"name": "qa", "tags": {"env": "qa"}, "port": free_port()},
                   {"name": "prod", "tags": {"env": "prod"}, "port": prod_port}]))
    api = PrefectApi(prefect_port, local_settings.home)
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())

    def mlc(token: str, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([mlc_bin(), *args], env={**env, "MLC_TOKEN": token, **extra},
                              capture_output=True, text=True, timeout=120)

    up = Up(env, api, [package])
    try:
        task = until(lambda: paused_task(registry, api, "credit-risk"), "credit-risk's task")
        rita, omar, ana = (enroll(local_settings, p) for p in (RITA, OMAR, ANA))

        # 1. the submitter is who holds the token, whatever MLC_USER says; and may not approve
        own = package_copy(examples_dir, tmp_path, "omar-risk", name="omar-risk")
        submitted = mlc(omar, "submit", str(own), MLC_USER=RITA)
        assert submitted.returncode == 0, submitted.stderr
        assert registry.get_version("omar-risk", 1).created_by == OMAR
        omars = until(lambda: paused_task(registry, api, "omar-risk"), "omar-risk's task")
        self_approval = mlc(omar, "approve", str(omars.id))
        assert self_approval.returncode == 1
        assert f"{OMAR} submitted omar-risk:1 and cannot decide" in self_approval.stderr

        # 2. a package may not lower its own risk tier (the low-risk rule auto-approves)
        lowered = package_copy(examples_dir, tmp_path, "lowered", name="credit-risk",
                               risk_tier="low")
        refused = mlc(ana, "submit", str(lowered))
        assert refused.returncode == 1 and "risk_tier" in refused.stderr, refused.stderr
        assert registry.get_model("credit-risk").risk_tier == "high"
        assert [v.number for v in registry.list_versions("credit-risk")] == [1]

        # 3. deploy-model, which anyone with Prefect access can run, never touches production
        forced = run_deployment(api, "deploy-model/deploy-model", {
            "model": "credit-risk", "version": 1, "tags": {"env": "prod"}})
        assert until(lambda: ended(api, forced), "the forced deploy") == "FAILED"
        assert registry.current_deployment("prod", "credit-risk") is None
        assert registry.get_version("credit-risk", 1).state == State.TESTED

        # the one real door: Rita, with her token
        approved = mlc(rita, "approve", str(task.id), "--comment", "evidence reviewed")
        assert approved.returncode == 0, approved.stderr
        until(lambda: registry.get_version("credit-risk", 1).state == State.DEPLOYED,
              "credit-risk:1 in production")

        # a second model joins credit-risk on the same production runtime (the README's way)
        joined = mlc(ana, "submit", str(examples_dir / "house-prices-v2"))
        assert joined.returncode == 0, joined.stderr
        prod = f"http://127.0.0.1:{prod_port}"
        until(lambda: set(httpx.get(f"{prod}/health").json()["models"]) == {
            "credit-risk", "house-prices"}, "both models in production")
        credit = httpx.post(f"{prod}/models/credit-risk/invocations", content=(
            examples_dir / "credit-risk" / "sample.json").read_bytes(),
            headers={"Content-Type": "application/json"})
        assert credit.status_code == 200 and len(credit.json()["predictions"]) == 3
        house = httpx.post(f"{prod}/v2/models/house-prices/infer", json={"inputs": [
            {"name": "area_m2", "shape": [1], "datatype": "FP64", "data": [84.0]},
            {"name": "rooms", "shape": [1], "datatype": "INT64", "data": [3]},
            {"name": "age_years", "shape": [1], "datatype": "INT64", "data": [12]},
            {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["lyon"]}]})
        assert house.status_code == 200, house.text
        assert house.json()["outputs"][0]["data"][0] > 100_000
        assert registry.get_version("house-prices", 1).state == State.DEPLOYED

        # 4. a retraining asked by event: data outside the model's location, a made-up trigger
        for data, trigger in (("/etc/hostname", "manual"),
                              (str(tmp_path / "pkg" / "daily" / "credit-risk"), RITA)):
            answer = api.post("/events", [retrain_event(data, trigger)])
            assert answer.status_code == 204, answer.text
        until(lambda: sum(e.action == "model.retraining_refused"
                          for e in registry.audit_events("credit-risk")) == 2,
              "both retraining requests refused")
        assert [v.number for v in registry.list_versions("credit-risk")] == [1]

        # 5. a team's process (processes/) is served and started by a custom event; an event
        # sent to Prefect directly, with a made-up request, starts nothing
        forged = api.post("/events", [{**retrain_event("", "manual"),
                                       "event": "mlc.custom.quarterly-review",
                                       "payload": {"model": "credit-risk", "request": "mine"}}])
        assert forged.status_code == 204, forged.text
        until(lambda: any(e.action == "process.refused"
                          for e in registry.audit_events("credit-risk")), "the forged start")
        emitted = mlc(rita, "events", "emit", "quarterly-review", "--model", "credit-risk",
                      "--payload", '{"days": 30}')
        assert emitted.returncode == 0, emitted.stderr
        assert emitted.stdout.startswith("mlc.custom.quarterly-review for credit-risk: started "
                                         "quarterly-review (request ")
        question = until(lambda: paused_task(registry, api, "credit-risk"), "the review")
        assert (question.kind, question.process) == ("question", "quarterly-review")
        answered = mlc(omar, "answer", str(question.id), "keep", "--comment", "stable")
        assert answered.returncode == 0, answered.stderr
        assert "answered keep by 1" in answered.stdout
        until(lambda: any(e.action == "process.started" for e in registry.audit_events(
            "credit-risk")) and TaskBook(registry).get(question.id).status == "answered",
              "the answered review")

        story = json.loads(mlc(rita, "audit", "credit-risk", "--json").stdout)
    finally:
        up.stop()

    current = registry.current_deployment("prod", "credit-risk")
    assert current is not None and current.version_number == 1 and current.model == "credit-risk"
    by_action = {e["action"]: e for e in story}
    approval, review = [e for e in story if e["action"] == "task.decision"]
    assert (approval["actor"], approval["detail"]["via"]) == (RITA, "api")
    assert approval["evidence_sha256"]
    assert (review["actor"], review["detail"]["kind"], review["detail"]["decision"]) == (
        OMAR, "question", "keep")
    assert "production" in by_action["deploy.refused"]["reason"]
    refusals = [e["reason"] for e in story if e["action"] == "model.retraining_refused"]
    assert any("data" in r for r in refusals) and any("trigger" in r for r in refusals)
    omar_story = registry.audit_events("omar-risk")
    refused_own = next(e for e in omar_story if e.action == "task.decision_refused")
    assert refused_own.actor == OMAR
    registry.close()
