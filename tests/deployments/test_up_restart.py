"""The newcomer's second hour: Ctrl-C `mlc up` while a sensor run and a retraining (waiting
for its approval) are in flight, start it again; then kill it outright (as a closed terminal
or a crash does) and start it once more. Nothing of an old `mlc up` is left claiming to run
(the killed sensor run's concurrency slot comes back), the waiting task links to its live run,
a known file rewritten with the same bytes starts nothing, new labelled data starts a
retraining within a minute, and a command from another folder and HOME finds the
installation."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.registry.arrivals import ArrivalBook
from mlc_tasks.settings import MlcSettings
from tests.conftest import enroll, free_port, mlc_bin, mlc_env
from tests.deployments.test_up import PrefectApi, processes_with
from tests.deployments.test_up_approval import Up, flow_run_state, waiting
from tests.deployments.test_up_retrain import deployed, runs_of, until

AUTO = {"thresholds": {"classification": {"roc_auc": {"min": 0.6}}},
        "approvals": [{"auto_approve": True}], "sensor": {"every": "5s", "settle": "1s"}}
BY_RITA = {**AUTO, "people": [{"id": "rita", "groups": ["model-risk"]}],
           "approvals": [{"groups": ["model-risk"], "quorum": 1, "deadline": "2d"}]}
CLAIMING = {"RUNNING", "PENDING", "PAUSED", "CANCELLING"}


def all_runs(api: PrefectApi) -> list[dict]:
    found = api.post("/flow_runs/filter", {"limit": 200})
    assert found.status_code == 200, found.text
    return found.json()


def in_flight(api: PrefectApi, deployment: str) -> list[dict]:
    return [r for r in runs_of_any(api, deployment) if r["state"]["type"] == "RUNNING"]


def kill_everything(marker: str) -> None:
    """What a crash does: every process of the installation dies at once, nothing settles."""
    for pid in processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stuck_runs(api: PrefectApi, ids: set[str]) -> dict[str, str]:
    return {r["name"]: r["state"]["type"] for r in all_runs(api)
            if r["id"] in ids and r["state"]["type"] in CLAIMING}


def runs_of_any(api: PrefectApi, deployment: str) -> list[dict]:
    return api.post("/flow_runs/filter", {"deployments": {"name": {"any_": [deployment]}}}).json()


@pytest.mark.timeout(900)  # two `mlc up`s and three retrainings on a loaded CI machine
def test_restart_leaves_nothing_stuck_and_the_sensor_sees_only_new_data(
        local_settings: MlcSettings, examples_dir: Path, tmp_path: Path) -> None:
    package = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "pkg" / "credit-risk"))
    daily = Path(shutil.copytree(examples_dir / "daily" / "credit-risk",
                                 tmp_path / "pkg" / "daily" / "credit-risk"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(AUTO))
    api_port = free_port()
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    prefect_port = free_port()
    env.update(MLC_PREFECT_PORT=str(prefect_port), MLC_POLICY_FILE=str(policy),
               MLC_API_PORT=str(api_port), MLC_RUNTIMES=json.dumps([
                   {"name": "qa", "tags": {"env": "qa"}, "port": free_port()},
                   {"name": "prod", "tags": {"env": "prod"}, "port": free_port()}]))
    api = PrefectApi(prefect_port, local_settings.home)
    registry = Registry(local_settings.registry_url())
    new_rows = (examples_dir / "new-data" / "credit-risk.csv").read_text().splitlines(True)

    first = Up(env, api, [package])
    try:
        until(lambda: deployed(registry, 1), "credit-risk:1 in production")
        until(lambda: ArrivalBook(registry).watched("credit-risk"), "the sensor's first look")
        policy.write_text(yaml.safe_dump(BY_RITA))  # the challenger will wait for rita
        (daily / "fresh.csv").write_text("".join(new_rows))
        task = waiting(registry, api, seconds=300)  # the retraining's challenger
        until(lambda: in_flight(api, "data-sensor"), "a sensor run in flight", 90)
        before = {r["id"] for r in all_runs(api)}
    finally:
        first.stop()
    assert first.process.returncode == 0

    second = Up(env, api, [])
    try:
        stuck = stuck_runs(api, before)
        assert stuck == {}, f"runs of the stopped `mlc up` still claim to run: {stuck}"
        assert flow_run_state(api, str(task.flow_run_id)) in ("CRASHED", "CANCELLED")
        restarted = waiting(registry, api, other_than=task.flow_run_id)
        assert restarted.detail["run_url"].endswith(f"/runs/flow-run/{restarted.flow_run_id}")
        assert restarted.status == "open" and restarted.id == task.id
        until(lambda: in_flight(api, "data-sensor"), "a sensor run in flight", 90)
        before = {r["id"] for r in all_runs(api)}
    finally:
        kill_everything(f"MLC_HOME={local_settings.home}")
    second.process.wait(timeout=30)

    third = Up(env, api, [])
    try:
        assert "settled" in third.output and "data-sensor" in third.output, third.output
        stuck = stuck_runs(api, before)
        assert stuck == {}, f"runs of the killed `mlc up` still claim to run: {stuck}"
        killed = waiting(registry, api, other_than=restarted.flow_run_id)
        assert killed.detail["run_url"].endswith(f"/runs/flow-run/{killed.flow_run_id}")
        until(lambda: [r for r in runs_of_any(api, "data-sensor") if r["id"] not in before
                       and r["state"]["type"] == "COMPLETED"],
              "a sensor run after the kill (the killed one's slot came back)", 150)

        retrains = len(runs_of(api, "retrain"))
        known = sorted(daily.rglob("*.csv"))[0]
        known.write_bytes(known.read_bytes())  # the same bytes, rewritten
        (daily / "later.csv").write_text("".join(new_rows[:-1]))  # one row fewer: new content
        until(lambda: len(runs_of(api, "retrain")) > retrains, "a retraining of the new file", 90)
        until(lambda: [r for r in runs_of(api, "retrain")
                       if r["parameters"].get("data", "").endswith("later.csv")],
              "the new file's retraining", 30)
        assert not [r for r in runs_of(api, "retrain")
                    if r["parameters"].get("data", "").endswith(known.name)]

        outsider = {k: v for k, v in env.items() if k not in ("MLC_HOME", "MLC_DATABASE_URL")}
        outsider.update(HOME=str(tmp_path / "elsewhere"), MLC_API_URL=f"http://127.0.0.1:{api_port}",
                        MLC_TOKEN=enroll(local_settings, "ops@bank.example"))
        (tmp_path / "elsewhere").mkdir()
        listed = subprocess.run([mlc_bin(), "versions", "credit-risk"], env=outsider,
                                cwd=tmp_path / "elsewhere", capture_output=True, text=True)
        assert listed.returncode == 0, listed.stderr
        assert "\n1\tdeployed\tchampion\t" in listed.stdout, listed.stdout
        asked = subprocess.run([mlc_bin(), "retrain", "credit-risk", "--data",
                                str(daily / "later.csv")], env=outsider,
                               cwd=tmp_path / "elsewhere", capture_output=True, text=True)
        assert asked.returncode == 0, asked.stderr
        request = re.search(r"request ([0-9a-f-]{36})", asked.stdout)
        assert request, asked.stdout
        until(lambda: [r for r in runs_of(api, "retrain")
                       if r["parameters"].get("request") == request[1]],
              "the asked retraining's run", 60)
        refused = [r["name"] for r in runs_of_any(api, "data-sensor")
                   if r["id"] not in before and r["state"]["type"] == "CANCELLED"]
        assert refused == [], "a sensor run was refused its slot in normal operation"
    finally:
        third.stop()
    assert third.process.returncode == 0
    assert registry.get_version("credit-risk", 1).state == State.DEPLOYED
    registry.close()
