"""Who made a decision, as far as it can be proved (pure rules; the registry is passed in as
callables). An attempt counts only with one of:

- a proof minted by the control-plane API (or the Slack door) after it authenticated the
  person, for exactly this task, run, decision, version (artifact sha256) and evidence;
- in the Prefect UI form, the person's id and the current code of their authenticator.

Every one-time value (a proof's nonce, a code's step) is spent once. Anything else is
unverified: the flow records what was claimed and keeps waiting."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict

from mlc_tasks import credentials
from mlc_tasks.people import Principal, PrincipalKind, canonical_id

FORM_CHANNEL = "prefect-form"


class Attempt(BaseModel):
    """What a resume of a paused run carried."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claimed: str
    decision: str
    one_time_code: str | None = None
    proof: str | None = None


class Expected(BaseModel):
    """What the waiting flow is deciding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: int
    run_id: str
    artifact_sha256: str
    evidence_sha256: str


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    person: str  # the verified id, or what was claimed when unverified
    channel: str
    refusal: str | None = None

    @property
    def verified(self) -> bool:
        return self.refusal is None


Lookup = Callable[[str], Principal | None]
Secret = Callable[[str], str | None]
Spend = Callable[[str, str, str], bool]
Failures = Callable[[str], int]
MAX_WRONG_CODES = 5  # per person within the window the failures callable counts (15 min)
WRONG_CODE = "unverified: wrong or expired one-time code"
REUSED_CODE = "unverified: this one-time code was already used"


def verify(attempt: Attempt, expected: Expected, key: str, principal: Lookup,
           authenticator: Secret, spend: Spend, failures: Failures = lambda _: 0,
           now: float | None = None) -> Verdict:
    claimed = canonical_id(attempt.claimed)
    if attempt.proof:
        return _by_proof(attempt, expected, key, principal, spend)
    if attempt.one_time_code:
        if failures(claimed) >= MAX_WRONG_CODES:  # six digits fall to guessing otherwise
            return Verdict(person=claimed, channel=FORM_CHANNEL, refusal=(
                f"unverified: {MAX_WRONG_CODES} wrong one-time codes for {claimed} in the "
                "last 15 minutes; codes are refused for now (decide with `mlc approve`)"))
        return _by_code(attempt, claimed, principal, authenticator, spend, now)
    return Verdict(person=claimed, channel=FORM_CHANNEL, refusal=(
        "unverified: no one-time code and no proof; enter the code from your authenticator "
        "app, or decide with `mlc approve` (your token)"))


def _by_proof(attempt: Attempt, expected: Expected, key: str, principal: Lookup,
              spend: Spend) -> Verdict:
    claimed = canonical_id(attempt.claimed)
    claim = credentials.read_proof(key, attempt.proof or "")
    if claim is None:
        return Verdict(person=claimed, channel="proof", refusal="unverified: the proof is not "
                       "one the control-plane API minted")
    mismatch = [name for name, ours, theirs in (
        ("task", expected.task_id, claim.task_id), ("run", expected.run_id, claim.run_id),
        ("person", claimed, claim.person), ("decision", attempt.decision, claim.decision),
        ("artifact sha256", expected.artifact_sha256, claim.artifact_sha256),
        ("evidence", expected.evidence_sha256, claim.evidence_sha256)) if ours != theirs]
    if mismatch:
        return Verdict(person=claimed, channel=claim.channel, refusal=(
            f"unverified: the proof was made for another {', '.join(mismatch)}"))
    found = principal(claim.person)
    if found is None or not found.active:
        return Verdict(person=claimed, channel=claim.channel,
                       refusal=f"unverified: {claim.person} is not enrolled or was revoked")
    if not spend(claim.person, "proof", claim.nonce):
        return Verdict(person=claimed, channel=claim.channel,
                       refusal="unverified: this proof was used before")
    return Verdict(person=claim.person, channel=claim.channel)


def _by_code(attempt: Attempt, claimed: str, principal: Lookup, authenticator: Secret,
             spend: Spend, now: float | None) -> Verdict:
    found = principal(claimed)
    secret = authenticator(claimed) if found is not None else None
    if found is None or not found.active or found.kind != PrincipalKind.PERSON or not secret:
        return Verdict(person=claimed, channel=FORM_CHANNEL, refusal=(
            f"unverified: {claimed} has no authenticator enrolled (`mlc people enroll`)"))
    counter = credentials.matching_counter(secret, attempt.one_time_code or "", now)
    if counter is None:
        return Verdict(person=claimed, channel=FORM_CHANNEL, refusal=WRONG_CODE)
    if not spend(claimed, "totp", str(counter)):
        return Verdict(person=claimed, channel=FORM_CHANNEL, refusal=REUSED_CODE)
    return Verdict(person=claimed, channel=FORM_CHANNEL)
