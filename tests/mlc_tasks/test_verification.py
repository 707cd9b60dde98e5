"""Who decided, as far as it can be proved: proofs and one-time codes, each spent once."""

from __future__ import annotations

from datetime import datetime

import pytest

from mlc_tasks import credentials
from mlc_tasks.credentials import DecisionClaim
from mlc_tasks.people import Principal, PrincipalKind, Scope
from mlc_tasks.verification import Attempt, Expected, verify

KEY = "k" * 32
NOW = 1_800_000_000.0
SECRET = credentials.new_totp_secret()
EXPECTED = Expected(task_id=7, run_id="run-7", artifact_sha256="a" * 64, evidence_sha256="e" * 64)


class Book:
    """The registry's part, in memory: enrolled people and the values already spent."""

    def __init__(self) -> None:
        self.people = {p: Principal(id=p, kind=PrincipalKind.PERSON, scopes=[Scope.DECIDE],
                                    enrolled_at=datetime(2026, 1, 1), enrolled_by="admin",
                                    revoked_at=None, has_authenticator=True)
                       for p in ("rita@bank.example", "omar@bank.example")}
        self.spent: set[tuple[str, str, str]] = set()

    def get(self, pid: str) -> Principal | None:
        return self.people.get(pid)

    def secret(self, pid: str) -> str | None:
        return SECRET if pid in self.people else None

    def spend(self, pid: str, kind: str, value: str) -> bool:
        if (pid, kind, value) in self.spent:
            return False
        self.spent.add((pid, kind, value))
        return True

    def verify(self, attempt: Attempt):
        return verify(attempt, EXPECTED, KEY, self.get, self.secret, self.spend, now=NOW)


def proof_for(**changes: object) -> str:
    fields: dict[str, object] = dict(task_id=7, run_id="run-7", person="rita@bank.example",
                                     decision="approve", artifact_sha256="a" * 64, channel="api",
                                     evidence_sha256="e" * 64)
    return credentials.mint_proof(KEY, DecisionClaim.model_validate({**fields, **changes}))


def code(offset: int = 0) -> str:
    return credentials.totp_code(SECRET, credentials.totp_counter(NOW) + offset)


def test_a_minted_proof_names_the_person_and_channel_once() -> None:
    book, proof = Book(), proof_for()
    first = book.verify(Attempt(claimed="Rita@Bank.example", decision="approve", proof=proof))
    assert first.verified and (first.person, first.channel) == ("rita@bank.example", "api")
    again = book.verify(Attempt(claimed="rita@bank.example", decision="approve", proof=proof))
    assert again.refusal == "unverified: this proof was used before"


@pytest.mark.parametrize(("changes", "attempt", "named"), [
    ({"task_id": 8}, {}, "task"), ({"run_id": "old-run"}, {}, "run"),
    ({}, {"claimed": "omar@bank.example"}, "person"), ({}, {"decision": "reject"}, "decision"),
    ({"artifact_sha256": "b" * 64}, {}, "artifact sha256"),
    ({"evidence_sha256": "f" * 64}, {}, "evidence")])
def test_a_proof_for_anything_else_is_refused(changes: dict, attempt: dict, named: str) -> None:
    given = Attempt.model_validate({"claimed": "rita@bank.example", "decision": "approve",
                                    "proof": proof_for(**changes), **attempt})
    verdict = Book().verify(given)
    assert verdict.refusal == f"unverified: the proof was made for another {named}"


def test_a_forged_or_revoked_proof_is_refused() -> None:
    book = Book()
    forged = credentials.mint_proof("x" * 32, DecisionClaim(
        task_id=7, run_id="run-7", person="rita@bank.example", decision="approve",
        artifact_sha256="a" * 64, channel="api", evidence_sha256="e" * 64))
    assert "not one the control-plane API minted" in str(book.verify(Attempt(
        claimed="rita@bank.example", decision="approve", proof=forged)).refusal)
    book.people["rita@bank.example"] = book.people["rita@bank.example"].model_copy(
        update={"revoked_at": datetime(2026, 2, 1)})
    assert "not enrolled or was revoked" in str(book.verify(Attempt(
        claimed="rita@bank.example", decision="approve", proof=proof_for())).refusal)


def test_a_one_time_code_counts_once_and_only_for_its_owner() -> None:
    book = Book()
    ok = book.verify(Attempt(claimed="rita@bank.example", decision="approve",
                             one_time_code=code()))
    assert ok.verified and ok.channel == "prefect-form"
    reused = book.verify(Attempt(claimed="rita@bank.example", decision="approve",
                                 one_time_code=code()))
    assert reused.refusal == "unverified: this one-time code was already used"
    wrong = book.verify(Attempt(claimed="omar@bank.example", decision="approve",
                                one_time_code="000000" if code() != "000000" else "111111"))
    assert wrong.refusal == "unverified: wrong or expired one-time code"
    expired = book.verify(Attempt(claimed="omar@bank.example", decision="approve",
                                  one_time_code=code(-4)))
    assert expired.refusal == "unverified: wrong or expired one-time code"
    stranger = book.verify(Attempt(claimed="mallory@bank.example", decision="approve",
                                   one_time_code=code()))
    assert "has no authenticator enrolled" in str(stranger.refusal)


def test_a_name_alone_proves_nothing() -> None:
    verdict = Book().verify(Attempt(claimed="rita@bank.example", decision="approve"))
    assert not verdict.verified and verdict.person == "rita@bank.example"
    assert verdict.refusal is not None and verdict.refusal.startswith("unverified: no one-time")


def test_guessing_codes_locks_the_person_out_of_codes() -> None:
    """Six digits fall to guessing at a resume a second: after 5 wrong codes in the window
    even the right code is refused (and a proof from `mlc approve` still works)."""
    book = Book()
    locked = verify(Attempt(claimed="rita@bank.example", decision="approve",
                            one_time_code=code()), EXPECTED, KEY, book.get, book.secret,
                    book.spend, lambda _pid: 5, NOW)
    assert "5 wrong one-time codes for rita@bank.example" in str(locked.refusal)
    assert ("rita@bank.example", "totp", str(credentials.totp_counter(NOW))) not in book.spent
    proved = verify(Attempt(claimed="rita@bank.example", decision="approve",
                            proof=proof_for()), EXPECTED, KEY, book.get, book.secret,
                    book.spend, lambda _pid: 5, NOW)
    assert proved.verified
