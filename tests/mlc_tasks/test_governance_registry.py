"""Governance fields in the inventory (SQLite, and PostgreSQL when configured): a package may
not change them; a change request applies what is stricter at once and waits for approval for
the rest, which is written when its task is approved and never before."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from mlc_tasks.errors import ChangePendingError, GovernanceFieldError, InvalidPackageError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.registry.governance import GovernanceBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import Decision, TaskKind, TaskStatus

REQUESTER = "ana.lopez@bank.example"
RISK = {"rita.risk@bank.example", "omar.ops@bank.example", REQUESTER}
DAY = timedelta(days=1)


def edit(package: Path, **changes: object) -> None:
    spec = yaml.safe_load((package / "model.yaml").read_text())
    spec.update(changes)
    (package / "model.yaml").write_text(yaml.safe_dump(spec))


def new_artifact(package: Path, examples_dir: Path) -> None:
    """Another artifact: the package would be a new version."""
    (package / "model.skops").write_bytes(
        (examples_dir / "house-prices" / "model.skops").read_bytes())


def submit(package: Path, registry: Registry, store, actor: str = "sam"):
    return submit_package(package, registry, store, list(REVIEWED_TYPES), actor)


@pytest.fixture
def first(package, registry, store) -> VersionRecord:
    version, _ = submit(package, registry, store)
    return version


def request(registry: Registry, actor: str = REQUESTER, **given: str):
    return GovernanceBook(registry).request("credit-risk", given, actor, groups=["model-risk"],
                                            deadline=DAY)


def decide(registry: Registry, change_id: int, actor: str, decision: Decision,
           comment: str = ""):
    return TaskBook(registry).decide(change_id, actor, decision, comment, "cli", RISK)


# ---- packages ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_package_lowering_its_own_risk_tier_is_refused(package, examples_dir, registry,
                                                          store, first) -> None:
    before = registry.audit_events()
    edit(package, risk_tier="low")
    new_artifact(package, examples_dir)
    with pytest.raises(GovernanceFieldError,
                       match="risk_tier: registered 'high', package 'low'.*mlc model update "
                             "credit-risk --risk-tier low"):
        submit(package, registry, store)
    assert registry.get_model("credit-risk").risk_tier == "high"
    assert [v.number for v in registry.list_versions("credit-risk")] == [1]
    assert registry.audit_events() == before


@pytest.mark.parametrize(("changes", "field"), [
    ({"owner": "mallory@bank.example"}, "owner: registered 'ana.lopez@bank.example', "
                                        "package 'mallory@bank.example'"),
    ({"type": "regression", "metrics": ["mae"]}, "type: registered 'classification'"),
    ({"tags": {"team": "valuation", "zone": "eu"}}, "team: registered 'lending', package "
                                                    "'valuation'"),
    ({"tags": {"zone": "eu"}}, "team: registered 'lending', package (none)"),
])
def test_a_package_changing_another_governance_field_is_refused(
        package, examples_dir, registry, store, first, changes, field) -> None:
    edit(package, **changes)
    new_artifact(package, examples_dir)
    with pytest.raises(GovernanceFieldError, match=re.escape(field)):
        submit(package, registry, store)
    assert [v.number for v in registry.list_versions("credit-risk")] == [1]


def test_a_package_moving_the_data_location_is_refused(package, examples_dir, registry, store,
                                                        first, tmp_path) -> None:
    (tmp_path / "elsewhere").mkdir()
    edit(package, data_location=str(tmp_path / "elsewhere"))
    new_artifact(package, examples_dir)
    with pytest.raises(InvalidPackageError, match="data_location: registered 'file://"):
        submit(package, registry, store)
    assert registry.get_model("credit-risk").data_location == first_location(registry)


def first_location(registry: Registry) -> str:
    return next(e.detail["data_location"] for e in registry.audit_events("credit-risk")
                if e.action == "model.created")


def test_description_and_other_tags_still_update(package, examples_dir, registry, store,
                                                 first) -> None:
    edit(package, description="now with income bands", tags={"team": "lending", "zone": "us"})
    new_artifact(package, examples_dir)
    second, created = submit(package, registry, store)
    assert created and second.number == 2
    model = registry.get_model("credit-risk")
    assert (model.description, model.tags) == ("now with income bands",
                                               {"team": "lending", "zone": "us"})
    assert registry.audit_events("credit-risk")[-2].action == "model.updated"


# ---- change requests -------------------------------------------------------------------------


@pytest.mark.postgres
def test_raising_the_risk_tier_applies_at_once(package, examples_dir, registry, store) -> None:
    edit(package, risk_tier="low")
    submit(package, registry, store)
    outcome = request(registry, risk_tier="high")
    assert [(c.field, c.old, c.new) for c in outcome.applied] == [("risk_tier", "low", "high")]
    assert outcome.change_id is None and TaskBook(registry).list() == []
    assert registry.get_model("credit-risk").risk_tier == "high"
    last = registry.audit_events("credit-risk")[-1]
    assert (last.action, last.actor, last.detail["risk_tier"]) == ("model.updated", REQUESTER,
                                                                   "high")
    # the next package must say high too: low is no longer what is registered
    new_artifact(package, examples_dir)
    with pytest.raises(GovernanceFieldError, match="risk_tier: registered 'high'"):
        submit(package, registry, store)


@pytest.mark.postgres
def test_lowering_waits_for_approval_by_someone_else(registry, first) -> None:
    outcome = request(registry, risk_tier="low")
    assert outcome.applied == [] and outcome.change_id is not None
    assert registry.get_model("credit-risk").risk_tier == "high"  # the stricter value stays
    change = GovernanceBook(registry).change(outcome.change_id)
    assert (change.status, change.requested_by, change.version_id) == (
        TaskStatus.OPEN, REQUESTER, first.id)
    [task] = TaskBook(registry).list()
    assert (task.kind, task.groups, task.id) == (TaskKind.CHANGE, ["model-risk"], change.id)
    own = decide(registry, change.id, REQUESTER, Decision.APPROVE)
    assert not own.accepted and "requested the change" in str(own.refusal)
    assert registry.get_model("credit-risk").risk_tier == "high"
    outsider = decide(registry, change.id, "mallory@bank.example", Decision.APPROVE)
    assert not outsider.accepted and "not a member" in str(outsider.refusal)
    assert decide(registry, change.id, "rita.risk@bank.example", Decision.APPROVE).accepted
    assert registry.get_model("credit-risk").risk_tier == "low"
    assert TaskBook(registry).get(change.id).status == TaskStatus.APPROVED
    assert registry.get_version_by_id(first.id).state == State.SUBMITTED  # untouched
    actions = [e.action for e in registry.audit_events("credit-risk")]
    assert actions[-5:] == ["task.decision_refused", "task.decision_refused", "task.decision",
                            "task.change.approved", "model.updated"]
    assert "model.change_requested" in actions
    assert registry.verify_audit().ok


def test_a_rejected_change_leaves_the_model_as_it_was(registry, first) -> None:
    before = registry.get_model("credit-risk")
    outcome = request(registry, owner="bob@bank.example", team="valuation")
    assert [c.field for c in outcome.pending] == ["owner", "team"]
    refused = decide(registry, outcome.change_id, "rita.risk@bank.example", Decision.REJECT)
    assert not refused.accepted and "needs a reason" in str(refused.refusal)
    assert decide(registry, outcome.change_id, "rita.risk@bank.example", Decision.REJECT,
                  "the owner stays accountable").accepted
    assert registry.get_model("credit-risk") == before
    assert registry.get_version_by_id(first.id).state == State.SUBMITTED
    assert GovernanceBook(registry).open_change("credit-risk") is None


def test_an_expired_change_leaves_model_and_version_alone(registry, first) -> None:
    outcome = request(registry, risk_tier="medium")
    assert TaskBook(registry).expire(outcome.change_id, now=utcnow() + 2 * DAY)
    assert TaskBook(registry).get(outcome.change_id).status == TaskStatus.EXPIRED
    assert registry.get_model("credit-risk").risk_tier == "high"
    assert registry.get_version_by_id(first.id).state == State.SUBMITTED


@pytest.mark.postgres
def test_a_second_change_waits_for_the_first(registry, first) -> None:
    outcome = request(registry, owner="bob@bank.example")
    with pytest.raises(ChangePendingError, match=f"change {outcome.change_id} waiting"):
        request(registry, risk_tier="low")
    assert [t.id for t in TaskBook(registry).list()] == [outcome.change_id]
    decide(registry, outcome.change_id, "rita.risk@bank.example", Decision.REJECT, "no")
    assert request(registry, risk_tier="low").change_id is not None


def test_a_raise_while_a_lowering_waits_is_kept_when_it_is_approved(
        package, registry, store) -> None:
    edit(package, risk_tier="medium")
    submit(package, registry, store)
    lowering = request(registry, risk_tier="low", owner="bob@bank.example")
    raised = request(registry, actor="omar.ops@bank.example", risk_tier="high")
    assert raised.applied and raised.change_id is None  # never blocked by a waiting change
    assert decide(registry, lowering.change_id, "rita.risk@bank.example",
                  Decision.APPROVE).accepted
    model = registry.get_model("credit-risk")
    assert (model.risk_tier, model.owner) == ("high", "bob@bank.example")
    assert "kept risk_tier" in registry.audit_events("credit-risk")[-1].reason


def test_the_same_values_change_nothing(registry, first) -> None:
    before = registry.audit_events()
    outcome = request(registry, risk_tier="high", owner="ana.lopez@bank.example")
    assert (outcome.applied, outcome.pending, outcome.change_id) == ([], [], None)
    assert registry.audit_events() == before


def test_a_change_of_an_unknown_model_is_not_found(registry) -> None:
    from mlc_tasks.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no model named 'credit-risk'"):
        request(registry, risk_tier="low")


@pytest.mark.postgres
def test_two_requests_at_once_open_one_change(registry, first) -> None:
    import threading

    results: list[object] = []
    barrier = threading.Barrier(2)

    def ask(owner: str) -> None:
        barrier.wait()
        try:
            results.append(request(registry, owner=owner).change_id)
        except ChangePendingError as exc:
            results.append(exc)

    threads = [threading.Thread(target=ask, args=(f"{who}@bank.example",))
               for who in ("bob", "eve")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(type(r).__name__ for r in results) == ["ChangePendingError", "int"]
    assert len(TaskBook(registry).list()) == 1
