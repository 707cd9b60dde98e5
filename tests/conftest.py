"""Shared fixtures: real databases (SQLite, and PostgreSQL when MLC_TEST_DATABASE_URL is set),
generated example packages, and real runtime processes on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.registry import Registry
from mlc_tasks.settings import MlcSettings

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-admin-token"
PG_URL = os.environ.get("MLC_TEST_DATABASE_URL")
# CI always sets it (.ci/run starts PostgreSQL); there a missing URL fails rather than skips.
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(
    not PG_URL and not os.environ.get("CI"), reason="MLC_TEST_DATABASE_URL not set"))]


def pytest_configure(config: pytest.Config) -> None:
    """Prefect servers the tests start send no telemetry: nothing leaves loopback."""
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"


@pytest.fixture(autouse=True)
def no_outside_mlc_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests see only the MLC_ settings they set themselves."""
    for key in [k for k in os.environ if k.startswith("MLC_") and not k.startswith("MLC_TEST_")]:
        monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def data_roots(no_outside_mlc_settings: None, monkeypatch: pytest.MonkeyPatch,
               tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> list[str]:
    """Where a test's model data may lie (MLC_DATA_ROOTS, seen by every MlcSettings built from
    here on): its own folder and the generated examples' daily data, nothing wider."""
    roots = [str(tmp_path), str(examples_root(tmp_path_factory) / "daily")]
    monkeypatch.setenv("MLC_DATA_ROOTS", json.dumps(roots))
    return roots


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty registry database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    yield from _fresh_postgres_database()


def _fresh_postgres_database() -> Iterator[str]:
    assert PG_URL, "MLC_TEST_DATABASE_URL must be set in CI (.ci/run starts PostgreSQL)"
    name = f"mlc_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> MlcSettings:
    """Settings on each registry backend (registry tests)."""
    return MlcSettings(home=tmp_path / "home", database_url=database_url, admin_token=TOKEN)


@pytest.fixture
def local_settings(tmp_path: Path) -> MlcSettings:
    """Settings on the default SQLite registry (runtime, CLI and flow tests)."""
    return MlcSettings(home=tmp_path / "home", admin_token=TOKEN)


@pytest.fixture
def registry(settings: MlcSettings) -> Iterator[Registry]:
    reg = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    yield reg
    reg.close()


@pytest.fixture
def store(settings: MlcSettings) -> ArtifactStore:
    return ArtifactStore(settings.artifact_url())


@pytest.fixture(scope="session")
def examples_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example packages, generated once per session (data and artifacts)."""
    target = examples_root(tmp_path_factory)
    target.mkdir()
    names = ("credit-risk", "house-prices", "house-prices-v2")
    for name in names:
        shutil.copytree(REPO / "examples" / name, target / name,
                        ignore=shutil.ignore_patterns("data", "model.skops"))
    subprocess.run([sys.executable, str(REPO / "examples" / "generate.py"),
                    *(str(target / name) for name in names)], check=True, capture_output=True)
    return target


def examples_root(factory: pytest.TempPathFactory) -> Path:
    """Where the session's examples are generated: known before they are."""
    return factory.getbasetemp() / "examples"


@pytest.fixture
def package(examples_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the credit-risk package that a test may change."""
    return Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "credit-risk"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlc_env(settings: MlcSettings) -> dict[str, str]:
    """Environment for an `mlc` process that uses these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env.update(MLC_HOME=str(settings.home), MLC_DATABASE_URL=settings.registry_url(),
               MLC_USER="tester", MLC_HEARTBEAT_SECONDS="1",
               MLC_RUNTIME_WORKERS="1",  # one process per runtime: the fleet tests start more
               MLC_NOTIFY_PORT=str(free_port()),  # `mlc up`s of parallel tests never collide
               MLC_API_PORT=str(free_port()),
               MLC_DATA_ROOTS=json.dumps(settings.data_roots),
               PREFECT_API_URL="http://127.0.0.1:9/api")  # nothing listens: events fail fast
    if settings.admin_token is not None:  # else each runtime generates its own under home
        env["MLC_ADMIN_TOKEN"] = settings.admin_token.get_secret_value()
    return env


def mlc_bin() -> str:
    """The installed `mlc` entry point beside this interpreter."""
    path = Path(sys.executable).parent / "mlc"
    assert path.exists(), f"{path} missing: install the project (make setup)"
    return str(path)


class RuntimeProcess:
    """`mlc runtime start` as a real uvicorn process on a loopback port."""

    def __init__(self, settings: MlcSettings, name: str, tags: str, workers: int = 1) -> None:
        self.settings, self.name, self.tags, self.workers = settings, name, tags, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.env_extra: dict[str, str] = {}

    def start(self) -> RuntimeProcess:
        self.log = tempfile.TemporaryFile()  # a pipe nobody reads could fill and block it
        self.process = subprocess.Popen(
            [mlc_bin(), "runtime", "start", self.name, "--tags", self.tags, "--port",
             str(self.port), "--workers", str(self.workers)],
            env={**mlc_env(self.settings), **self.env_extra}, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"runtime exited: {self.log.read().decode()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("runtime did not start")

    def stop(self) -> None:
        """Terminate it (uvicorn stops its workers), or kill it if it will not stop: no test
        leaves a runtime behind."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def runtime_serving(url: str, model: str | None = None) -> dict[str, Any] | None:
    """The summary of the version a runtime serves of `model` (None: of the one model it
    serves; it must serve at most one), or None when it serves none."""
    models = httpx.get(f"{url}/health", timeout=10).json()["models"]
    if model is None:
        assert len(models) <= 1, f"the runtime serves {sorted(models)}: name the model"
        return next(iter(models.values()))["current"] if models else None
    return models[model]["current"] if model in models else None


class ApiProcess:
    """The installation's API (`python -m deployments.api`, the control-plane API) as a real
    uvicorn process on a loopback port, for the home of these settings."""

    def __init__(self, settings: MlcSettings, **env: str) -> None:
        self.settings, self.port = settings, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**mlc_env(settings), "MLC_API_PORT": str(self.port), **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        python = str(Path(mlc_bin()).parent / "python")
        self.log = tempfile.TemporaryFile()  # a pipe nobody reads could fill and block it
        self.process = subprocess.Popen([python, "-m", "deployments.api"], env=self.env,
                                        stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"API exited: {self.log.read().decode()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("API did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def enroll(settings: MlcSettings, principal: str, service: bool = False) -> str:
    """A new token for a person (or a service), as `mlc people enroll` issues it."""
    from mlc_tasks.people import PrincipalKind
    from mlc_tasks.registry.principals import PrincipalBook

    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    try:
        kind = PrincipalKind.SERVICE if service else PrincipalKind.PERSON
        return PrincipalBook(registry).enroll(principal, kind, "local:tester").token
    finally:
        registry.close()


@pytest.fixture
def start_runtime(local_settings: MlcSettings) -> Iterator[object]:
    started: list[RuntimeProcess] = []

    def start(name: str = "qa", tags: str = "env=qa", workers: int = 1) -> RuntimeProcess:
        runtime = RuntimeProcess(local_settings, name, tags, workers).start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.stop()


def until(check: Callable[[], Any], what: str, seconds: float = 240) -> Any:
    """The first truthy answer of `check`, polled until the deadline: wait on a condition."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {seconds:.0f} s")
