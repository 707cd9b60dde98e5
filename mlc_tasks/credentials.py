"""A person's credentials and the proofs a decision carries (pure functions, no storage).

- A personal API token is shown once; only its sha256 is kept.
- An authenticator secret gives time-based one-time codes (RFC 6238: HMAC-SHA1, 6 digits,
  30 s steps); a code is identified by its step counter so that each is accepted once.
- A decision proof is minted by the control-plane API after it authenticated the person: an
  HMAC over what was decided (task, run, person, decision, artifact sha256, channel, evidence
  sha256) and a nonce, with a key only the API and the flows hold.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import struct
import time
from urllib.parse import quote, urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError

TOKEN_PREFIX = "mlc_"
TOTP_STEP = 30
TOTP_DIGITS = 6
TOTP_DRIFT_STEPS = 1  # a code from the step before or after is still accepted (clock skew)
ISSUER = "mlc"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed_token(token: str) -> bool:
    body = token.removeprefix(TOKEN_PREFIX)
    return (token.startswith(TOKEN_PREFIX) and 40 <= len(body) <= 64
            and all(c.isalnum() or c in "-_" for c in body))


def new_totp_secret() -> str:
    """160 random bits, base32 without padding (what authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def totp_code(secret: str, counter: int) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** TOTP_DIGITS).zfill(TOTP_DIGITS)


def totp_counter(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // TOTP_STEP)


def matching_counter(secret: str, code: str, at: float | None = None) -> int | None:
    """The step counter whose code this is (within the allowed drift), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not (code.isascii() and code.isdigit()):
        return None  # isdigit() alone takes fullwidth and Arabic-Indic digits
    now = totp_counter(at)
    for counter in range(now - TOTP_DRIFT_STEPS, now + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp_code(secret, counter).encode(), code.encode()):
            return counter
    return None


def otpauth_uri(secret: str, person: str) -> str:
    """What an authenticator app scans."""
    query = urlencode({"secret": secret, "issuer": ISSUER, "algorithm": "SHA1",
                       "digits": TOTP_DIGITS, "period": TOTP_STEP})
    return f"otpauth://totp/{quote(ISSUER)}:{quote(person)}?{query}"


class DecisionClaim(BaseModel):
    """What a proof vouches for. The flow compares each field with what it is deciding."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task_id: int
    run_id: str
    person: str
    decision: str
    artifact_sha256: str
    channel: str = Field(pattern=r"^(api|slack|command-center)$")
    evidence_sha256: str = ""
    nonce: str = Field(default_factory=lambda: secrets.token_hex(16), min_length=16)


def mint_proof(key: str, claim: DecisionClaim) -> str:
    body = base64.urlsafe_b64encode(claim.model_dump_json().encode()).decode().rstrip("=")
    return f"{body}.{_signature(key, body)}"


def read_proof(key: str, proof: str) -> DecisionClaim | None:
    """The claim a proof carries if its signature is ours, else None."""
    body, _, signature = proof.strip().partition(".")
    if not (body and signature and proof.isascii()) or not hmac.compare_digest(
            _signature(key, body).encode(), signature.encode()):
        return None
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return DecisionClaim.model_validate(json.loads(raw))
    except (ValueError, ValidationError):
        return None


def _signature(key: str, body: str) -> str:
    return hmac.new(key.encode(), f"mlc-decision-v1.{body}".encode(), hashlib.sha256).hexdigest()
