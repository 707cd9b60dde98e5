"""Wiring shared by the CLI, the runtime and the flows: settings → registry, store, clients."""

from __future__ import annotations

import getpass
import os

from mlc_tasks import runtimes
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.registry import Registry, RuntimeRecord
from mlc_tasks.registry.store import utcnow
from mlc_tasks.runtimes import RuntimeClient
from mlc_tasks.settings import MlcSettings


class Context:
    """Everything a command needs, built once from settings."""

    def __init__(self, settings: MlcSettings | None = None) -> None:
        self.settings = settings or MlcSettings()
        self._registry: Registry | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.settings.registry_url())
        return self._registry

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.settings.artifact_url())

    def runtime_client(self, url: str) -> RuntimeClient:
        return RuntimeClient(url, self.settings.resolved_admin_token(),
                             timeout=self.settings.request_timeout_seconds)

    def choose_runtime(self, tags: dict[str, str]) -> RuntimeRecord:
        """The one live runtime whose tags include all of `tags`."""
        live = runtimes.live_runtimes(self.registry.list_runtimes(), utcnow(),
                                      self.settings.runtime_silence_seconds)
        return runtimes.select_runtime(live, tags)

    def prefect_api_url(self) -> str:
        return os.environ.get("PREFECT_API_URL") or self.settings.prefect_api_url()


def current_user() -> str:
    return os.environ.get("MLC_USER") or getpass.getuser()
