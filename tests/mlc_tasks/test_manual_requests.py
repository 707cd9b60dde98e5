"""A person's manual deploy or rollback request: recorded by the control-plane API as the
verified caller, taken once by the flow, and only for exactly what was asked. Anyone who
reaches Prefect can pass any `request`: a made-up id, one already taken, one of another kind,
or one with other parameters is refused, and the refusal writes nothing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest

from mlc_tasks.audit import AuditEvent
from mlc_tasks.errors import DeployRefusedError
from mlc_tasks.registry import Registry
from mlc_tasks.registry.store import utcnow
from mlc_tasks.run_requests import (
    REQUEST_TTL,
    RequestKind,
    checked_request,
    record_request,
    refuse_unrequested,
    take_request,
)

RITA = "rita.risk@bank.example"
ASKED = {"version": 2, "tags": {"env": "prod"}, "reason": "release"}
DEPLOY, ROLLBACK = RequestKind.DEPLOY, RequestKind.ROLLBACK


@pytest.fixture
def asked(registry: Registry) -> str:
    """Rita's request to deploy credit-risk:2 to production, as the API records it."""
    return record_request(registry, DEPLOY, "credit-risk", RITA, ASKED)


def take(registry: Registry, request: str, model: str = "credit-risk",
         kind: RequestKind = DEPLOY, now: datetime | None = None, **changes: Any) -> str:
    return take_request(registry, kind, request, model, {**ASKED, **changes}, "deploy-model",
                        "run-1", now)


def test_the_request_is_recorded_as_the_caller(registry: Registry, asked: str) -> None:
    [event] = registry.audit_events("credit-risk")
    assert (event.actor, event.action, event.reason) == (RITA, "deploy.requested", "release")
    assert event.detail == {"request": asked, **ASKED}


def test_a_request_is_taken_once_and_acts_as_who_asked(registry: Registry, asked: str) -> None:
    assert take(registry, asked) == RITA
    taken = registry.audit_events("credit-risk")[-1]
    assert (taken.actor, taken.action) == ("deploy-model", "deploy.request_taken")
    assert taken.detail == {"request": asked, "requested_by": RITA, "flow_run": "run-1"}
    with pytest.raises(DeployRefusedError, match=f"^request: deploy request '{asked}' was "
                                                 "already taken by a run"):
        take(registry, asked)


@pytest.mark.parametrize("change,refusal", [
    ({"model": "house-prices"}, "asked to deploy credit-risk, not house-prices"),
    ({"version": 3}, "asked for version 2, not 3"),
    ({"tags": {"env": "qa"}}, "asked for tags {'env': 'prod'}, not {'env': 'qa'}"),
    ({"tags": {"env": "prod", "zone": "eu"}}, "asked for tags"),
    ({"reason": "x" * 500}, "asked for reason 'release', not 'xxx"),
    ({"kind": ROLLBACK}, "no rollback was requested as"),
])
def test_anything_else_than_what_was_asked_is_refused_and_leaves_the_request(
        registry: Registry, asked: str, change: dict[str, Any], refusal: str) -> None:
    before = registry.audit_events()
    with pytest.raises(DeployRefusedError, match=f"^request: .*{refusal}"):
        take(registry, asked, **change)
    assert registry.audit_events() == before  # nothing written: the real run may still take it
    assert take(registry, asked) == RITA


def test_a_made_up_request_is_refused_naming_the_field(registry: Registry, asked: str) -> None:
    with pytest.raises(DeployRefusedError, match="^request: no deploy was requested as "
                                                 "'made-up' .*`mlc deploy`"):
        take(registry, "made-up")
    with pytest.raises(DeployRefusedError, match="^request: no deploy was requested as ''"):
        take(registry, "")


def test_two_runs_given_one_request_at_once_take_it_once(registry: Registry, asked: str) -> None:
    barrier, outcomes = threading.Barrier(4), []

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(take(registry, asked))
        except DeployRefusedError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(outcomes) == 4 and outcomes.count(RITA) == 1
    assert sum("already taken" in o for o in outcomes) == 3
    taken = [e for e in registry.audit_events() if e.action == "deploy.request_taken"]
    assert len(taken) == 1


def test_a_request_left_untaken_expires(registry: Registry, asked: str) -> None:
    """The API runs the flow at once; a request whose run never started (Prefect was down)
    is not left for someone to replay later."""
    [event] = registry.audit_events("credit-risk")
    late = event.at + REQUEST_TTL + timedelta(seconds=1)
    with pytest.raises(DeployRefusedError, match=f"^request: deploy request '{asked}' of "
                                                 ".* UTC has expired"):
        take(registry, asked, now=late)
    assert take(registry, asked, now=event.at + REQUEST_TTL) == RITA


def event(seq: int, actor: str, action: str, **detail: Any) -> AuditEvent:
    return AuditEvent(seq=seq, at=datetime(2026, 1, 1, 12), actor=actor, action=action,
                      entity="model", entity_id="m", model="m", reason="", detail=detail,
                      evidence_sha256=None, prev_hash="0" * 64, hash="0" * 64)


def test_checked_request_reads_only_the_events_given() -> None:
    """The pure rule: a taking counts wherever it is in the list."""
    now, asked = datetime(2026, 1, 1, 12, 5), {"env": "prod", "reason": "bad"}
    events = [event(1, RITA, "rollback.requested", request="r1", **asked)]
    assert checked_request(events, ROLLBACK, "r1", "m", asked, now) == RITA
    taken = [event(0, "rollback-model", "rollback.request_taken", request="r1"), *events]
    with pytest.raises(DeployRefusedError, match="already taken"):
        checked_request(taken, ROLLBACK, "r1", "m", asked, now)
    with pytest.raises(DeployRefusedError, match="no deploy was requested"):
        checked_request(events, DEPLOY, "r1", "m", asked, now)
    assert utcnow() - events[0].at > REQUEST_TTL  # written long ago: expired today
    with pytest.raises(DeployRefusedError, match="expired"):
        checked_request(events, ROLLBACK, "r1", "m", asked, utcnow())


@pytest.mark.parametrize("tags,refused", [
    ({"env": "prod"}, True), ({"env": "prod", "zone": "eu"}, True), ({"env": "qa"}, False)])
def test_without_a_request_production_is_refused(tags: dict[str, str], refused: bool) -> None:
    if not refused:
        refuse_unrequested(tags, {"env": "prod"}, "env", "rollback-model", "mlc rollback")
        return
    with pytest.raises(DeployRefusedError, match="^env: .* is production .*rollback-model goes "
                                                 "there only at a person's request"):
        refuse_unrequested(tags, {"env": "prod"}, "env", "rollback-model", "mlc rollback")
