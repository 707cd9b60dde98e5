"""A Prefect test server for the control-plane API's deploy and rollback, which run their
flows in the API's process: per test module that asks for it (a session-wide one would outlive
the module and overlap the one tests/flows/ keeps for the session). The default SQLite
registry, for the runtime tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mlc_tasks.registry import Registry
from mlc_tasks.settings import MlcSettings


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())


@pytest.fixture
def local_registry(local_settings: MlcSettings) -> Iterator[Registry]:
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    yield registry
    registry.close()
