"""Principals in the registry (both backends): enrol, authenticate, revoke, spend once."""

from __future__ import annotations

import pytest

from mlc_tasks import credentials
from mlc_tasks.errors import NotFoundError
from mlc_tasks.people import PrincipalKind, Scope
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tables import PrincipalRow


def test_enrolment_shows_the_token_once_and_keeps_only_its_hash(registry) -> None:
    book = PrincipalBook(registry)
    made = book.enroll("Rita.Risk@Bank.example", PrincipalKind.PERSON, "local:root")
    assert made.principal.id == "rita.risk@bank.example"
    assert made.otpauth_uri and made.otpauth_uri.startswith("otpauth://totp/mlc:")
    with registry.transaction() as session:
        row = session.get(PrincipalRow, "rita.risk@bank.example")
        assert row is not None and row.token_hash == credentials.token_hash(made.token)
        assert made.token not in str([getattr(row, c) for c in ("token_hash", "totp_secret")])
    found = book.authenticate(made.token)
    assert found is not None and found.id == "rita.risk@bank.example"
    assert set(found.scopes) == {Scope.READ, Scope.SUBMIT, Scope.DECIDE, Scope.OPERATE}
    events = [(e.actor, e.action) for e in registry.audit_events()]
    assert ("local:root", "principal.enrolled") in events


def test_a_service_gets_a_token_to_submit_and_no_authenticator(registry) -> None:
    made = PrincipalBook(registry).enroll("ci-bot", PrincipalKind.SERVICE, "local:root")
    assert made.otpauth_uri is None
    assert made.principal.scopes == [Scope.READ, Scope.SUBMIT]


@pytest.mark.parametrize("token", ["", "mlc_", "Bearer mlc_x", "mlc_" + "a" * 43, "x" * 200])
def test_unknown_and_malformed_tokens_authenticate_nobody(registry, token: str) -> None:
    PrincipalBook(registry).enroll("rita@bank.example", PrincipalKind.PERSON, "local:root")
    assert PrincipalBook(registry).authenticate(token) is None


def test_revoking_or_enrolling_again_ends_the_old_credentials(registry) -> None:
    book = PrincipalBook(registry)
    first = book.enroll("rita@bank.example", PrincipalKind.PERSON, "local:root")
    second = book.enroll("rita@bank.example", PrincipalKind.PERSON, "local:root")
    assert book.authenticate(first.token) is None
    assert book.authenticate(second.token) is not None
    revoked = book.revoke("rita@bank.example", "local:root")
    assert not revoked.active and book.authenticate(second.token) is None
    assert book.authenticator_secret("rita@bank.example") is None
    with pytest.raises(NotFoundError, match="nobody is enrolled as mallory"):
        book.revoke("mallory@bank.example", "local:root")


def test_a_one_time_value_is_spent_once(registry) -> None:
    book = PrincipalBook(registry)
    assert book.spend("rita@bank.example", "totp", "60000000")
    assert not book.spend("rita@bank.example", "totp", "60000000")
    assert book.spend("omar@bank.example", "totp", "60000000")
    assert book.spend("rita@bank.example", "proof", "60000000")


def test_a_code_older_than_the_last_one_used_is_spent(registry) -> None:
    """RFC 6238 5.2: once a newer step was accepted, a code seen being typed earlier (or the
    one before it, still inside the drift window) is worthless."""
    book = PrincipalBook(registry)
    assert book.spend("rita@bank.example", "totp", "60000001")
    assert not book.spend("rita@bank.example", "totp", "60000000")
    assert book.spend("rita@bank.example", "totp", "60000002")
