"""Governance fields (pure rules): what differs, what applies at once, who decides the rest."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlc_tasks import governance
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.governance import FieldChange, Route
from mlc_tasks.policy import Policy

REGISTERED = {"type": "classification", "risk_tier": "high", "owner": "ana@bank.example",
              "team": "lending", "data_location": "file:///data/credit-risk"}


@pytest.mark.parametrize(("field", "old", "new", "expected"), [
    ("risk_tier", "low", "medium", Route.AT_ONCE),
    ("risk_tier", "low", "high", Route.AT_ONCE),
    ("risk_tier", "medium", "high", Route.AT_ONCE),
    ("risk_tier", "high", "medium", Route.APPROVAL),
    ("risk_tier", "high", "low", Route.APPROVAL),
    ("risk_tier", "medium", "low", Route.APPROVAL),
    ("type", "classification", "regression", Route.APPROVAL),
    ("owner", "ana@bank.example", "bob@bank.example", Route.APPROVAL),
    ("team", "lending", "valuation", Route.APPROVAL),
    ("team", None, "valuation", Route.APPROVAL),
    ("data_location", "file:///a", "file:///b", Route.APPROVAL),
])
def test_only_a_higher_risk_tier_applies_at_once(field, old, new, expected) -> None:
    assert governance.route(FieldChange(field=field, old=old, new=new)) == expected


def test_differences_name_each_changed_field_in_order() -> None:
    given = {**REGISTERED, "owner": "bob@bank.example", "risk_tier": "low"}
    found = governance.differences(REGISTERED, given)
    assert [(c.field, c.old, c.new) for c in found] == [
        ("risk_tier", "high", "low"), ("owner", "ana@bank.example", "bob@bank.example")]
    assert governance.differences(REGISTERED, {"risk_tier": "high"}) == []


def test_a_mixed_request_splits_into_at_once_and_waiting() -> None:
    changes = governance.differences({**REGISTERED, "risk_tier": "low"},
                                     {"risk_tier": "high", "owner": "bob@bank.example"})
    at_once, waiting = governance.split(changes)
    assert [c.field for c in at_once] == ["risk_tier"]
    assert [c.field for c in waiting] == ["owner"]


def test_the_package_refusal_names_each_field_and_the_command() -> None:
    message = governance.package_refusal("credit-risk", [
        FieldChange(field="risk_tier", old="high", new="low"),
        FieldChange(field="team", old="lending", new=None)])
    assert "risk_tier: registered 'high', package 'low'" in message
    assert "team: registered 'lending', package (none)" in message
    assert "mlc model update credit-risk --risk-tier low" in message
    assert "nothing was registered" in message


def test_an_approved_change_skips_a_field_raised_since() -> None:
    lowered = FieldChange(field="risk_tier", old="medium", new="low")
    assert governance.still_applies(lowered, {**REGISTERED, "risk_tier": "medium"})
    assert not governance.still_applies(lowered, {**REGISTERED, "risk_tier": "high"})


@pytest.mark.parametrize(("given", "message"), [
    ({"risk_tier": "extreme"}, "risk_tier: 'extreme' is not one of low, medium, high"),
    ({"type": "ranking"}, "type: 'ranking' is not one of classification, regression"),
    ({"owner": "  "}, "owner: give a value"),
    ({"team": "x" * 256}, "team: give a value"),
    ({"description": "new"}, "description: not a governance field"),
])
def test_bad_values_are_refused_naming_the_option(given, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        governance.checked_values(given)


def test_changes_are_decided_by_the_policy_group_else_the_admins() -> None:
    assert governance.change_groups([], "mlc-admins") == ["mlc-admins"]
    assert governance.change_groups(["model-risk"], "mlc-admins") == ["model-risk"]


def test_the_policy_governance_section_names_known_groups() -> None:
    policy = Policy.model_validate({
        "people": [{"id": "rita@bank.example", "groups": ["model-risk"]}],
        "governance": {"groups": ["model-risk"], "deadline": "48h"}})
    assert policy.governance.groups == ["model-risk"]
    assert policy.governance.deadline == timedelta(days=2)
    assert Policy().governance.groups == []  # the admins' group, from the settings
    with pytest.raises(ValueError, match="governance.groups"):
        Policy.model_validate({"governance": {"groups": ["model-risk"]}})


def test_the_outcome_says_what_happened() -> None:
    outcome = governance.ChangeOutcome(
        model="credit-risk", applied=[FieldChange(field="risk_tier", old="low", new="high")],
        pending=[FieldChange(field="owner", old="ana", new="bob")], change_id=7,
        groups=["model-risk"], started=True)
    first, second = governance.outcome_lines(outcome)
    assert "risk_tier 'low' → 'high': applied at once" in first
    assert "change task 7 opened, waiting for model-risk" in second
    assert governance.outcome_lines(governance.ChangeOutcome(model="m")) == [
        "m: nothing to change (those are the registered values)"]
