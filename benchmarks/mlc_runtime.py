"""Our runtime for runtime_bench.py: a throwaway MLC_HOME with its SQLite registry, packages
submitted there, and `mlc runtime start` as a real process on loopback that versions are
deployed onto through the registry (deploy_version, with the runtime's token)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from serving_process import wait_until_answers

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.runtimes import RuntimeClient, deploy_version
from mlc_tasks.settings import MlcSettings
from mlc_tasks.submission import submit_package

TOKEN = "bench-admin-token"
PASSED_THROUGH = ("MLC_RUNTIME_WORKERS",)  # the rest of the caller's MLC_ settings is dropped


@dataclass
class Installation:
    """A scratch home: settings, registry and artifact store."""

    home: Path
    data_roots: list[str]
    settings: MlcSettings = field(init=False)
    registry: Registry = field(init=False)

    def __post_init__(self) -> None:
        self.settings = MlcSettings(home=self.home, admin_token=TOKEN, data_roots=self.data_roots)
        self.registry = Registry(self.settings.registry_url(),
                                 audit_key=self.settings.resolved_audit_key())

    def submit(self, package: Path) -> VersionRecord:
        store = ArtifactStore(self.settings.artifact_url())
        return submit_package(package, self.registry, store, self.settings.trusted_types,
                              "bench", LocationPolicy.from_settings(self.settings))[0]

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of an `mlc` process on this home (nothing leaves loopback)."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MLC_") or k in PASSED_THROUGH}
        env.update(MLC_HOME=str(self.home), MLC_DATABASE_URL=self.settings.registry_url(),
                   MLC_ADMIN_TOKEN=TOKEN, MLC_DATA_ROOTS=json.dumps(self.data_roots),
                   PREFECT_API_URL="http://127.0.0.1:9/api", **extra)
        return env


@dataclass
class RuntimeProcess:
    """`mlc runtime start NAME --tags env=qa --port PORT`; its stderr goes to `log`."""

    installation: Installation
    name: str
    port: int
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RuntimeProcess:
        mlc = Path(sys.executable).parent / "mlc"
        command = [str(mlc), "runtime", "start", self.name, "--tags", "env=qa", "--port",
                   str(self.port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, env=self.installation.env(**self.extra_env),
                                            stdout=out, stderr=subprocess.STDOUT)
        self._wait()
        return self

    def _wait(self) -> None:
        wait_until_answers(f"{self.url}/health", self.process, self.log, "the runtime", 90,
                           self.stop)

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/health", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def deploy(self, version: VersionRecord) -> float:
        """Deploy through the registry (smoke test included); returns the seconds it took."""
        registry = self.installation.registry
        start = time.perf_counter()
        deploy_version(registry, RuntimeClient(self.url, TOKEN), registry.get_runtime(self.name),
                       version, "bench")
        return time.perf_counter() - start

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def invocation_path(health: dict[str, Any], model: str) -> str:
    """The scoring route: per model on a runtime that lists its models, else the one route."""
    return f"/models/{model}/invocations" if "models" in health else "/invocations"
