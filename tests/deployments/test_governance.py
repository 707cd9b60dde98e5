"""request_model_change, the entry point the control-plane API (and through it `mlc model
update`) calls: what applies at once, what waits for a change task, and bad values refused
before anything is written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployments.governance import request_model_change
from mlc_tasks.errors import ChangePendingError, InvalidInputError, UnsafeLocationError
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import TaskKind

ANA = "ana.lopez@bank.example"


@pytest.fixture
def ctx(local_settings: MlcSettings, package: Path) -> Resources:
    """credit-risk registered as a medium-risk model; no policy file (the admins decide)."""
    spec = yaml.safe_load((package / "model.yaml").read_text())
    (package / "model.yaml").write_text(yaml.safe_dump({**spec, "risk_tier": "medium"}))
    found = Resources(local_settings)
    submit_package(package, found.registry, found.store(), list(REVIEWED_TYPES), "sam")
    return found


def test_raising_applies_at_once_and_lowering_opens_a_change_task(ctx) -> None:
    raised = request_model_change(ctx, "credit-risk", {"risk_tier": "high"}, ANA)
    assert [(c.old, c.new) for c in raised.applied] == [("medium", "high")]
    assert ctx.registry.get_model("credit-risk").risk_tier == "high"
    lowered = request_model_change(ctx, "credit-risk", {"risk_tier": "low",
                                                        "owner": "bob@bank.example"}, ANA)
    assert lowered.applied == [] and lowered.groups == ["mlc-admins"]
    assert [c.field for c in lowered.pending] == ["risk_tier", "owner"]
    assert lowered.started is False  # no Prefect server here: the task waits to be taken
    model = ctx.registry.get_model("credit-risk")
    assert (model.risk_tier, model.owner) == ("high", "ana.lopez@bank.example")
    [task] = TaskBook(ctx.registry).list()
    assert (task.id, task.kind, task.groups) == (lowered.change_id, TaskKind.CHANGE,
                                                 ["mlc-admins"])
    with pytest.raises(ChangePendingError, match=f"change {lowered.change_id} waiting"):
        request_model_change(ctx, "credit-risk", {"team": "valuation"}, ANA)


@pytest.mark.parametrize(("given", "error", "message"), [
    ({"risk_tier": "none"}, InvalidInputError, "risk_tier: 'none' is not one of"),
    ({"owner": " "}, InvalidInputError, "owner: give a value"),
    ({"tags": "x"}, InvalidInputError, "tags: not a governance field"),
    ({"data_location": "/etc"}, UnsafeLocationError, "data_location"),
])
def test_bad_values_are_refused_and_nothing_is_written(ctx, given, error, message) -> None:
    before = ctx.registry.audit_events()
    with pytest.raises(error, match=message):
        request_model_change(ctx, "credit-risk", given, ANA)
    assert ctx.registry.audit_events() == before


def test_a_new_data_location_is_confined_and_recorded_as_a_url(ctx, tmp_path) -> None:
    inside = tmp_path / "days"
    inside.mkdir()
    outcome = request_model_change(ctx, "credit-risk", {"data_location": str(inside)}, ANA)
    [pending] = outcome.pending
    assert pending.new == f"file://{inside}"
