from datetime import timedelta
from pathlib import Path

import pytest

from mlc_tasks.alert_records import Severity
from mlc_tasks.errors import InvalidInputError, PolicyError
from mlc_tasks.policy import AlertPolicy, load_policy, parse_duration, route_alert

POLICY = """
alerts:
  routes:
    - match: {severity: [critical]}
      channels: [servicenow, slack]
    - match: {team: [lending], model_type: [classification]}
      channels: [slack]
    - match: {severity: [info]}
      channels: [webhook]
"""


@pytest.fixture
def policy(tmp_path: Path) -> AlertPolicy:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return load_policy(path).alerts


@pytest.mark.parametrize(
    ("severity", "model_type", "team", "channels"),
    [
        (Severity.CRITICAL, "regression", "valuation", ["servicenow", "slack"]),
        (Severity.WARNING, "classification", "lending", ["slack"]),
        (Severity.WARNING, "regression", "lending", []),
        (Severity.INFO, "classification", "lending", ["slack", "webhook"]),
        (Severity.CRITICAL, "classification", "lending", ["servicenow", "slack"]),
        (Severity.WARNING, None, None, []),
    ],
)
def test_routes_are_the_union_of_matching_rules(policy, severity, model_type, team,
                                                channels) -> None:
    assert route_alert(policy, severity, model_type, team, ["slack"]) == channels


def test_without_routes_every_configured_channel() -> None:
    assert route_alert(AlertPolicy(), Severity.INFO, None, None, ["slack", "webhook"]) == [
        "slack", "webhook"]


def test_no_file_is_the_default_policy() -> None:
    assert load_policy(None).alerts.routes is None


@pytest.mark.parametrize(
    ("text", "field"),
    [("alerts:\n  routes:\n    - channels: []\n", "alerts.routes.0.channels"),
     ("alerts:\n  routes:\n    - match: {severity: [loud]}\n      channels: [slack]\n",
      "alerts.routes.0.match.severity.0"),
     ("alerts:\n  routs: []\n", "alerts.routs"),
     ("alerts:\n  routes:\n    - match: {model_type: [vision]}\n      channels: [x]\n",
      "alerts.routes.0.match.model_type.0")],
)
def test_bad_policy_names_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=f"field '{field}'"):
        load_policy(path)


APPROVALS = """
people:
  - {id: rita, groups: [risk]}
  - {id: omar, groups: [risk]}
approvals:
  - match: {risk_tier: [low]}
    auto_approve: true
  - match: {model_type: [classification], risk_tier: [high]}
    groups: [risk]
    quorum: 2
    deadline: 36h
  - groups: [risk]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def test_the_first_matching_approval_rule_applies(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, APPROVALS))
    assert policy.approval_rule("regression", "low").auto_approve
    high = policy.approval_rule("classification", "high")
    assert (high.groups, high.quorum, high.deadline) == (["risk"], 2, timedelta(hours=36))
    medium = policy.approval_rule("classification", "medium")
    assert (medium.quorum, medium.deadline) == (1, timedelta(hours=72))
    assert policy.members(["risk"]) == {"rita", "omar"}
    assert policy.deployment.qa == {"env": "qa"} and policy.deployment.prod == {"env": "prod"}


def test_no_matching_rule_is_a_policy_gap() -> None:
    with pytest.raises(PolicyError, match="no approval rule for a high-risk classification"):
        load_policy(None).approval_rule("classification", "high")


@pytest.mark.parametrize(("value", "expected"), [
    ("90s", timedelta(minutes=1.5)), ("15m", timedelta(minutes=15)), ("48h", timedelta(days=2)),
    ("2d", timedelta(hours=48)), ("1.5h", timedelta(minutes=90))])
def test_durations(value: str, expected: timedelta) -> None:
    parsed = parse_duration(value)  # a policy deadline, not a timing
    assert parsed == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [(APPROVALS.replace("quorum: 2", "quorum: 3"),
      "line 10, field 'approvals.1.quorum': 3 approvals needed but the groups have 2 member"),
     (APPROVALS.replace("groups: [risk]\n    quorum", "groups: [risks]\n    quorum"),
      "line 9, field 'approvals.1.groups': ['risks']: nobody under 'people' is in it"),
     (APPROVALS.replace("deadline: 36h", "deadline: soon"),
      "line 11, field 'approvals.1.deadline': 'soon' is not a duration"),
     (APPROVALS.replace("  - groups: [risk]\n", "  - quorum: 1\n"),
      "line 12, field 'approvals.2': name the approver 'groups'"),
     ("reviews:\n  groups: [ops]\n", "line 2, field 'reviews.groups': ['ops']: nobody"),
     ("groups:\n  risk: [rita]\n", "line 1, field 'groups': name each person once under"),
     ("people:\n  - {id: Rita@Bank.example}\n  - {id: rita@bank.example}\n",
      "line 3, field 'people.1.id': 'rita@bank.example' is the same person as people.0"),
     ("people:\n  - {id: 'rita risk'}\n", "line 2, field 'people.0.id': 'rita risk' is not"),
     ("deployment:\n  qa: {}\n", "line 2, field 'deployment.qa'")],
)
def test_bad_approvals_name_the_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_policy(write(tmp_path, text))
    assert message in str(caught.value)


def test_the_example_policy_is_valid() -> None:
    policy = load_policy(Path(__file__).parents[2] / "examples" / "policy.yaml")
    assert policy.approval_rule("classification", "high").groups == ["model-risk"]
    assert policy.approval_rule("regression", "low").auto_approve
    rule = policy.retraining_for("credit-risk", "classification", "high")
    assert (rule.auto_rollback, rule.schedule) == (True, "0 3 * * 1")
    assert rule.comparison.direction("cost_per_applicant") == "lower"
    assert not policy.retraining_for("house-prices", "regression", "low").auto_rollback


RETRAINING = """
retraining:
  - match: {model: [credit-risk]}
    holdout: 0.3
    comparison:
      guarded:
        cost: {tolerance: 0.1}
