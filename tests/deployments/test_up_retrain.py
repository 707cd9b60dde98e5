"""The retraining walk-through with `mlc up`: new labelled data copied into the data folder
starts one retraining on its own (the same file again starts none); the challenger wins, is
approved by policy and serves production; a signed notification starts one backtest, and a
replayed, stale or badly signed one starts nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from deployments.notify_server import send_notification
from mlc_tasks.lifecycle import State
from mlc_tasks.notifications import Notification
from mlc_tasks.registry import Registry
from mlc_tasks.registry.arrivals import ArrivalBook
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.settings import MlcSettings
from tests.conftest import enroll, free_port, mlc_bin, mlc_env, until
from tests.deployments.test_up import PrefectApi
from tests.deployments.test_up_approval import Up

POLICY = {
    "thresholds": {"classification": {"roc_auc": {"min": 0.6}}},
    "approvals": [{"auto_approve": True}],
    "sensor": {"every": "5s", "settle": "1s"},
}


def runs_of(api: PrefectApi, deployment: str) -> list[dict]:
    """Runs of the deployment started for credit-risk (not its cron's future runs)."""
    found = api.post("/flow_runs/filter", {"deployments": {"name": {"any_": [deployment]}}})
    assert found.status_code == 200, found.text
    return [r for r in found.json() if r["parameters"].get("model") == "credit-risk"]


def deployed(registry: Registry, number: int) -> bool:
    try:
        return registry.get_version("credit-risk", number).state == State.DEPLOYED
    except Exception:  # not registered yet
        return False


@pytest.mark.timeout(600)  # a whole `mlc up` and three flow runs, on a loaded CI machine
def test_new_data_retrains_promotes_and_notifications_are_signed(
        local_settings: MlcSettings, examples_dir: Path, tmp_path: Path) -> None:
    package = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "pkg" / "credit-risk"))
    daily = Path(shutil.copytree(examples_dir / "daily" / "credit-risk",
                                 tmp_path / "pkg" / "daily" / "credit-risk"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    prefect_port, notify_port = free_port(), free_port()
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(prefect_port), MLC_POLICY_FILE=str(policy),
               MLC_NOTIFY_PORT=str(notify_port), MLC_NOTIFY_SECRET="test-notify-key",
               MLC_RUNTIMES=json.dumps([
                   {"name": "qa", "tags": {"env": "qa"}, "port": free_port()},
                   {"name": "prod", "tags": {"env": "prod"}, "port": free_port()}]))
    api = PrefectApi(prefect_port, local_settings.home)
    registry = Registry(local_settings.registry_url())
    notify = f"http://127.0.0.1:{notify_port}/notifications"

    up = Up(env, api, [package])
    try:
        until(lambda: deployed(registry, 1), "credit-risk:1 in production")
        until(lambda: ArrivalBook(registry).watched("credit-risk"), "the sensor's first look")
        source = examples_dir / "new-data" / "credit-risk.csv"
        shutil.copy(source, daily / "fresh.csv")
        shutil.copy(source, daily / "fresh-again.csv")  # the same file dropped twice

        until(lambda: deployed(registry, 2), "the challenger in production", 300)
        assert len(runs_of(api, "retrain")) == 1
        champion = ChampionBook(registry).champion("credit-risk")
        assert champion is not None and champion.number == 2
        assert registry.get_version("credit-risk", 1).state == State.DEPLOYED  # ready
        [compared] = ChampionBook(registry).comparisons("credit-risk")
        assert compared.outcome == "promote", compared.reason

        note = Notification(id="lake-2026-11-26", model="credit-risk", action="backtest")
        assert send_notification(notify, "test-notify-key", note).status_code == 202
        assert send_notification(notify, "test-notify-key", note).status_code == 401  # replay
        other = note.model_copy(update={"id": "lake-2"})
        assert send_notification(notify, "wrong-key", other).status_code == 401
        stale = send_notification(notify, "test-notify-key", other, int(time.time()) - 301)
        assert stale.status_code == 401
        until(lambda: runs_of(api, "daily-backtest"), "the notified backtest", 120)
        time.sleep(5)  # a second run, if any, would have started by now
        assert len(runs_of(api, "daily-backtest")) == 1
        assert len(runs_of(api, "retrain")) == 1

        auditor = enroll(local_settings, "auditor@bank.example")
        story = subprocess.run([mlc_bin(), "audit", "credit-risk"], capture_output=True,
                               text=True, env={**env, "MLC_TOKEN": auditor}, check=True)
        for step in ("data.arrived", "model.retraining", "version.compared", "model.champion",
                     "notification.accepted"):
            assert step in story.stdout, (step, story.stdout[-3000:])
    finally:
        up.stop()
    assert up.process.returncode == 0
