"""Requesting a change of a model's governance fields: the one entry point the control-plane API
and `mlc model update` call. What is stricter (a higher risk tier) is in force at once; the rest
opens a change task, and the model-change deployment waits for the policy's model-risk group."""

from __future__ import annotations

import logging
import os

from mlc_tasks import events, governance, locations
from mlc_tasks.errors import TransientError
from mlc_tasks.governance import ChangeOutcome
from mlc_tasks.packages import is_url
from mlc_tasks.registry.governance import GovernanceBook
from mlc_tasks.resources import Resources

log = logging.getLogger(__name__)
DEPLOYMENT = "model-change/model-change"


def request_model_change(ctx: Resources, name: str, changes: dict[str, str],
                         actor: str) -> ChangeOutcome:
    """Check the values (a data location lies under the data roots), apply or record them,
    and start the model-change run for a change task (by its event: only the id travels)."""
    given: dict[str, str | None] = dict(governance.checked_values(changes))
    if given.get("data_location"):
        given["data_location"] = confined_location(ctx, str(given["data_location"]))
    policy = ctx.policy()
    groups = governance.change_groups(policy.governance.groups, ctx.settings.admin_group)
    outcome = GovernanceBook(ctx.registry).request(
        name, given, actor, groups=groups, deadline=policy.governance.deadline)
    if outcome.change_id is None:
        return outcome
    try:
        events.emit(governance.change_requested_event(name, outcome.change_id, actor),
                    ctx.prefect_api_url())
    except TransientError as exc:
        log.warning("change %d of %s is recorded but its run did not start: %s; start it with "
                    "`prefect deployment run %s -p model=%s -p change_id=%d`", outcome.change_id,
                    name, exc, DEPLOYMENT, name, outcome.change_id)
        return outcome
    return outcome.model_copy(update={"started": True})


def confined_location(ctx: Resources, given: str) -> str:
    """As a package's data location is recorded: resolved, under an allowed root, a URL."""
    if not is_url(given):
        given = os.path.abspath(given)
    checked = locations.check(given, locations.LocationPolicy.from_settings(ctx.settings),
                              "data_location")
    return checked.url if is_url(checked.url) else f"file://{checked.url}"
