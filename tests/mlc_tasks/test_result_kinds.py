"""A test result's kind and outcome are enums whose stored strings are the ones the registry
has always held ("fairness:<attribute>" included): nothing to migrate, JSON unchanged; a
kind that is not one of ours is refused naming it."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.registry.records import (
    ResultKind,
    ResultOutcome,
    TestResult,
    fairness_kind,
    parse_kind,
)
from tests.mlc_tasks.result_records import result


@pytest.mark.parametrize(("stored", "kind", "attribute"), [
    ("test", ResultKind.TEST, None), ("holdout", ResultKind.HOLDOUT, None),
    ("backtest", ResultKind.BACKTEST, None), ("drift", ResultKind.DRIFT, None),
    ("performance", ResultKind.PERFORMANCE, None),
    ("fairness:gender", ResultKind.FAIRNESS, "gender"),
    ("fairness:age:band", ResultKind.FAIRNESS, "age:band"),  # the first colon splits
])
def test_every_stored_kind_parses_to_its_enum_and_attribute(stored: str, kind: ResultKind,
                                                             attribute: str | None) -> None:
    assert parse_kind(stored) == (kind, attribute)
    found = result(kind=stored)
    assert (found.kind, found.family, found.attribute) == (stored, kind, attribute)
    assert found.family is kind


@pytest.mark.parametrize("stored", [
    "", "Test", " test", "test ", "tests", "fairness", "fairness:", "test:x", "drift:",
    "fairnessx:gender", ":gender", "backtest:2026-11-24", "fairness:" + "a" * 120,
])
def test_a_kind_that_is_not_ours_is_refused_naming_the_field(stored: str) -> None:
    with pytest.raises(ValueError, match=r"kind: '.*' is not test, holdout, backtest, drift, "
                                         r"performance or fairness:<attribute>"):
        parse_kind(stored)
    with pytest.raises(ValidationError, match="kind"):
        result(kind=stored)


def test_the_longest_fairness_kind_fits_the_column() -> None:
    assert parse_kind("fairness:" + "a" * 119)[1] == "a" * 119


@pytest.mark.parametrize("attribute", ["", "a" * 120])
def test_a_sensitive_attribute_that_cannot_name_a_result_is_a_clear_error(
        attribute: str) -> None:
    with pytest.raises(InvalidInputError, match="sensitive attribute '.*' cannot name a result"):
        fairness_kind(attribute)


def test_fairness_kind_builds_the_stored_string() -> None:
    assert fairness_kind("gender") == "fairness:gender"


@pytest.mark.parametrize(("stored", "outcome"), [
    ("tested", ResultOutcome.TESTED), ("no data", ResultOutcome.NO_DATA),
    ("insufficient data", ResultOutcome.INSUFFICIENT_DATA)])
def test_outcomes_are_the_stored_strings(stored: str, outcome: ResultOutcome) -> None:
    found = result(outcome=stored)  # type: ignore[arg-type]  # as read from the database
    assert found.outcome is outcome and found.outcome == stored


def test_an_unknown_outcome_is_refused() -> None:
    with pytest.raises(ValidationError, match="outcome"):
        result(outcome="skipped")  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["backtest", "fairness:gender"])
def test_json_and_the_stored_row_are_the_strings_they_were(kind: str) -> None:
    found = result(kind=kind, outcome=ResultOutcome.NO_DATA)
    dumped = found.model_dump(mode="json")
    assert (dumped["kind"], dumped["outcome"]) == (kind, "no data")
    assert type(dumped["kind"]) is str and type(dumped["outcome"]) is str
    assert json.loads(found.model_dump_json())["outcome"] == "no data"
    assert TestResult.model_validate_json(found.model_dump_json()) == found


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_result_round_trips_through_the_registry_as_enums(package, registry, store) -> None:
    from mlc_tasks.settings import REVIEWED_TYPES
    from mlc_tasks.submission import submit_package

    version, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "ana")
    for kind in ("backtest", "fairness:gender"):
        registry.add_test_result(result(kind=kind, version_id=version.id,
                                        outcome=ResultOutcome.INSUFFICIENT_DATA), "monitor")
    stored = registry.test_results(version.id)
    assert [(r.kind, r.family, r.outcome) for r in stored] == [
        ("backtest", ResultKind.BACKTEST, ResultOutcome.INSUFFICIENT_DATA),
        ("fairness:gender", ResultKind.FAIRNESS, ResultOutcome.INSUFFICIENT_DATA)]
    detail = [e.detail for e in registry.audit_events(version.model)
              if e.action == "test_result.recorded"]
    assert [(d["kind"], d["outcome"]) for d in detail] == [
        ("backtest", "insufficient data"), ("fairness:gender", "insufficient data")]
    assert registry.verify_audit().chain_ok, "sealed with the strings it is read back with"
