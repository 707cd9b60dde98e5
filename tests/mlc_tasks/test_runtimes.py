import stat
from datetime import datetime
from pathlib import Path

import pytest

from mlc_tasks.errors import (
    DeployRefusedError,
    InvalidInputError,
    RuntimeFullError,
    RuntimeRefusedError,
    RuntimeSelectionError,
    RuntimeUnavailableError,
)
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import DeploymentRecord, RuntimeRecord, VersionRecord
from mlc_tasks.runtimes import (
    DeployRequest,
    check_request,
    live_runtimes,
    parse_tags,
    rollback_target,
    select_runtime,
)
from mlc_tasks.scoring import Column
from mlc_tasks.settings import MlcSettings


def runtime(name: str, max_models: int | None = None, **tags: str) -> RuntimeRecord:
    now = datetime(2026, 1, 1)
    capabilities = {} if max_models is None else {"max_models": max_models}
    return RuntimeRecord(name=name, url=f"http://127.0.0.1/{name}", tags=tags,
                         capabilities=capabilities, started_at=now, last_heartbeat=now)


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
    [({"env": "prod", "zone": "asia"}, "no runtime matches env=prod,zone=asia"),
     ({"env": "qa", "zone": "us"}, "no runtime matches")],
)
def test_select_runtime_errors(wanted: dict[str, str], message: str) -> None:
    with pytest.raises(RuntimeSelectionError, match=message):
        select_runtime(RUNTIMES, wanted)


POOL = [runtime("prod-a", 2, env="prod"), runtime("prod-b", 2, env="prod"),
        runtime("qa", 2, env="qa")]


@pytest.mark.parametrize(
    ("model", "served", "chosen"),
    [("credit-risk", {}, "prod-a"),  # the emptiest, ties by name
     ("credit-risk", {"prod-a": {"house-prices"}}, "prod-b"),
     ("credit-risk", {"prod-b": {"credit-risk", "x"}}, "prod-b"),  # full, but serves it
     ("y", {"prod-a": {"a", "b"}, "prod-b": {"c"}}, "prod-b"),  # prod-a is full
     ("y", {"prod-a": {"a"}, "prod-b": {"c"}, "qa": {}}, "prod-a")],
)
def test_runtime_choice_keeps_a_model_where_it_is_and_skips_full_runtimes(
        model: str, served: dict[str, set[str]], chosen: str) -> None:
    assert select_runtime(POOL, {"env": "prod"}, model, served).name == chosen


def test_every_matching_runtime_full_is_a_clear_error() -> None:
    served = {"prod-a": {"a", "b"}, "prod-b": {"c", "d"}}
    with pytest.raises(RuntimeFullError, match=r"every runtime matching env=prod is full "
                                               r"\(prod-a: 2 of 2 models; prod-b: 2 of 2 models\)"):
        select_runtime(POOL, {"env": "prod"}, "e", served)


def test_a_model_on_two_matching_runtimes_needs_a_tag_to_choose() -> None:
    with pytest.raises(RuntimeSelectionError, match="2 runtimes matching env=prod serve x"):
        select_runtime(POOL, {"env": "prod"}, "x", {"prod-a": {"x"}, "prod-b": {"x"}})


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


# ---- what a runtime may serve: the registry's version, in a state its env allows --------------

def version(state: State = State.APPROVED, **changes: object) -> VersionRecord:
    return VersionRecord(
        id="v1", model="house-prices", number=1, state=state, created_by="ana",
        created_at=datetime(2026, 1, 1), source_sha256="s" * 64,
        artifact_uri="/store/aa.skops", artifact_sha256="a" * 64, format="skops",
        artifact_types=[], trusted_types=[], label="price", metrics=["rmse"],
        input_schema=[Column(name="rooms", dtype="int")], sensitive_attributes=[],
        sample_rows=[{"rooms": 3}], training=None, parent_version_id=None,
        training_data_sha256=None, parameters={}, seed=None, package_uri=None,
    ).model_copy(update=changes)


@pytest.mark.parametrize(("state", "production"), [
    (State.APPROVED, True), (State.DEPLOYED, True), (State.TESTED, False),
    (State.SUBMITTED, False)])
def test_the_registered_version_is_served_where_its_state_allows(state: State,
                                                                 production: bool) -> None:
    registered = version(state)
    request = DeployRequest.for_version(registered)
    assert check_request(request, registered, production) == request


@pytest.mark.parametrize(("state", "production", "message"), [
    (State.REJECTED, True, "house-prices:1 as rejected: a rejected version cannot be deployed"),
    (State.REJECTED, False, "as rejected"), (State.RETIRED, False, "as retired"),
    (State.FAILED, True, "as failed"),
    (State.TESTED, True, "as tested: production takes approved versions only")])
