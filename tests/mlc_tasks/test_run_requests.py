"""What a run started from outside may ask for: a retraining's trigger is one of a fixed set,
and deploy-model never deploys to production."""

from __future__ import annotations

import pytest

from mlc_tasks.errors import DeployRefusedError, InvalidInputError
from mlc_tasks.run_requests import Trigger, checked_trigger, refuse_production

PROD = {"env": "prod"}


@pytest.mark.parametrize("value", ["manual", "schedule", "new data", "notification"])
def test_the_triggers_used_today_are_accepted(value: str) -> None:
    assert checked_trigger(value) == Trigger(value)


@pytest.mark.parametrize("value", ["rita.risk@bank.example", "manual (rita)", "Manual", "",
                                   "schedule ", "x" * 5000])
def test_any_other_trigger_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidInputError, match="^trigger: .* is not one of 'manual', "
                                                "'schedule', 'new data', 'notification'$"):
        checked_trigger(value)


@pytest.mark.parametrize("tags,prod", [
    ({"env": "prod"}, PROD),
    ({"env": "prod", "zone": "eu"}, PROD),  # more tags still carry production's
    ({"env": "live", "tier": "gold"}, {"env": "live", "tier": "gold"}),  # the policy's stage
])
def test_production_tags_are_refused(tags: dict[str, str], prod: dict[str, str]) -> None:
    with pytest.raises(DeployRefusedError, match="^tags: .* is production .*only through "
                                                 "on-model-changed, `mlc rollback` or a "
                                                 "verified manual deploy"):
        refuse_production(tags, prod, "tags")


@pytest.mark.parametrize("tags,prod", [
    ({"env": "qa"}, PROD),
    ({}, PROD),
    ({"env": "live"}, {"env": "live", "tier": "gold"}),  # only part of production's tags
    ({"env": "PROD"}, PROD),
])
def test_other_stages_pass(tags: dict[str, str], prod: dict[str, str]) -> None:
    refuse_production(tags, prod, "runtime")
