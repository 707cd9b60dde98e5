"""A Prefect test server for the control-plane API's deploy and rollback, which run their
flows in the API's process: per test module that asks for it (a session-wide one would outlive
the module and overlap the one tests/flows/ keeps for the session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield str(PREFECT_API_URL.value())
