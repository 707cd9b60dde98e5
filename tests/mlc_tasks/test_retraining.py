"""The retraining blocks: the champion's recipe, the held-out split, the challenger's identity
and lineage, reading new data, the sensor's view of a location, and the rules of a retraining
run (who asked, each version's held-out record, what becomes of a challenger that loses)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlc_tasks import retraining
from mlc_tasks.audit import AuditEvent
from mlc_tasks.data_sensor import day_of, list_files, watched_root
from mlc_tasks.errors import InvalidInputError, InvalidPackageError, UnsafeLocationError
from mlc_tasks.lifecycle import State
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.registry import VersionRecord
from mlc_tasks.registry.champions import ComparisonRecord
from mlc_tasks.registry.records import ResultKind
from mlc_tasks.run_requests import Trigger
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from tests.mlc_tasks.result_records import T0, result, version

ARTIFACT = {"artifact_uri": "file:///a", "artifact_sha256": "a" * 64, "format": "skops",
            "artifact_types": [], "trusted_types": []}


@pytest.fixture
def champion(package: Path, registry, store) -> VersionRecord:
    version, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "ana")
    return version


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_recipe_of_a_ready_artifact_is_its_lineage(champion: VersionRecord) -> None:
    spec = retraining.recipe(champion)
    assert (spec.estimator, spec.seed) == ("gradient_boosting", 7)
    assert spec.params == {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_recipe_is_an_error_naming_the_fields(package: Path, registry, store) -> None:
    spec = yaml.safe_load((package / "model.yaml").read_text())
    spec["lineage"] = {}
    (package / "model.yaml").write_text(yaml.safe_dump(spec))
    version, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "ana")
    with pytest.raises(InvalidPackageError, match="neither 'training' nor 'lineage.estimator'"):
        retraining.recipe(version)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_challenger_is_identified_by_champion_recipe_and_data(
        champion: VersionRecord) -> None:
    spec = retraining.recipe(champion)
    rows = pd.DataFrame({"default": [0, 1]})
    first = retraining.challenger(champion, spec, ARTIFACT, retraining.NewData(rows, "u", "1"))
    again = retraining.challenger(champion, spec, ARTIFACT, retraining.NewData(rows, "u", "1"))
    other = retraining.challenger(champion, spec, ARTIFACT, retraining.NewData(rows, "u", "2"))
    assert first.source_sha256 == again.source_sha256 != other.source_sha256
    assert (first.parent_version_id, first.training_data_sha256) == (champion.id, "1")
    assert (first.seed, first.parameters, first.training["data"]) == (7, spec.params, "u")


def test_the_held_out_rows_are_the_same_on_a_rerun_and_all_labelled() -> None:
    rows = pd.DataFrame({"x": range(100), "default": [i % 2 if i % 10 else None
                                                      for i in range(100)]})
    train, held = retraining.split_holdout(rows, "default", 0.3, seed=7)
    again = retraining.split_holdout(rows, "default", 0.3, seed=7)[1]
    assert (len(train), len(held)) == (63, 27)  # the 10 unlabelled rows are left out
    assert held.equals(again) and not set(train["x"]) & set(held["x"])
    with pytest.raises(InvalidInputError, match="label column 'outcome' is missing"):
        retraining.split_holdout(rows, "outcome", 0.3, seed=7)


@pytest.fixture
def roots(tmp_path: Path) -> LocationPolicy:
    """The lake is the one data root; MLC_HOME sits beside it."""
    (tmp_path / "lake").mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "admin-token").write_text("t0ken\n")
    return LocationPolicy(roots=[str(tmp_path / "lake")], protected=[str(tmp_path / "home")])


def test_new_data_errors_name_the_file_or_the_location(tmp_path: Path, roots) -> None:
    lake = tmp_path / "lake"
    with pytest.raises(InvalidInputError, match="data: .*missing.csv cannot be read"):
        retraining.read_new_data(str(lake / "missing.csv"), str(lake), date(2026, 1, 2), 3,
                                 roots)
    with pytest.raises(InvalidInputError, match="no labelled data at .* in the 3 days"):
        retraining.read_new_data(None, str(lake), date(2026, 1, 2), 3, roots)
    day = lake / "2026-01-01"
    day.mkdir()
    (day / "a.csv").write_text("x,default\n1,0\n2,1\n")
    found = retraining.read_new_data(None, str(lake), date(2026, 1, 2), 3, roots)
    assert len(found.rows) == 2 and "3 days to 2026-01-02" in found.uri
    named = retraining.read_new_data(str(day / "a.csv"), str(lake), date(2026, 1, 2), 3, roots)
    assert (len(named.rows), named.uri) == (2, str(day / "a.csv"))


@pytest.mark.parametrize(("data", "location", "message"), [
    ("{home}/admin-token", "{lake}", "outside the allowed locations"),
    ("{lake}/other/x.csv", "{lake}/credit", "data: {lake}/other/x.csv is refused: not under "
                                            "{lake}/credit"),
    ("file:///proc/self/environ", "{lake}", "outside the allowed locations"),
    ("memory://x.csv", "{lake}", "the memory:// protocol is not allowed"),
    ("https://user:hunter2@127.0.0.1/x.csv", "{lake}", "credentials in the URL"),
    ("{lake}/credit/../../home/admin-token", "{lake}/credit", "outside the allowed"),
    ("{lake}/x.csv", None, "the model has no data_location for it to lie under"),
    ("{lake}/x.csv", "webhdfs://127.0.0.1:9/x", "data_location: webhdfs://127.0.0.1:9/x is "
                                               "refused: the webhdfs:// protocol"),
    (None, "/", "data_location: / is refused: outside the allowed locations"),
])
def test_a_retraining_reads_only_under_the_models_data_location(
        tmp_path: Path, roots, data, location, message) -> None:
    def place(text: str | None) -> str | None:
        return None if text is None else text.format(lake=tmp_path / "lake",
                                                     home=tmp_path / "home")

    with pytest.raises(InvalidInputError, match=re.escape(place(message))) as info:
        retraining.read_new_data(place(data), place(location), date(2026, 1, 2), 3, roots)
    assert "hunter2" not in str(info.value)


def test_the_sensor_lists_csv_files_under_the_location(tmp_path: Path) -> None:
    policy = LocationPolicy(roots=[str(tmp_path)])
    (tmp_path / "2026-01-01").mkdir()
    (tmp_path / "2026-01-01" / "a.csv").write_text("x\n1\n")
    (tmp_path / "notes.txt").write_text("not data")
    files = list_files(tmp_path.as_uri(), policy)
    assert list(files) == [(tmp_path / "2026-01-01" / "a.csv").as_uri()]
    assert next(iter(files.values())).startswith("4:")  # size, then modification time
    assert list_files((tmp_path / "absent").as_uri(), policy) == {}
    assert watched_root("s3://lake/credit/date={date}/*.csv") == "s3://lake/credit"
    assert day_of("file:///d/2026-01-01/a.csv") == date(2026, 1, 1)
    assert day_of("s3://lake/credit/date=2026-01-01/a.csv") == date(2026, 1, 1)
    assert day_of("file:///d/fresh.csv") is None


@pytest.mark.parametrize("location", ["webhdfs://127.0.0.1:9/x", "/", "{tmp}/lake/../home",
                                      "memory://x", "file:///proc/self"])
def test_the_sensor_never_lists_a_location_outside_the_roots(tmp_path, roots, location) -> None:
    with pytest.raises(UnsafeLocationError, match="data_location: .* is refused"):
        list_files(location.format(tmp=tmp_path), roots)


def test_links_out_of_a_location_are_never_read(tmp_path, roots) -> None:
    lake, home = tmp_path / "lake", tmp_path / "home"
    (home / "registry.csv").write_text("secret\n1\n")
    (lake / "token.csv").symlink_to(home / "admin-token")
    (lake / "2026-01-01").symlink_to(home, target_is_directory=True)  # a day that is a link
    assert list_files(str(lake), roots) == {}  # links are not files or folders to walk
    with pytest.raises(UnsafeLocationError, match="registry.csv is refused: outside the "):
        retraining.read_new_data(None, str(lake), date(2026, 1, 1), 1, roots)


# ---- the rules of a retraining run ----------------------------------------------------------

def event(action: str, actor: str, request: str, seq: int = 1) -> AuditEvent:
    return AuditEvent(seq=seq, at=T0, actor=actor, action=action, entity="model",
                      entity_id="credit-risk", model="credit-risk", reason="", evidence_sha256=None,
                      detail={"request": request}, prev_hash="0" * 64, hash="1" * 64)


ASKED = event("model.retrain_requested", "ana", "r1")


@pytest.mark.parametrize(("trail", "trigger", "asked", "requester"), [
    ([], Trigger.MANUAL, None, "system:manual"),
    ([], Trigger.NEW_DATA, None, "system:new-data"),
    ([ASKED], Trigger.SCHEDULE, None, "system:schedule"),  # no request: the system asked
    ([ASKED], Trigger.MANUAL, "r1", "ana"),
    ([ASKED, event("model.retrain_requested", "ben", "r1", 2)], Trigger.MANUAL, "r1", "ben"),
    ([ASKED, event("model.retrain_requested", "ben", "r2", 2)], Trigger.MANUAL, "r1", "ana"),
])
def test_whoever_asked_comes_from_the_trail_never_from_a_parameter(
        trail, trigger: Trigger, asked: str | None, requester: str) -> None:
    assert retraining.requester(trail, "credit-risk", trigger, asked) == requester


@pytest.mark.parametrize(("trail", "asked", "message"), [
    ([], "r1", "no retraining of credit-risk was requested as 'r1'"),
    ([event("process.requested", "ana", "r1")], "r1", "was requested as 'r1'"),  # not a retrain
    ([event("model.retrain_requested", "ana", "r2")], "r1", "was requested as 'r1'"),
    ([ASKED, event("model.retraining", "retrain", "r1", 2)], "r1", "'r1' was already carried"),
    ([], "x" * 5000, "'" + "x" * 64 + "'$"),  # an event may carry anything: cut to size
])
def test_a_request_not_on_the_trail_or_already_carried_out_is_refused(
        trail, asked: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^request: .*{message}"):
        retraining.requester(trail, "credit-risk", Trigger.MANUAL, asked)


def test_without_a_champion_there_is_nothing_to_challenge() -> None:
    with pytest.raises(InvalidInputError, match="model: 'credit-risk' has no champion in "
                                                "production to challenge"):
        retraining.champion_to_challenge("credit-risk", None)
    assert retraining.champion_to_challenge("credit-risk", version()) == version()


def test_a_refusals_detail_is_cut_to_size() -> None:
    detail = retraining.refusal_detail("t" * 500, "d" * 5000, "r" * 500, "run-1")
    assert {k: len(v) for k, v in detail.items()} == {"trigger": 100, "data": 1000,
                                                      "request": 64, "flow_run": 5}
    assert retraining.refusal_detail("manual", None, None, "run-1") == {
        "trigger": "manual", "data": "", "request": "", "flow_run": "run-1"}


def test_the_champion_gets_a_holdout_result_and_the_challenger_its_test() -> None:
    champion, challenger = version(1), version(2)
    assert retraining.holdout_kinds(champion, challenger) == [
        (champion, ResultKind.HOLDOUT), (challenger, ResultKind.TEST)]


@pytest.mark.parametrize(("kind", "recorded", "needed", "window"), [
    (ResultKind.TEST, [], True, None),
    (ResultKind.TEST, [result("backtest"), result("holdout")], True, None),
    (ResultKind.TEST, [result("test")], False, None),        # retrained on the same data
    (ResultKind.HOLDOUT, [result("holdout"), result("test")], True, "abcdef0123456789"),
])
def test_a_version_has_one_test_and_a_holdout_result_per_challenge(
        kind: ResultKind, recorded, needed: bool, window: str | None) -> None:
    assert retraining.needs_holdout_test(kind, recorded) is needed
    assert retraining.holdout_window(kind, "abcdef0123456789" + "f" * 48) == window


@pytest.mark.parametrize(("outcome", "wins"), [
    ("promote", True), ("insufficient evidence", False), ("not better", False),
    ("guard breached", False), ("Promote", False)])
def test_only_a_promoted_challenger_wins(outcome: str, wins: bool) -> None:
    decided = ComparisonRecord(id="c", model="credit-risk", champion_version_id="v1",
                               challenger_version_id="v2", dataset_uri="held", dataset_sha256="h",
                               rows=300, outcome=outcome, reason="because", detail={},
                               created_at=T0, created_by="retrain")
    assert retraining.wins(decided) is wins
    assert retraining.kept_reason(version(1), decided) == (
        f"champion credit-risk:1 kept: {outcome}: because")


@pytest.mark.parametrize(("state", "rejected"), [
    (State.SUBMITTED, True), (State.TRAINED, True), (State.TESTED, True), (State.APPROVED, True),
    (State.DEPLOYED, False), (State.REJECTED, False), (State.RETIRED, False),
    (State.FAILED, False)])
def test_a_losing_challenger_is_rejected_unless_it_ended_or_serves(state: State,
                                                                   rejected: bool) -> None:
    assert retraining.may_reject(state) is rejected
