"""People and services: canonical ids and what each may do (pure records and rules).

A person is named once, in the policy, by a canonical id (an email): names compare after
Unicode NFKC normalisation and casefolding, so `Rita.Risk@Bank.example` and a fullwidth or
ligature spelling of it are one person, and a quorum can never count them twice."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._+-]*(@[a-z0-9.-]+)?$")


def canonical_id(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().casefold()


def check_id(name: str) -> str:
    """The canonical id, or ValueError when it is not an email-like id."""
    found = canonical_id(name)
    if not ID_PATTERN.fullmatch(found) or len(found) > 200:
        raise ValueError(f"'{name}' is not an id such as rita.risk@bank.example or ci-bot")
    return found


class Person(BaseModel):
    """One person in the policy. Credentials never live here (`mlc people enroll`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="canonical id, an email")
    name: str = Field(default="", description="display name")
    groups: list[str] = Field(default_factory=list)
    slack_user_id: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,30}$")

    @field_validator("id")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return check_id(value)


class PrincipalKind(StrEnum):
    PERSON = "person"
    SERVICE = "service"


class Scope(StrEnum):
    READ = "read"  # list models, versions, tasks, alerts, audit
    SUBMIT = "submit"  # upload a package
    DECIDE = "decide"  # approve, reject, review
    OPERATE = "operate"  # alerts, retraining, manual deploys and rollbacks, model updates


SCOPES = {PrincipalKind.PERSON: [Scope.READ, Scope.SUBMIT, Scope.DECIDE, Scope.OPERATE],
          PrincipalKind.SERVICE: [Scope.READ, Scope.SUBMIT]}


class Principal(BaseModel):
    """Who holds credentials (never the credentials themselves)."""

    model_config = ConfigDict(frozen=True, extra="forbid", from_attributes=True)

    id: str
    kind: PrincipalKind
    scopes: list[Scope]
    enrolled_at: datetime
    enrolled_by: str
    revoked_at: datetime | None
    has_authenticator: bool = False

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class Enrolment(BaseModel):
    """What `mlc people enroll` shows once: the token and, for a person, the authenticator."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    principal: Principal
    token: str
    otpauth_uri: str | None


SYSTEM_PREFIX = "system:"  # the data sensor, schedules, notifications: no person asked
LOCAL_PREFIX = "local:"  # the account that owns MLC_HOME on this host (admin commands)


def system_actor(trigger: str) -> str:
    return f"{SYSTEM_PREFIX}{trigger}"


def local_actor(account: str) -> str:
    return f"{LOCAL_PREFIX}{account}"


def is_system(actor: str) -> bool:
    return actor.startswith(SYSTEM_PREFIX)
