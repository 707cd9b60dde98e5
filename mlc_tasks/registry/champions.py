"""Champions and their challengers: the comparisons made, and the one pointer per model to
the version production serves (or is being promoted to). The pointer moves only under the
model row's lock and, for a challenger, only from the champion it was compared with — so two
retraining runs that finish together cannot both promote."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mlc_tasks.errors import ChampionChangedError
from mlc_tasks.registry.records import VersionRecord
from mlc_tasks.registry.store import Registry, utcnow
from mlc_tasks.registry.tables import ComparisonRow, ModelRow, VersionRow


class ComparisonRecord(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: str
    model: str
    champion_version_id: str
    challenger_version_id: str
    dataset_uri: str
    dataset_sha256: str
    rows: int
    outcome: str
    reason: str
    detail: dict[str, Any]
    created_at: datetime
    created_by: str


class ChampionBook:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    # ---- comparisons -----------------------------------------------------------------------

    def record_comparison(self, champion: VersionRecord, challenger: VersionRecord,
                          dataset_uri: str, dataset_sha256: str, rows: int, outcome: str,
                          reason: str, detail: dict[str, Any], actor: str) -> ComparisonRecord:
        """Store the decision once, audited on both versions; the same pair compared on the
        same rows again returns the first record (a rerun decides nothing twice)."""
        try:
            return self._record(champion, challenger, dataset_uri, dataset_sha256, rows,
                                outcome, reason, detail, actor)
        except IntegrityError:
            found = self.comparison(challenger.id, champion.id, dataset_sha256)
            assert found is not None
            return found

    def _record(self, champion: VersionRecord, challenger: VersionRecord, dataset_uri: str,
                dataset_sha256: str, rows: int, outcome: str, reason: str,
                detail: dict[str, Any], actor: str) -> ComparisonRecord:
        with self.registry.transaction() as session:
            existing = self._find(session, challenger.id, champion.id, dataset_sha256)
            if existing is not None:
                return ComparisonRecord.model_validate(existing)
            row = ComparisonRow(
                id=uuid.uuid4().hex, model=champion.model, champion_version_id=champion.id,
                challenger_version_id=challenger.id, dataset_uri=dataset_uri,
                dataset_sha256=dataset_sha256, rows=rows, outcome=outcome, reason=reason,
                detail=detail, created_at=utcnow(), created_by=actor)
            session.add(row)
            session.flush()
            for version, role in ((champion, "champion"), (challenger, "challenger")):
                self.registry.append_audit(
                    session, actor=actor, action="version.compared", entity="version",
                    entity_id=version.id, model=version.model, reason=f"{outcome}: {reason}",
                    detail={"number": version.number, "role": role, "comparison": row.id,
                            "champion": champion.number, "challenger": challenger.number,
                            "rows": rows, "outcome": outcome},
                    evidence_sha256=dataset_sha256)
            return ComparisonRecord.model_validate(row)

    def comparison(self, challenger_id: str, champion_id: str | None = None,
                   dataset_sha256: str | None = None) -> ComparisonRecord | None:
        """The newest comparison of a challenger (with that champion, on those rows)."""
        with self.registry.transaction() as session:
            row = self._find(session, challenger_id, champion_id, dataset_sha256)
            return ComparisonRecord.model_validate(row) if row else None

    def comparisons(self, model: str) -> list[ComparisonRecord]:
        with self.registry.transaction() as session:
            rows = session.execute(select(ComparisonRow).where(ComparisonRow.model == model)
                                   .order_by(ComparisonRow.created_at)).scalars()
            return [ComparisonRecord.model_validate(r) for r in rows]

    @staticmethod
    def _find(session: Session, challenger_id: str, champion_id: str | None,
              dataset_sha256: str | None) -> ComparisonRow | None:
        query = select(ComparisonRow).where(ComparisonRow.challenger_version_id == challenger_id)
        if champion_id is not None:
            query = query.where(ComparisonRow.champion_version_id == champion_id)
        if dataset_sha256 is not None:
            query = query.where(ComparisonRow.dataset_sha256 == dataset_sha256)
        return session.execute(query.order_by(ComparisonRow.created_at.desc())
                               .limit(1)).scalar_one_or_none()

    # ---- the champion pointer --------------------------------------------------------------

    def champion(self, model: str) -> VersionRecord | None:
        with self.registry.transaction() as session:
            pointer = session.execute(select(ModelRow.champion_version_id)
                                      .where(ModelRow.name == model)).scalar_one_or_none()
        return self.registry.get_version_by_id(pointer) if pointer else None

    def claim(self, challenger: VersionRecord, compared_with: str, actor: str) -> None:
        """Make the challenger the champion, if the champion is still the version it was
        compared with (compare-and-swap under the model row's lock); a rerun is a no-op."""
        with self.registry.transaction() as session:
            model = self._locked_model(session, challenger.model)
            current = model.champion_version_id
            if current == challenger.id:
                return
            if current != compared_with:
                raise ChampionChangedError(
                    f"{challenger.ref} was compared with {self._ref(session, compared_with)}, "
                    f"but the champion is now {self._ref(session, current)}; retrain against it")
            self._move(session, model, challenger, compared_with, actor,
                       "challenger promoted: it beat the champion")

    def release(self, challenger: VersionRecord, back_to: str, actor: str, reason: str) -> None:
        """Undo a claim whose promotion did not happen (the production deploy was aborted)."""
        back = self.registry.get_version_by_id(back_to)  # read before the write lock is held
        with self.registry.transaction() as session:
            model = self._locked_model(session, challenger.model)
            if model.champion_version_id == challenger.id:
                self._move(session, model, back, challenger.id, actor, reason)

    def _move(self, session: Session, model: ModelRow, to: VersionRecord, previous: str | None,
              actor: str, reason: str) -> None:
        model.champion_version_id = to.id
        self.registry.append_audit(
            session, actor=actor, action="model.champion", entity="model", entity_id=model.name,
            model=model.name, reason=reason,
            detail={"champion": to.number, "previous": self._number(session, previous)})

    @staticmethod
    def _locked_model(session: Session, name: str) -> ModelRow:
        return session.execute(select(ModelRow).where(ModelRow.name == name)
                               .with_for_update()).scalar_one()

    @staticmethod
    def _number(session: Session, version_id: str | None) -> int | None:
        if version_id is None:
            return None
        return session.execute(select(VersionRow.number)
                               .where(VersionRow.id == version_id)).scalar_one_or_none()

    def _ref(self, session: Session, version_id: str | None) -> str:
        number = self._number(session, version_id)
        return "none" if number is None else f"v{number}"
