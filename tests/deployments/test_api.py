"""The installation's API as a real process: commands in another folder and another HOME find
the running installation through it (and say so when none runs, creating nothing); stored
reports open in a browser as sandboxed HTML, and nothing else in the store is reachable."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deployments.api import installation
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.registry import Registry
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import free_port, mlc_bin, mlc_env

PYTHON = str(Path(mlc_bin()).parent / "python")


@pytest.fixture
def api(local_settings: MlcSettings) -> Iterator[str]:
    port = free_port()
    env = {**mlc_env(local_settings), "MLC_API_PORT": str(port)}
    process = subprocess.Popen([PYTHON, "-m", "deployments.api"], env=env,
                               stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=20)


def outsider_env(tmp_path: Path, api_url: str) -> dict[str, str]:
    """A second terminal somewhere else: no MLC_HOME, another HOME."""
    home = tmp_path / "someone-else"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in mlc_env(MlcSettings()).items()
           if k not in ("MLC_HOME", "MLC_DATABASE_URL", "PREFECT_API_URL")}
    return {**env, "HOME": str(home), "MLC_API_URL": api_url}


def test_another_folder_and_home_finds_the_running_installation(
        local_settings: MlcSettings, examples_dir: Path, api: str, tmp_path: Path) -> None:
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    submit_package(examples_dir / "credit-risk", registry,
                   ArtifactStore(local_settings.artifact_url()), list(REVIEWED_TYPES), "ana")
    env = outsider_env(tmp_path, api)
    listed = subprocess.run([mlc_bin(), "models"], env=env, cwd=env["HOME"],
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].startswith("credit-risk\tclassification\thigh\t-\t")
    versions = subprocess.run([mlc_bin(), "versions", "credit-risk"], env=env, cwd=env["HOME"],
                              capture_output=True, text=True)
    assert versions.returncode == 0, versions.stderr
    assert versions.stdout.splitlines()[0] == \
        "version\tstate\tchampion\tsha256\tcreated by\tcreated (UTC)\tid"
    assert versions.stdout.splitlines()[1].startswith("1\tsubmitted\t"), versions.stdout
    assert not (Path(env["HOME"]) / ".mlc").exists()
    registry.close()


def test_with_none_running_commands_say_so_and_create_nothing(tmp_path: Path) -> None:
    env = outsider_env(tmp_path, f"http://127.0.0.1:{free_port()}")
    for command in (["models"], ["versions", "credit-risk"], ["tasks"]):
        done = subprocess.run([mlc_bin(), *command], env=env, cwd=env["HOME"],
                              capture_output=True, text=True)
        assert done.returncode == 1, (command, done.stdout)
        assert "no running installation answers at http://127.0.0.1:" in done.stderr
        assert "start one with `make run`" in done.stderr
    configured = {**env, "MLC_HOME": str(tmp_path / "never-used")}
    done = subprocess.run([mlc_bin(), "models"], env=configured, capture_output=True, text=True)
    assert done.returncode == 1 and "no registry at" in done.stderr
    assert not (Path(env["HOME"]) / ".mlc").exists()
    assert not (tmp_path / "never-used").exists()


def test_reports_open_as_sandboxed_html_and_nothing_else_is_served(
        local_settings: MlcSettings, api: str) -> None:
    store = ArtifactStore(local_settings.artifact_url())
    html = b"<html><body><h1>Data drift</h1></body></html>"
    _, digest = store.put(html, ".html")
    shown = httpx.get(f"{api}/reports/{digest}.html")
    assert shown.status_code == 200 and shown.content == html
    assert shown.headers["content-type"] == "text/html; charset=utf-8"
    assert shown.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert shown.headers["x-content-type-options"] == "nosniff"

    _, artifact = store.put(b"the bytes of a model artifact")  # stored without a media type
    admin = local_settings.resolved_admin_token()
    for name in (f"{artifact}.html", artifact, digest, digest.upper() + ".html",
                 f"..%2F..%2F{digest}.html", "..%2F..%2Fadmin-token",
                 hashlib.sha256(b"never stored").hexdigest() + ".html"):
        answer = httpx.get(f"{api}/reports/{name}")
        assert answer.status_code == 404, name
        assert admin not in answer.text


def test_the_installation_answer_names_no_password(tmp_path: Path) -> None:
    settings = MlcSettings(home=tmp_path,
                           database_url="postgresql+psycopg://mlc:s3cret@db.internal:5432/mlc")
    found = installation(settings, "http://127.0.0.1:4200/api")
    assert "s3cret" not in str(found)
    assert found["registry_url"].startswith("postgresql+psycopg://mlc:***@")


def test_a_submitter_cannot_trust_types_for_the_installation(
        local_settings: MlcSettings, examples_dir: Path, api: str, tmp_path: Path) -> None:
    """`MLC_TRUSTED_TYPES='["builtins.exec"]' mlc submit` with a crafted artifact: the running
    installation's reviewed list decides, and nothing is registered."""
    import shutil

    import skops.io as sio

    Registry(local_settings.registry_url()).close()
    package = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "evil"))
    (package / "model.skops").write_bytes(sio.dumps({"call": exec}))
    env = {**outsider_env(tmp_path, api), "MLC_TRUSTED_TYPES": '["builtins.exec"]'}
    done = subprocess.run([mlc_bin(), "submit", str(package)], env=env, cwd=env["HOME"],
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stdout
    assert "types not reviewed: builtins.exec" in done.stderr
    registry = Registry(local_settings.registry_url())
    assert registry.list_models() == []
    registry.close()
