"""`mlc up` starts Prefect locked down: auth on (the string generated into MLC_HOME, 0600),
CORS only for its own UI, CSRF protection on; our own clients send the credentials, and
nothing else gets in. MLC_HOME and what it holds are private to its user."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from deployments.reconcile import PrefectRuns
from mlc_tasks import events
from mlc_tasks.errors import PrefectAuthError, TransientError
from mlc_tasks.prefect_auth import PrefectAuth, auth_headers
from mlc_tasks.registry import Registry
from mlc_tasks.settings import MlcSettings
from tests.conftest import free_port, mlc_bin, mlc_env

EVIL = "http://evil.example"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def ping(name: str) -> dict:
    return {"id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat(), "event": name,
            "resource": {"prefect.resource.id": "mlc.test", "prefect.resource.name": "test"},
            "related": [], "payload": {}}


@pytest.fixture
def up(local_settings: MlcSettings) -> dict:
    """One `mlc up` (no submissions) on a home left open by an older installation: the folder
    0755, a registry and a log 0644."""
    home = local_settings.home
    (home / "logs").mkdir(parents=True)
    home.chmod(0o755)
    Registry(local_settings.registry_url()).close()
    old_log = home / "logs" / "api.log"
    old_log.write_text("from an older mlc up\n")
    for path in (home / "registry.db", old_log):
        path.chmod(0o644)
    port = free_port()
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(port), MLC_RUNTIMES=json.dumps([
        {"name": "qa", "tags": {"env": "qa"}, "port": free_port()},
        {"name": "prod", "tags": {"env": "prod"}, "port": free_port()}]),
        PREFECT_API_AUTH_STRING="mlc:a-stale-one-from-this-shell")  # `mlc up` sets its own
    process = subprocess.Popen([mlc_bin(), "up"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = ""
    for line in process.stdout:  # type: ignore[union-attr]
        output += line
        if "Ctrl-C here stops everything" in line:
            break
    try:
        assert process.poll() is None, output
        yield {"ui": f"http://127.0.0.1:{port}", "api": f"http://127.0.0.1:{port}/api",
               "home": home, "output": output, "env": env}
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def test_prefect_is_locked_down_and_home_is_private(up: dict) -> None:
    api, ui, home = up["api"], up["ui"], up["home"]
    auth = (home / "prefect-auth").read_text()
    assert f"log in with the auth string in {home / 'prefect-auth'}" in up["output"]
    assert auth.startswith("mlc:") and auth not in up["output"]

    # nobody without the auth string gets in; a GET of a CSRF token neither
    assert httpx.get(f"{api}/health").status_code == 200  # the one open path
    assert httpx.get(f"{api}/csrf-token", params={"client": "x"}).status_code == 401
    assert httpx.get(f"{api}/admin/version").status_code == 401
    assert httpx.post(f"{api}/flow_runs/filter", json={}).status_code in (401, 403)
    wrong = auth_headers("mlc:guessed")
    assert httpx.get(f"{api}/csrf-token", params={"client": "x"},
                     headers=wrong).status_code == 401
    answer = httpx.post(f"{api}/flow_runs/filter", json={}, headers=wrong)
    assert answer.status_code in (401, 403)
    # with the auth string but no CSRF token a change is refused (CSRF protection is on)
    no_token = httpx.post(f"{api}/flow_runs/filter", json={}, headers=auth_headers(auth))
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    with pytest.raises(PrefectAuthError, match="refused a call without credentials"):
        httpx.post(f"{api}/flow_runs/filter", json={}, auth=PrefectAuth(api, ""))
    with pytest.raises(TransientError, match="HTTP 401"):
        events.emit(ping("mlc.test.outsider"), api)  # this test's environment has no auth

    # a web page elsewhere may not call it from a browser; the UI's own origin may
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    evil = httpx.options(f"{api}/flow_runs/filter", headers={"Origin": EVIL, **preflight})
    assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
    simple = httpx.get(f"{api}/health", headers={"Origin": EVIL})
    assert "access-control-allow-origin" not in simple.headers
    own = httpx.options(f"{api}/flow_runs/filter", headers={"Origin": ui, **preflight})
    assert own.status_code == 200 and own.headers["access-control-allow-origin"] == ui
    assert httpx.get(f"{ui}/ui-settings").json()["auth"] == "BASIC"  # the UI asks to log in

    # with the credentials, our clients work: raw calls, reconciliation, events
    signed = PrefectAuth(api, auth)
    found = httpx.post(f"{api}/deployments/filter", json={}, auth=signed)
    assert found.status_code == 200 and "deploy-model" in {d["name"] for d in found.json()}
    assert "deploy-model" in {d["name"] for d in PrefectRuns(api, signed).deployments().values()}
    os.environ["PREFECT_API_AUTH_STRING"] = auth
    try:
        events.emit(ping("mlc.test.insider"), api)
    finally:
        del os.environ["PREFECT_API_AUTH_STRING"]

    # MLC_HOME and what it holds are this user's alone, also what was there before
    assert mode(home) == 0o700
    secrets = ["prefect-auth", "notify-secret", "audit-key", "runtime-token-qa",
               "runtime-token-prod"]
    logs = sorted((home / "logs").glob("*.log"))
    assert {"api.log", "prefect-server.log", "serve.log"} <= {p.name for p in logs}
    for path in [home / "registry.db", *logs, *(home / s for s in secrets if (home / s).exists())]:
        assert mode(path) == 0o600, path
    assert (home / "prefect-auth").exists() and (home / "notify-secret").exists()
    assert mode(home / "logs") == 0o700
