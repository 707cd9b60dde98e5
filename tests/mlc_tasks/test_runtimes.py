from datetime import datetime

import pytest

from mlc_tasks.errors import InvalidInputError, RuntimeSelectionError
from mlc_tasks.registry import DeploymentRecord, RuntimeRecord
from mlc_tasks.runtimes import (
    live_runtimes,
    parse_tags,
    rollback_target,
    select_runtime,
)


def runtime(name: str, **tags: str) -> RuntimeRecord:
    now = datetime(2026, 1, 1)
    return RuntimeRecord(name=name, url=f"http://127.0.0.1/{name}", tags=tags, capabilities={},
                         started_at=now, last_heartbeat=now)


RUNTIMES = [
    runtime("qa", env="qa", zone="eu"),
    runtime("prod-eu", env="prod", zone="eu"),
    runtime("prod-us", env="prod", zone="us"),
]


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [({"env": "qa"}, "qa"), ({"env": "prod", "zone": "eu"}, "prod-eu"),
     ({"zone": "us"}, "prod-us"), ({"env": "qa", "zone": "eu"}, "qa")],
)
def test_select_runtime_all_tags_must_match(wanted: dict[str, str], chosen: str) -> None:
    assert select_runtime(RUNTIMES, wanted).name == chosen


@pytest.mark.parametrize(
    ("wanted", "message"),
    [({"env": "prod"}, "2 runtimes match env=prod"),
     ({"env": "prod", "zone": "asia"}, "no runtime matches env=prod,zone=asia"),
     ({"env": "qa", "zone": "us"}, "no runtime matches")],
)
def test_select_runtime_errors(wanted: dict[str, str], message: str) -> None:
    with pytest.raises(RuntimeSelectionError, match=message):
        select_runtime(RUNTIMES, wanted)


def test_select_runtime_none_registered() -> None:
    with pytest.raises(RuntimeSelectionError, match="none live"):
        select_runtime([], {"env": "qa"})


@pytest.mark.parametrize(
    ("text", "tags"),
    [("env=prod", {"env": "prod"}), ("env=prod, zone=eu", {"env": "prod", "zone": "eu"})],
)
def test_parse_tags(text: str, tags: dict[str, str]) -> None:
    assert parse_tags(text) == tags


@pytest.mark.parametrize("text", ["", "env", "env=", "=prod", "env=prod,zone"])
def test_parse_tags_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError, match="tags"):
        parse_tags(text)


def test_runtimes_with_an_old_heartbeat_are_not_live() -> None:
    fresh = runtime("new", env="qa").model_copy(
        update={"last_heartbeat": datetime(2026, 1, 1, 0, 1)})
    stale = runtime("old", env="qa")
    now = datetime(2026, 1, 1, 0, 1, 30)
    assert [r.name for r in live_runtimes([fresh, stale], now, 60)] == ["new"]


def deployment(id: int, version: int, minute: int, current: bool = False,
               runtime: str = "prod") -> DeploymentRecord:
    return DeploymentRecord(
        id=id, model="m", version_number=version, version_id=f"v{version}", runtime=runtime,
        env="prod", deployed_at=datetime(2026, 1, 1, 0, minute),
        replaced_at=None if current else datetime(2026, 1, 1, 0, minute + 1),
        deployed_by="x", reason="")


def test_rollback_goes_to_the_version_served_before_the_current() -> None:
    history = [deployment(1, 1, 0), deployment(2, 2, 1), deployment(3, 3, 2, current=True),
               deployment(4, 9, 3, current=True, runtime="qa")]
    assert rollback_target(history, "prod").version_number == 2
    redeployed = [deployment(1, 1, 0), deployment(2, 2, 1), deployment(3, 2, 2, current=True)]
    assert rollback_target(redeployed, "prod").version_number == 1


@pytest.mark.parametrize(("history", "message"), [
    ([], "serves nothing"),
    ([deployment(1, 1, 0), deployment(2, 1, 1, current=True)], "no earlier version")])
def test_rollback_without_a_target_says_why(history, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        rollback_target(history, "prod")
