"""`mlc up` brings back a runtime, the notification endpoint or the API that dies, with
backoff and an alert; a real `mlc up` whose QA runtime and notification endpoint are killed
keeps running and serves again."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from deployments.supervision import Backoff, restart_delay, restartable
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.settings import MlcSettings
from tests.conftest import free_port, mlc_env
from tests.deployments.test_up_approval import Up


@pytest.mark.parametrize(("restarts", "delay"), [(0, 1), (1, 2), (3, 8), (6, 60), (20, 60)])
def test_backoff_doubles_up_to_a_minute(restarts: int, delay: float) -> None:
    assert restart_delay(restarts) == delay


@pytest.mark.parametrize(("name", "brought_back"), [
    ("runtime-qa", True), ("runtime-prod", True), ("notifications", True), ("api", True),
    ("prefect-server", False), ("serve", False)])
def test_what_is_brought_back(name: str, brought_back: bool) -> None:
    assert restartable(name) is brought_back


def test_a_child_that_lived_long_starts_its_backoff_afresh() -> None:
    backoff = Backoff(started=0.0)
    assert backoff.exited(1.0) == 1 and not backoff.ready(1.5) and backoff.ready(2.0)
    backoff.restarted(2.0)
    assert backoff.exited(3.0) == 2  # died again at once: twice the wait
    backoff.restarted(5.0)
    assert backoff.exited(5.0 + 301) == 1  # it had been fine for five minutes


def pid_of(command_part: str, marker: str) -> int:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (marker.encode() in (proc / "environ").read_bytes()
                    and command_part.encode() in (proc / "cmdline").read_bytes()):
                return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no process running {command_part}")


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.timeout(300)
def test_a_killed_runtime_and_endpoint_come_back(local_settings: MlcSettings) -> None:
    prefect_port, qa_port, notify_port = free_port(), free_port(), free_port()
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(prefect_port), MLC_NOTIFY_PORT=str(notify_port),
               MLC_RUNTIMES=json.dumps([{"name": "qa", "tags": {"env": "qa"},
                                         "port": qa_port}]))
    up = Up(env, f"http://127.0.0.1:{prefect_port}/api", [])
    marker = f"MLC_HOME={local_settings.home}"
    try:
        for part in ("runtime\x00start\x00qa", "deployments.notify_server"):
            os.killpg(pid_of(part, marker), signal.SIGKILL)
        deadline = time.monotonic() + 120
        urls = [f"http://127.0.0.1:{qa_port}/health", f"http://127.0.0.1:{notify_port}/health"]
        while not all(answers(u) for u in urls) and time.monotonic() < deadline:
            assert up.process.poll() is None, "mlc up stopped instead of restarting"
            time.sleep(0.5)
        assert all(answers(u) for u in urls)
        registry = Registry(local_settings.registry_url())
        crashed = {a.metric: a for a in AlertBook(registry).list(model="installation")
                   if a.monitor == "supervisor"}
        assert set(crashed) == {"runtime-qa", "notifications"}, crashed
        assert "exited with -9" in crashed["runtime-qa"].title
        registry.close()
    finally:
        up.stop()
    assert up.process.returncode == 0
