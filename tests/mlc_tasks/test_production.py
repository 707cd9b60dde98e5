"""Production as the registry records it: its env from the policy's production stage, the
deployment that serves a version now, and when production stopped serving one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlc_tasks import production
from tests.mlc_tasks.result_records import T0, deployment


@pytest.mark.parametrize(("prod", "env"), [
    ({"env": "prod"}, "prod"), ({"env": "production", "zone": "eu"}, "production"),
    ({"zone": "eu"}, "prod")])
def test_the_production_env_is_the_stages_env_tag(prod: dict[str, str], env: str) -> None:
    assert production.prod_env(prod) == env


@pytest.mark.parametrize(("history", "serving"), [
    ([], None),
    ([deployment(1, 2, 0)], 1),
    ([deployment(1, 2, 0, replaced=5)], None),                     # replaced since
    ([deployment(1, 2, 0, env="qa")], None),                       # QA is not production
    ([deployment(1, 1, 0)], None),                                 # another version
    ([deployment(1, 2, 0, runtime="prod-a"), deployment(2, 2, 3, runtime="prod-b")], 2),
])
def test_the_deployment_serving_a_version_now(history, serving: int | None) -> None:
    found = production.serving(history, "v2", "prod")
    assert (found.id if found else None) == serving


def test_production_is_the_policys_env_not_a_fixed_name() -> None:
    history = [deployment(1, 2, 0, env="production")]
    assert production.serving(history, "v2", "prod") is None
    assert production.serving(history, "v2", "production") == history[0]


@pytest.mark.parametrize(("history", "ended"), [
    ([], None),
    ([deployment(1, 2, 0)], None),                                 # still serving
    ([deployment(1, 2, 0, replaced=10)], 10),
    ([deployment(1, 2, 0, replaced=10), deployment(2, 2, 20, replaced=30)], 30),
    ([deployment(1, 2, 0, replaced=10), deployment(2, 2, 20)], None),  # served again
    ([deployment(1, 2, 0, env="qa", replaced=10)], None),          # never in production
])
def test_when_production_stopped_serving_a_version(history, ended: int | None) -> None:
    found = production.replaced_at(history, "v2", "prod")
    assert found == (None if ended is None else T0 + timedelta(minutes=ended))
