"""A process's declaration and custom business events: names, which processes an event starts,
payloads checked against the declared schema (errors name the field), and the request a run
claims — once, for its own model and process, never one that was not recorded."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from mlc_tasks.business_events import send_custom_event
from mlc_tasks.errors import InvalidInputError, NotFoundError, TransientError
from mlc_tasks.processes import Process, checked_payload, event_name, expecting
from mlc_tasks.registry import Registry
from mlc_tasks.registry.requests import claim_request, record_request
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package


class Window(BaseModel):
    days: int = Field(default=90, ge=7, le=366)


REVIEW = Process(name="quarterly-review", description="a review", events=["quarterly-review"],
                 payload=Window)
AUDIT = Process(name="data-audit", description="an audit", events=["mlc.custom.quarterly-review",
                                                                   "data-check"])


@pytest.mark.parametrize(("given", "short"), [
    ("quarterly-review", "quarterly-review"), ("mlc.custom.data-check", "data-check")])
def test_custom_event_names(given: str, short: str) -> None:
    assert event_name(given) == short


@pytest.mark.parametrize("given", ["mlc.model.ready", "Quarterly", "../x", "", "a" * 64,
                                   "a b", "mlc.custom.", "é"])
def test_other_names_are_refused(given: str) -> None:
    with pytest.raises(InvalidInputError, match="name: .* is not a custom event name"):
        event_name(given)


def test_an_event_starts_every_process_expecting_it() -> None:
    assert expecting([REVIEW, AUDIT], "quarterly-review") == [REVIEW, AUDIT]
    assert expecting([REVIEW, AUDIT], "data-check") == [AUDIT]
    with pytest.raises(NotFoundError, match="no process expects mlc.custom.other .*"
                                            "data-check, quarterly-review"):
        expecting([REVIEW, AUDIT], "other")


@pytest.mark.parametrize(("payload", "checked"), [
    ({}, {"days": 90}), ({"days": 30}, {"days": 30}), ({"days": "30"}, {"days": 30})])
def test_a_payload_is_checked_against_the_declared_schema(payload: dict[str, Any],
                                                          checked: dict[str, Any]) -> None:
    assert checked_payload(REVIEW, payload) == checked


@pytest.mark.parametrize("payload", [{"days": 3}, {"days": "many"}, {"days": 400}])
def test_a_bad_payload_names_the_field(payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError, match="payload for quarterly-review: field "
                                                "'payload.days'"):
        checked_payload(REVIEW, payload)


def test_a_declaration_is_checked() -> None:
    with pytest.raises(ValidationError, match="name"):
        Process(name="Bad Name", description="x")
    with pytest.raises(InvalidInputError, match="not a custom event name"):
        Process(name="ok", description="x", events=["mlc.model.ready"])


@pytest.fixture
def model(package: Any, registry: Registry, store: Any) -> str:
    submit_package(package, registry, store, list(REVIEWED_TYPES), "ana")
    return "credit-risk"


def test_sending_records_who_asked_and_each_payload_then_emits(registry: Registry,
                                                              model: str) -> None:
    emitted: list[dict[str, Any]] = []
    with pytest.raises(InvalidInputError, match="payload for data-audit: field 'payload.days'"):
        send_custom_event(registry, [REVIEW, AUDIT], actor="rita", name="quarterly-review",
                          model=model, payload={"days": 30}, emit=emitted.append)
    assert emitted == []  # the payload must suit every process the event starts
    sent = send_custom_event(registry, [REVIEW, AUDIT], actor="rita", name="quarterly-review",
                             model=model, payload={}, emit=emitted.append)
    assert sent.processes == ["data-audit", "quarterly-review"]
    [event] = emitted
    assert event["event"] == "mlc.custom.quarterly-review"
    assert event["payload"] == {"model": model, "request": sent.request}  # no payload: a pointer
    claimed = claim_request(registry, sent.request, model, "quarterly-review")
    assert (claimed.requested_by, claimed.payload) == ("rita", {"days": 90})
    assert claim_request(registry, sent.request, model, "data-audit").payload == {}


def test_nothing_is_recorded_for_a_refused_event(registry: Registry, model: str) -> None:
    before = len(registry.audit_events())
    for name, payload, model_name, error in [
            ("quarterly-review", {"days": 3}, model, InvalidInputError),
            ("nobody-listens", {}, model, NotFoundError),
            ("quarterly-review", {}, "no-such-model", NotFoundError)]:
        with pytest.raises(error):
            send_custom_event(registry, [REVIEW], actor="rita", name=name, model=model_name,
                              payload=payload, emit=lambda e: None)
    assert len(registry.audit_events()) == before


def test_a_failed_emit_names_the_recorded_request(registry: Registry, model: str) -> None:
    def down(event: dict[str, Any]) -> None:
        raise TransientError("prefect down")

    with pytest.raises(TransientError, match="event request .* is recorded, but no run"):
        send_custom_event(registry, [REVIEW], actor="rita", name="quarterly-review",
                          model=model, payload={}, emit=down)


def test_a_request_is_claimed_once_per_process_for_its_model(registry: Registry,
                                                             model: str) -> None:
    request = record_request(registry, actor="rita", model=model, event="quarterly-review",
                             payloads={"quarterly-review": {"days": 90}})
    for given, model_name, process, why in [
            ("forged", model, "quarterly-review", "no request 'forged'"),
            (request, "house-prices", "quarterly-review", "no request"),
            (request, model, "data-audit", "no request"),
    ]:
        with pytest.raises(InvalidInputError, match=f"event: {why}"):
            claim_request(registry, given, model_name, process)
    claim_request(registry, request, model, "quarterly-review")
    with pytest.raises(InvalidInputError, match="already started quarterly-review"):
        claim_request(registry, request, model, "quarterly-review")
    started = [e for e in registry.audit_events(model) if e.action == "process.started"]
    assert len(started) == 1  # the refused claims wrote nothing
