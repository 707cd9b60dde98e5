from datetime import datetime

import pytest

from mlc_tasks.errors import InvalidInputError, RuntimeSelectionError
from mlc_tasks.registry import RuntimeRecord
from mlc_tasks.runtimes import live_runtimes, parse_tags, select_runtime


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
