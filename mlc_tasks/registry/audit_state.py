"""The state tables the audit replay checks, read in the caller's session (the snapshot the
events are read in)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlc_tasks.audit_replay import (
    DeploymentState,
    ModelState,
    StateTables,
    TaskState,
    VersionState,
)
from mlc_tasks.registry.tables import DeploymentRow, HumanTaskRow, ModelRow, RuntimeRow, VersionRow


def read_state(session: Session) -> StateTables:
    versions = session.execute(
        select(VersionRow.id, ModelRow.name, VersionRow.number, VersionRow.state)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .order_by(ModelRow.name, VersionRow.number)).all()
    deployments = session.execute(
        select(DeploymentRow, ModelRow.name, VersionRow.number, RuntimeRow.name)
        .join(VersionRow, VersionRow.id == DeploymentRow.version_id)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .join(RuntimeRow, RuntimeRow.id == DeploymentRow.runtime_id)
        .order_by(DeploymentRow.id)).all()
    models = session.execute(
        select(ModelRow.name, ModelRow.champion_version_id).order_by(ModelRow.name)).all()
    tasks = session.execute(
        select(HumanTaskRow.id, HumanTaskRow.status).order_by(HumanTaskRow.id)).all()
    return StateTables(
        versions=[VersionState(id=v, model=m, number=n, state=s) for v, m, n, s in versions],
        deployments=[DeploymentState(
            id=d.id, version_id=d.version_id, model=m, number=n, runtime=r, env=d.env,
            deployed_by=d.deployed_by, live=d.replaced_at is None) for d, m, n, r in deployments],
        models=[ModelState(name=n, champion_version_id=c) for n, c in models],
        tasks=[TaskState(id=i, status=s) for i, s in tasks])