"""


@pytest.mark.parametrize(
    ("text", "message"),
    [(RETRAINING, "line 7, field 'retraining.0.comparison.guarded.cost"),
     (RETRAINING.replace("holdout: 0.3", "holdout: 0.99").replace("cost", "f1"),
      "line 4, field 'retraining.0.holdout'"),
     ("retraining:\n  - on_new_data: train\n", "line 2, field 'retraining.0.on_new_data'"),
     ("retraining:\n  - schedule: daily\n", "line 2, field 'retraining.0.schedule'"),
     ("sensor: {settle: soon}\n", "line 1, field 'sensor.settle'")],
)
def test_bad_retraining_rules_name_the_line_and_field(tmp_path: Path, text: str,
                                                      message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        load_policy(write(tmp_path, text))
    assert message in str(caught.value)


def test_a_model_no_retraining_rule_matches_gets_the_defaults(tmp_path: Path) -> None:
    rule = load_policy(write(tmp_path, RETRAINING.replace("cost", "f1"))).retraining_for(
        "other", "classification", "low")
    assert (rule.on_new_data, rule.auto_rollback, rule.schedule) == ("retrain", False, None)
    assert rule.grace_period == timedelta(days=7) and rule.comparison.alpha == 0.05


def test_people_are_one_id_whatever_the_spelling(tmp_path: Path) -> None:
    """NFKC and casefolding: a fullwidth or capitalised spelling is the same person, so two
    spellings can neither be listed twice nor count twice."""
    policy = load_policy(write(tmp_path, "people:\n  - {id: Rita.Risk@Bank.example, "
                                         "name: Rita, groups: [risk]}\n"))
    assert policy.members(["risk"]) == {"rita.risk@bank.example"}
    found = policy.person("\uff32ita.risk@bank.example")  # fullwidth R
    assert found is not None and found.name == "Rita"
    doubled = ("people:\n  - {id: rita@bank.example}\n  - {id: \"\uff32ITA@bank.example\"}\n")
    with pytest.raises(InvalidInputError, match="same person as people.0"):
        load_policy(write(tmp_path, doubled))


def test_without_a_policy_nothing_can_be_approved() -> None:
    """Deny by default: the built-in policy has no rule and no people."""
    policy = load_policy(None)
    assert policy.people == [] and policy.members(["mlc-admins"]) == set()
    with pytest.raises(PolicyError, match="no approval rule"):
        policy.approval_rule("regression", "low")
