from datetime import datetime
from typing import Any

import pytest

from mlc_tasks.audit import GENESIS, AuditEvent
from mlc_tasks.audit_replay import (
    DeploymentState,
    ModelState,
    StateTables,
    TaskState,
    VersionState,
    disagreements,
)


def events(*made: tuple[str, str, str, dict[str, Any]]) -> list[AuditEvent]:
    """(action, entity, entity_id, detail) in order; the seals do not matter to the replay."""
    return [AuditEvent(seq=seq, at=datetime(2026, 1, 1), actor="ops", action=action,
                       entity=entity, entity_id=entity_id, model="m", reason="", detail=detail,
                       evidence_sha256=None, prev_hash=GENESIS, hash=GENESIS)
            for seq, (action, entity, entity_id, detail) in enumerate(made, 1)]


LOG = events(
    ("model.created", "model", "m", {}),
    ("version.submitted", "version", "v1", {"number": 1}),
    ("version.tested", "version", "v1", {"number": 1, "from": "submitted", "to": "tested"}),
    ("task.approval.opened", "task", "1", {"number": 1}),
    ("task.decision", "task", "1", {"number": 1}),
    ("task.approval.approved", "task", "1", {"number": 1}),
    ("version.approved", "version", "v1", {"number": 1, "from": "tested", "to": "approved"}),
    ("version.deployed_to", "version", "v1", {"number": 1, "runtime": "qa", "env": "qa"}),
    ("version.deployed", "version", "v1", {"number": 1, "from": "approved", "to": "deployed"}),
    ("version.deployed_to", "version", "v1", {"number": 1, "runtime": "prod", "env": "prod"}),
)


def deployment(id: int, runtime: str, live: bool = True) -> DeploymentState:
    return DeploymentState(id=id, version_id="v1", model="m", number=1, runtime=runtime,
                           env=runtime, deployed_by="ops", live=live)


def tables(**changes: Any) -> StateTables:
    agreed = {"versions": [VersionState(id="v1", model="m", number=1, state="deployed")],
              # two runtimes' deployments need not be numbered in the order they were audited
              "deployments": [deployment(1, "prod"), deployment(2, "qa")],
              "models": [ModelState(name="m", champion_version_id="v1")],
              "tasks": [TaskState(id=1, status="approved")]}
    return StateTables(**{**agreed, **changes})


def test_tables_that_follow_the_events_agree() -> None:
    assert disagreements(LOG, tables()) == []


@pytest.mark.parametrize("changes, named", [
    ({"versions": []}, "version v1 is in the log (event 9) but not in the versions table"),
    ({"versions": [VersionState(id="v2", model="m", number=2, state="submitted"),
                   VersionState(id="v1", model="m", number=1, state="deployed")]},
     "versions row m:2 (id v2) has no version.submitted event: written around the log"),
    ({"deployments": [deployment(2, "qa")]},
     "event 10 deployed version v1 on prod, but the deployments table has no row for it"),
    ({"deployments": [deployment(1, "prod"), deployment(2, "qa", live=False)]},
     "deployments row 2 (m:1 on qa) differs from event 8 (version v1, env qa, by ops, live)"),
    ({"deployments": [deployment(1, "prod"), deployment(2, "qa"), deployment(3, "qa")]},
     "deployments row 3 (m:1 on qa) has no version.deployed_to event: written around the log"),
    ({"models": [ModelState(name="m", champion_version_id=None)]},
     "models row m has champion None, but its events make it v1 (last: event 10)"),
    ({"models": []}, "model m is in the log (event 1) but not in the models table"),
    ({"tasks": [TaskState(id=1, status="open")]},
     "human_tasks row 1 is 'open', but its events leave it 'approved' (last: event 6)"),
    ({"tasks": [TaskState(id=1, status="approved"), TaskState(id=2, status="approved")]},
     "human_tasks row 2 has no opened event: written around the log"),
])
def test_each_kind_of_disagreement_is_named(changes: dict[str, Any], named: str) -> None:
    assert disagreements(LOG, tables(**changes)) == [named]
