"""Tokens, one-time codes (RFC 6238's own test vectors) and decision proofs."""

from __future__ import annotations

import base64

import pytest

from mlc_tasks import credentials
from mlc_tasks.credentials import DecisionClaim

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA1


@pytest.mark.parametrize(("at", "eight_digits"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
    (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")])
def test_codes_are_rfc_6238(at: int, eight_digits: str) -> None:
    assert credentials.totp_code(RFC_SECRET, at // 30) == eight_digits[-6:]


def test_a_code_matches_its_step_and_one_step_of_drift_only() -> None:
    secret = credentials.new_totp_secret()
    now = 1_800_000_000.0
    step = credentials.totp_counter(now)
    assert credentials.matching_counter(secret, credentials.totp_code(secret, step), now) == step
    late = credentials.totp_code(secret, step - 1)
    assert credentials.matching_counter(secret, late, now) == step - 1
    stale = credentials.totp_code(secret, step - 3)
    assert credentials.matching_counter(secret, stale, now) is None
    assert credentials.matching_counter(secret, "12345", now) is None
    assert credentials.matching_counter(secret, "abcdef", now) is None


def test_the_enrolment_uri_is_what_authenticator_apps_read() -> None:
    uri = credentials.otpauth_uri("JBSWY3DPEHPK3PXP", "rita.risk@bank.example")
    assert uri.startswith("otpauth://totp/mlc:rita.risk%40bank.example?secret=JBSWY3DPEHPK3PXP")
    assert "issuer=mlc" in uri and "digits=6" in uri and "period=30" in uri


def test_tokens_are_kept_as_hashes_and_checked_for_shape() -> None:
    token = credentials.new_token()
    assert credentials.well_formed_token(token)
    assert credentials.token_hash(token) != token and len(credentials.token_hash(token)) == 64
    for bad in ("", "Bearer x", "mlc_", "mlc_short", token + "!", "xyz_" + token[4:]):
        assert not credentials.well_formed_token(bad)


def claim(**changes: object) -> DecisionClaim:
    fields: dict[str, object] = dict(task_id=1, run_id="r", person="rita@bank.example",
                                     decision="approve", artifact_sha256="a" * 64, channel="api",
                                     evidence_sha256="e" * 64)
    return DecisionClaim.model_validate({**fields, **changes})


def test_a_proof_reads_back_only_with_our_key_and_untouched() -> None:
    made = claim()
    proof = credentials.mint_proof("k" * 32, made)
    assert credentials.read_proof("k" * 32, proof) == made
    assert credentials.read_proof("x" * 32, proof) is None
    body, _, signature = proof.partition(".")
    forged = credentials.mint_proof("k" * 32, claim(person="mallory@bank.example"))
    assert credentials.read_proof("k" * 32, f"{forged.partition('.')[0]}.{signature}") is None
    assert credentials.read_proof("k" * 32, body) is None
    assert credentials.read_proof("k" * 32, "not-a-proof") is None
    assert claim().nonce != claim().nonce


def test_crafted_non_ascii_input_is_refused_not_a_crash() -> None:
    secret = credentials.new_totp_secret()
    assert credentials.matching_counter(secret, "\u0661\u0662\u0663\u0664\u0665\u0666") is None
    assert credentials.matching_counter(secret, "\uff11" * 6) is None  # fullwidth digits
    assert credentials.read_proof("k" * 32, "a.\u00e9") is None
    assert credentials.read_proof("k" * 32, "\u00e9.abc") is None
