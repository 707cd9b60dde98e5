"""`mlc up` starts the Prefect server, the runtimes and the served deployments, submits, and
stops every process it started on Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx

from mlc_tasks.prefect_auth import AUTH_FILE, PrefectAuth
from mlc_tasks.settings import MlcSettings
from tests.conftest import free_port, mlc_bin, mlc_env


class PrefectApi:
    """The Prefect server a test's `mlc up` starts, called as our own clients call it: with the
    auth string `mlc up` keeps under MLC_HOME (read when first needed: the first start writes
    it) and CSRF tokens."""

    def __init__(self, port: int, home: Path) -> None:
        self.ui = f"http://127.0.0.1:{port}"
        self.url = f"{self.ui}/api"
        self.home = home
        self._auth: PrefectAuth | None = None

    @property
    def auth_string(self) -> str:
        return (self.home / AUTH_FILE).read_text()

    @property
    def auth(self) -> PrefectAuth:
        if self._auth is None:
            self._auth = PrefectAuth(self.url, self.auth_string)
        return self._auth

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", auth=self.auth, timeout=10)

    def post(self, path: str, body: dict) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, auth=self.auth, timeout=10)


def wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer")


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment contains `marker` (this test's MLC_HOME)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            environ = (proc / "environ").read_bytes()
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(proc.name))
    return found


def test_up_starts_everything_and_ctrl_c_stops_it(local_settings: MlcSettings,
                                                  examples_dir: Path) -> None:
    prefect_port, qa_port, prod_port = free_port(), free_port(), free_port()
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(prefect_port), MLC_RUNTIMES=json.dumps([
        {"name": "qa", "tags": {"env": "qa"}, "port": qa_port},
        {"name": "prod", "tags": {"env": "prod"}, "port": prod_port}]))
    up = subprocess.Popen([mlc_bin(), "up", "--submit", str(examples_dir / "credit-risk")],
                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = ""
        for line in up.stdout:  # type: ignore[union-attr]
            output += line
            if "Ctrl-C here stops everything" in line:
                break
        assert "registered credit-risk:1" in output, output
        assert f"http://127.0.0.1:{prefect_port}" in output
        api = PrefectApi(prefect_port, local_settings.home)
        wait_for(f"{api.url}/health")
        for port in (qa_port, prod_port):
            wait_for(f"http://127.0.0.1:{port}/health")
        deadline, names = time.monotonic() + 60, []
        while "deploy-model" not in names and time.monotonic() < deadline:
            found = api.post("/deployments/filter", {}).json()
            names = [d["name"] for d in found]
            time.sleep(1)
        assert "deploy-model" in names
        marker = f"MLC_HOME={local_settings.home}"
        assert len(processes_with(marker)) >= 5  # mlc up, server, 2 runtimes, serve
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
    assert up.returncode == 0
    time.sleep(1)
    assert processes_with(marker) == []