def test_a_state_the_runtime_does_not_allow_is_refused_naming_it(state: State, production: bool,
                                                                message: str) -> None:
    registered = version(state)
    with pytest.raises(DeployRefusedError, match=message):
        check_request(DeployRequest.for_version(registered), registered, production)


@pytest.mark.parametrize(("change", "fields"), [
    ({"artifact_sha256": "b" * 64}, "artifact_sha256"),
    ({"artifact_uri": "/elsewhere/bb.skops", "artifact_sha256": "b" * 64},
     "artifact_uri, artifact_sha256"),
    ({"trusted_types": ["builtins.exec"]}, "trusted_types"),
    ({"input_schema": [Column(name="rooms", dtype="float")]}, "input_schema"),
    ({"number": 2}, "number")])
def test_a_request_that_differs_from_the_registry_is_refused_naming_the_fields(
        change: dict, fields: str) -> None:
    registered = version()
    request = DeployRequest.for_version(registered).model_copy(update=change)
    with pytest.raises(DeployRefusedError, match=f"differs from the registry's house-prices:1 "
                                                 f"in {fields}$"):
        check_request(request, registered, True)


def test_a_version_without_an_artifact_is_refused() -> None:
    request = DeployRequest.for_version(version())
    with pytest.raises(DeployRefusedError, match="has no artifact yet"):
        check_request(request, version(artifact_uri=None, artifact_sha256=None), False)


# ---- each runtime its own admin token ---------------------------------------------------------

def test_each_runtime_gets_its_own_token_generated_once_mode_0600(tmp_path: Path) -> None:
    settings = MlcSettings(home=tmp_path / "home")
    qa, prod = settings.resolved_runtime_token("qa"), settings.resolved_runtime_token("prod")
    assert qa != prod and len(prod) >= 32
    path = tmp_path / "home" / "runtime-token-prod"
    assert path.read_text() == prod and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert MlcSettings(home=tmp_path / "home").resolved_runtime_token("prod") == prod


def test_a_token_configured_by_name_wins_and_one_admin_token_opens_the_rest(
        tmp_path: Path) -> None:
    settings = MlcSettings(home=tmp_path / "home", admin_token="all",
                           runtime_tokens={"prod": "prod-only"})
    assert settings.resolved_runtime_token("prod") == "prod-only"
    assert settings.resolved_runtime_token("qa") == "all"
    assert not (tmp_path / "home").exists()  # configured: nothing written


def test_runtime_tokens_come_from_json_in_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_RUNTIME_TOKENS", '{"prod": "p", "qa": "q"}')
    settings = MlcSettings(home=tmp_path / "home")
    assert [settings.resolved_runtime_token(n) for n in ("prod", "qa")] == ["p", "q"]


@pytest.mark.parametrize("name", ["../admin-token", "prod/../../x", "Prod", "", "-qa"])
def test_a_runtime_name_that_is_not_a_plain_name_gets_no_token(tmp_path: Path,
                                                               name: str) -> None:
    with pytest.raises(InvalidInputError, match="runtime name"):
        MlcSettings(home=tmp_path / "home").resolved_runtime_token(name)


def test_an_empty_configured_token_is_refused(tmp_path: Path) -> None:
    settings = MlcSettings(home=tmp_path / "home", runtime_tokens={"prod": ""})
    with pytest.raises(InvalidInputError, match="token configured for runtime 'prod' is empty"):
        settings.resolved_runtime_token("prod")


# ---- what a runtime's answer means: refused (4xx) is not retried, failed (5xx) is -----------

@pytest.mark.parametrize(("status", "error"), [
    (400, RuntimeRefusedError), (401, RuntimeRefusedError), (403, RuntimeRefusedError),
    (422, RuntimeRefusedError), (500, RuntimeUnavailableError), (503, RuntimeUnavailableError)])
def test_a_runtime_that_refuses_says_why_and_one_that_fails_is_transient(status: int,
                                                                         error: type) -> None:
    from mlc_tasks.errors import MlcError, TransientError
    from mlc_tasks.runtimes import RuntimeClient
    from tests.receivers import Reply, serve

    with serve() as receiver:
        receiver.script("/admin/models/credit-risk/revert",
                        Reply(status, json={"detail": "nothing to go to"}))
        with pytest.raises(error, match=f"/admin/models/credit-risk/revert .*{status}") as info:
            RuntimeClient(receiver.url, "t0ken").revert("credit-risk")
    assert isinstance(info.value, MlcError) and type(info.value) is not MlcError
    assert isinstance(info.value, TransientError) is (status >= 500)
    if status < 500:
        assert str(info.value).endswith(f"refused ({status}): nothing to go to")
