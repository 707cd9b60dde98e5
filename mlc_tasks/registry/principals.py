"""Principals in the registry: enrol (a new token and authenticator, shown once), revoke,
authenticate a token, and spend a one-time value (a code's step, a proof's nonce) once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlc_tasks import credentials
from mlc_tasks.errors import NotFoundError
from mlc_tasks.people import SCOPES, Enrolment, Principal, PrincipalKind, Scope, check_id
from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import CredentialUseRow, PrincipalRow


class PrincipalBook:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def enroll(self, principal_id: str, kind: PrincipalKind, actor: str,
               scopes: list[Scope] | None = None) -> Enrolment:
        """A new token (and, for a person, a new authenticator secret); enrolling again
        replaces both, so a lost phone or leaked token is fixed the same way."""
        pid = check_id(principal_id)
        token = credentials.new_token()
        secret = credentials.new_totp_secret() if kind == PrincipalKind.PERSON else None
        granted = [Scope(s) for s in (scopes or SCOPES[kind])]
        with self.registry.transaction() as session:
            row = session.get(PrincipalRow, pid, with_for_update=True)
            if row is None:
                row = PrincipalRow(id=pid)
                session.add(row)
            row.kind, row.scopes, row.token_hash = kind.value, [s.value for s in granted], \
                credentials.token_hash(token)
            row.totp_secret, row.enrolled_at, row.enrolled_by, row.revoked_at = (
                secret, utcnow(), actor, None)
            session.flush()
            self.registry.append_audit(
                session, actor=actor, action="principal.enrolled", entity="principal",
                entity_id=pid, model=None, detail={"kind": kind.value,
                                                   "scopes": [s.value for s in granted]})
            principal = self._record(row)
        uri = credentials.otpauth_uri(secret, pid) if secret else None
        return Enrolment(principal=principal, token=token, otpauth_uri=uri)

    def revoke(self, principal_id: str, actor: str) -> Principal:
        pid = check_id(principal_id)
        with self.registry.transaction() as session:
            row = session.get(PrincipalRow, pid, with_for_update=True)
            if row is None:
                raise NotFoundError(f"nobody is enrolled as {pid} (see `mlc people list`)")
            row.token_hash = row.totp_secret = None
            row.revoked_at = row.revoked_at or utcnow()
            self.registry.append_audit(session, actor=actor, action="principal.revoked",
                                       entity="principal", entity_id=pid, model=None)
            return self._record(row)

    def list(self) -> list[Principal]:
        with self.registry.transaction() as session:
            rows = session.execute(select(PrincipalRow).order_by(PrincipalRow.id)).scalars()
            return [self._record(r) for r in rows]

    def get(self, principal_id: str) -> Principal | None:
        with self.registry.transaction() as session:
            row = session.get(PrincipalRow, principal_id)
            return self._record(row) if row is not None else None

    def authenticate(self, token: str) -> Principal | None:
        """The active principal holding this token, or None (unknown, revoked, malformed)."""
        if not credentials.well_formed_token(token):
            return None
        with self.registry.transaction() as session:
            row = session.execute(select(PrincipalRow).where(
                PrincipalRow.token_hash == credentials.token_hash(token))).scalar_one_or_none()
            return self._record(row) if row is not None and row.revoked_at is None else None

    def authenticator_secret(self, principal_id: str) -> str | None:
        """An active person's authenticator secret (to check a one-time code)."""
        with self.registry.transaction() as session:
            row = session.get(PrincipalRow, principal_id)
            return row.totp_secret if row is not None and row.revoked_at is None else None

    def spend(self, principal_id: str, kind: str, value: str) -> bool:
        """Mark a one-time value used; False when it was used before. A code's step must
        also be later than the person's last accepted one (RFC 6238, 5.2): a code seen being
        typed is worthless once a newer one was used."""
        try:
            with self.registry.transaction() as session:
                if kind == "totp" and self._later_step_used(session, principal_id, int(value)):
                    return False
                session.add(CredentialUseRow(principal_id=principal_id, kind=kind, value=value,
                                             at=utcnow()))
            return True
        except IntegrityError:
            return False

    @staticmethod
    def _later_step_used(session: Session, principal_id: str, step: int) -> bool:
        last = session.execute(
            select(CredentialUseRow.value).where(CredentialUseRow.principal_id == principal_id,
                                                 CredentialUseRow.kind == "totp")
            .order_by(CredentialUseRow.id.desc()).limit(1)).scalar_one_or_none()
        return last is not None and int(last) >= step

    @staticmethod
    def _record(row: PrincipalRow) -> Principal:
        return Principal(id=row.id, kind=PrincipalKind(row.kind),
                         scopes=[Scope(s) for s in row.scopes], enrolled_at=row.enrolled_at,
                         enrolled_by=row.enrolled_by, revoked_at=row.revoked_at,
                         has_authenticator=row.totp_secret is not None)
