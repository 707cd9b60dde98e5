"""Replay the audit log against the state tables: every version's state, every deployment and
which one is live, every model's champion and every human task's status must be what the
events leave them. A row edited (or inserted, or deleted) behind the registry's back, with the
chain untouched, is named here."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlc_tasks.audit import AuditEvent
from mlc_tasks.task_records import TaskStatus

DEPLOYED_TO = "version.deployed_to"
UNDEPLOYED_FROM = "version.undeployed_from"
AROUND = "written around the log"
CLOSED = frozenset(s.value for s in TaskStatus if s != TaskStatus.OPEN)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VersionState(_Row):
    id: str
    model: str
    number: int
    state: str


class DeploymentState(_Row):
    id: int
    version_id: str
    model: str
    number: int
    runtime: str
    env: str | None
    deployed_by: str
    live: bool  # not yet replaced


class ModelState(_Row):
    name: str
    champion_version_id: str | None


class TaskState(_Row):
    id: int
    status: str


class StateTables(_Row):
    """The rows the replay checks, read in the same snapshot as the events."""

    versions: list[VersionState]
    deployments: list[DeploymentState]
    models: list[ModelState]
    tasks: list[TaskState]


@dataclass
class Replayed:
    """What the events leave: each value with the seq of the event that set it."""

    versions: dict[str, tuple[str, int]] = field(default_factory=dict)
    numbers: dict[tuple[str, int], str] = field(default_factory=dict)
    deployed: dict[str, list[AuditEvent]] = field(default_factory=lambda: defaultdict(list))
    models: dict[str, int] = field(default_factory=dict)
    champions: dict[str, tuple[str | None, int]] = field(default_factory=dict)
    tasks: dict[int, tuple[str, int]] = field(default_factory=dict)


def disagreements(events: list[AuditEvent], tables: StateTables) -> list[str]:
    """Every row where the tables and the events differ, in table order (versions,
    deployments, models, tasks); empty when they agree."""
    replayed = replay(events)
    return [*_versions(replayed, tables.versions), *_deployments(replayed, tables.deployments),
            *_models(replayed, tables.models), *_tasks(replayed, tables.tasks)]


def replay(events: list[AuditEvent]) -> Replayed:
    replayed = Replayed()
    for event in events:
        if event.entity == "version":
            _replay_version(replayed, event)
        elif event.entity == "model":
            _replay_model(replayed, event)
        elif event.entity == "task":
            _replay_task(replayed, event)
    return replayed


def _replay_version(replayed: Replayed, event: AuditEvent) -> None:
    detail = event.detail
    if event.action == "version.submitted":
        replayed.versions[event.entity_id] = ("submitted", event.seq)
        replayed.numbers[(str(event.model), detail["number"])] = event.entity_id
    elif "from" in detail and event.action == f"version.{detail.get('to')}":
        replayed.versions[event.entity_id] = (detail["to"], event.seq)
    elif event.action == UNDEPLOYED_FROM:
        replayed.deployed[detail["runtime"]].append(event)
    elif event.action == DEPLOYED_TO:
        replayed.deployed[detail["runtime"]].append(event)
        # what production serves is the champion (older rows only name the env tag)
        if detail.get("production", detail.get("env") == "prod"):
            replayed.champions[str(event.model)] = (event.entity_id, event.seq)


def _replay_model(replayed: Replayed, event: AuditEvent) -> None:
    if event.action == "model.created":
        replayed.models[event.entity_id] = event.seq
    elif event.action == "model.champion":
        number = event.detail["champion"]
        replayed.champions[event.entity_id] = (
            replayed.numbers.get((event.entity_id, number)), event.seq)


def _replay_task(replayed: Replayed, event: AuditEvent) -> None:
    status = event.action.rsplit(".", 1)[-1]
    if event.action.count(".") == 2 and (status == "opened" or status in CLOSED):
        replayed.tasks[int(event.entity_id)] = (
            TaskStatus.OPEN.value if status == "opened" else status, event.seq)


def _versions(replayed: Replayed, rows: list[VersionState]) -> list[str]:
    return _states("version", "versions", "version.submitted", replayed.versions, [
        (r.id, f"versions row {r.model}:{r.number} (id {r.id})", r.state) for r in rows])


def _states(noun: str, table: str, first: str, replayed: dict[Any, tuple[str, int]],
            rows: list[tuple[Any, str, str]]) -> list[str]:
    """Rows as (key, name, state) against the state their events leave each key in; the
    first event names what must have created the row."""
    found, seen = [], set()
    for key, name, state in rows:
        seen.add(key)
        if key not in replayed:
            found.append(f"{name} has no {first} event: {AROUND}")
            continue
        expected, seq = replayed[key]
        if state != expected:
            found.append(f"{name} is '{state}', but its events leave it '{expected}' "
                         f"(last: event {seq})")
    found += [f"{noun} {key} is in the log (event {seq}) but not in the {table} table"
              for key, (_, seq) in replayed.items() if key not in seen]
    return found


def _deployments(replayed: Replayed, rows: list[DeploymentState]) -> list[str]:
    by_runtime: dict[str, list[DeploymentState]] = defaultdict(list)
    for row in rows:
        by_runtime[row.runtime].append(row)
    found = []
    for runtime in sorted(set(by_runtime) | set(replayed.deployed)):
        found += _runtime_deployments(runtime, by_runtime[runtime], replayed.deployed[runtime])
    return found


def _runtime_deployments(runtime: str, rows: list[DeploymentState],
                         events: list[AuditEvent]) -> list[str]:
    """One runtime's deployments in order (its row is locked while one is recorded): each row
    is the deploy event at its place, and it is live unless a later event closed it."""
    deploys = [e for e in events if e.action == DEPLOYED_TO]
    live = _live(events)
    for place, row in enumerate(rows):
        name = f"deployments row {row.id} ({row.model}:{row.number} on {runtime})"
        if place >= len(deploys):
            return [f"{name} has no {DEPLOYED_TO} event: {AROUND}"]
        event = deploys[place]
        expected = (event.entity_id, event.detail.get("env"), event.actor, event.seq in live)
        if (row.version_id, row.env, row.deployed_by, row.live) != expected:
            return [f"{name} differs from event {event.seq} (version {event.entity_id}, env "
                    f"{expected[1]}, by {event.actor}, {'live' if expected[3] else 'replaced'})"]
    if len(deploys) > len(rows):
        missing = deploys[len(rows)]
        return [f"event {missing.seq} deployed version {missing.entity_id} on {runtime}, but "
                "the deployments table has no row for it"]
    return []


def _live(events: list[AuditEvent]) -> set[int]:
    """The seqs of the deploy events still open after a runtime's events: a deploy closes the
    runtime's deployment of the same model (before runtimes served many models, an event
    without `per_model` closed every deployment on the runtime), an undeploy its version's."""
    open_by_model: dict[str | None, AuditEvent] = {}
    for event in events:
        if event.action == DEPLOYED_TO:
            if not event.detail.get("per_model"):
                open_by_model.clear()
            open_by_model[event.model] = event
        elif (found := open_by_model.get(event.model)) and found.entity_id == event.entity_id:
            del open_by_model[event.model]
    return {e.seq for e in open_by_model.values()}


def _models(replayed: Replayed, rows: list[ModelState]) -> list[str]:
    found, seen = [], set()
    for row in rows:
        seen.add(row.name)
        if row.name not in replayed.models:
            found.append(f"models row {row.name} has no model.created event: {AROUND}")
            continue
        champion, seq = replayed.champions.get(row.name, (None, 0))
        if row.champion_version_id != champion:
            found.append(f"models row {row.name} has champion {row.champion_version_id}, but "
                         f"its events make it {champion}"
                         + (f" (last: event {seq})" if seq else ""))
    found += [f"model {name} is in the log (event {seq}) but not in the models table"
              for name, seq in replayed.models.items() if name not in seen]
    return found


def _tasks(replayed: Replayed, rows: list[TaskState]) -> list[str]:
    return _states("task", "human_tasks", "opened", replayed.tasks, [
        (r.id, f"human_tasks row {r.id}", r.status) for r in rows])
