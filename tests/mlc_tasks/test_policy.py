from pathlib import Path

import pytest

from mlc_tasks.alert_records import Severity
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.policy import AlertPolicy, load_policy, route_alert

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
