"""Inbound notifications: "new labelled data for model X is ready", "backtest X", or a custom
business event for X (mlc_tasks/processes.py), sent by an outside system and signed with a
shared key. Pure: the HTTP endpoint is
deployments/notify_server.py.

The signature is `sha256=` + hex HMAC-SHA256(key, timestamp + "." + body), sent in
X-MLC-Signature with the timestamp (unix seconds) in X-MLC-Timestamp. The timestamp is part of
the signed message, so it cannot be changed to revive an old request; within the freshness
window the notification id (kept by the registry) refuses a replay.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlc_tasks import locations
from mlc_tasks.errors import InvalidInputError, SignatureError
from mlc_tasks.locations import LocationPolicy, watched_root
from mlc_tasks.packages import NAME_PATTERN, describe_errors

TIMESTAMP_HEADER = "X-MLC-Timestamp"
SIGNATURE_HEADER = "X-MLC-Signature"
SIGNATURE_PREFIX = "sha256="
MAX_AGE_SECONDS = 300.0
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


class Notification(BaseModel):
    """What an outside system asks for. `id` is the sender's: the same id twice is a replay."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:-]+$")
    model: str = Field(pattern=NAME_PATTERN)
    action: Literal["retrain", "backtest", "event"]
    event: str | None = Field(default=None, max_length=80,
                              description="with action 'event': the custom event to send")
    payload: dict[str, Any] = Field(default_factory=dict,
                                    description="with action 'event': its payload")
    data: str | None = Field(default=None, min_length=1, max_length=2000,
                             description="where the new data is: a file under the model's "
                                         "data location (an absolute path or a URL)")
    note: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _event_named(self) -> Notification:
        if (self.action == "event") != (self.event is not None):
            raise ValueError("'event' names the custom event, with action 'event' only")
        return self

    @field_validator("data")
    @classmethod
    def _data_form(cls, value: str | None) -> str | None:
        problem = None if value is None else locations.form_problem(value)
        if problem:
            raise ValueError(f"{locations.redact(str(value))} is refused: {problem}")
        return value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-MLC-Signature value of `body` sent at `timestamp`."""
    message = timestamp.encode() + b"." + body
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float,
           max_age: float = MAX_AGE_SECONDS) -> None:
    """Raise SignatureError unless `signature` signs `timestamp` and `body` with `secret` and
    the timestamp is within `max_age` seconds of `now` (either way: clocks drift). The
    signature is checked before the age, so only a genuine sender learns its clock is off."""
    if not timestamp:
        raise SignatureError(f"missing header {TIMESTAMP_HEADER}")
    if not signature:
        raise SignatureError(f"missing header {SIGNATURE_HEADER}")
    if not _UNIX_SECONDS.fullmatch(timestamp):
        raise SignatureError(f"header {TIMESTAMP_HEADER} must be an integer of unix seconds")
    # Bytes, not str: compare_digest refuses non-ASCII str, and headers can hold any byte.
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode()):
        raise SignatureError(f"header {SIGNATURE_HEADER} does not match the body and timestamp")
    age = now - int(timestamp)
    if age > max_age:
        raise SignatureError(f"timestamp is {age:.0f} s old, more than {max_age:.0f} s")
    if -age > max_age:
        raise SignatureError(f"timestamp is {-age:.0f} s in the future, more than "
                             f"{max_age:.0f} s")


def parse(body: bytes) -> Notification:
    """The notification in a JSON body; InvalidInputError naming each wrong field."""
    try:
        return Notification.model_validate_json(body)
    except ValidationError as exc:
        raise InvalidInputError(f"notification: {describe_errors(exc)}") from exc


def check_data(notification: Notification, data_location: str | None,
               policy: LocationPolicy) -> None:
    """Raise UnsafeLocationError (InvalidInputError) unless the notification's data, if any,
    lies under the model's data location and that under an allowed root. The endpoint checks
    before it accepts; the retraining that reads the file checks again."""
    if notification.data is None:
        return
    if not data_location:
        raise InvalidInputError(f"data: {locations.redact(notification.data)} is refused: "
                                f"model '{notification.model}' has no data_location")
    base = watched_root(locations.check(data_location, policy, "data_location").url)
    locations.check(notification.data, policy, "data", within=base)


def body_sha256(body: bytes) -> str:
    """What the registry keeps of an accepted body."""
    return hashlib.sha256(body).hexdigest()
