"""The evidence packet of one version: the document a model-risk officer files (SR 11-7, the EU
AI Act) — the model card, the tests against their thresholds, the comparison with the champion,
fairness per group, drift at approval time, the security scan, every decision with the
verified person and the evidence they saw, and the audit chain's status.

`build_packet` is pure (registry records in, a record out); `render_html` makes it one
self-contained HTML document (every value escaped, no script); `publish_packet` stores it in
the artifact store as a report, so `/reports/<sha256>.html` serves the very bytes whose sha256
an approval task and its decision's audit row carry. A section with nothing recorded says so.

The packet is stamped with the audit log's last event rather than the clock: the same registry
gives the same bytes, so publishing again stores nothing new."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict

from mlc_tasks import reports
from mlc_tasks.audit import AuditEvent, AuditReport
from mlc_tasks.comparison import Comparison
from mlc_tasks.registry import DeploymentRecord, ModelRecord, TestResult, VersionRecord
from mlc_tasks.registry.champions import ComparisonRecord
from mlc_tasks.registry.records import ResultKind, ThresholdCheck
from mlc_tasks.resources import Resources

TEMPLATES = Path(__file__).parent / "templates"
DECISION_EVENTS = ("task.decision", "task.decision_refused")
UNVERIFIED = "task.decision_unverified"
GROUP_RATES = ("selection_rate", "rows", "true_positive_rate", "false_positive_rate")


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DatasetHash(Record):
    """A dataset a result was measured on (or the version was trained on)."""

    used_for: str
    uri: str
    sha256: str


class ModelCard(Record):
    name: str
    version: int
    state: str
    description: str  # the package's description: what the model is for (intended use)
    owner: str
    team: str | None
    type: str
    risk_tier: str
    tags: dict[str, str]
    parent: str | None  # model:number of the version it was retrained from
    training_data_sha256: str | None
    training: dict[str, Any] | None
    parameters: dict[str, Any]
    seed: int | None
    artifact_sha256: str | None
    artifact_format: str | None
    source_sha256: str
    inputs: list[str]
    label: str
    sensitive_attributes: list[str]
    datasets: list[DatasetHash]
    submitted_by: str
    submitted_at: datetime


class ResultEntry(Record):
    kind: str
    at: datetime
    dataset_uri: str
    dataset_sha256: str
    outcome: str
    passed: bool
    metrics: dict[str, float]
    thresholds: list[ThresholdCheck]
    window: str | None


class ComparisonEntry(Record):
    champion: str
    at: datetime
    by: str
    dataset_uri: str
    dataset_sha256: str
    rows: int
    outcome: str
    reason: str
    comparison: Comparison | None  # None: a record this code cannot read (shown as stored)
    stored: dict[str, Any]


class GroupEntry(Record):
    group: str
    rates: dict[str, float]


class FairnessEntry(Record):
    attribute: str
    result: ResultEntry
    groups: list[GroupEntry]


class ScanEntry(Record):
    at: datetime
    by: str
    passed: bool
    checks: list[dict[str, Any]]


class DecisionEntry(Record):
    task: str
    kind: str
    step: str
    decision: str
    accepted: bool
    person: str  # verified (a refused attempt's too); attempts nobody proved are only counted
    channel: str
    at: datetime
    comment: str
    refusal: str | None
    evidence_sha256: str | None
    packet_sha256: str | None


class StateEntry(Record):
    at: datetime
    by: str
    state: str
    reason: str


class ChainStatus(Record):
    ok: bool
    events: int
    problem: str | None
    anchor: str | None
    last_seq: int
    last_hash: str
    last_at: datetime | None


class EvidencePacket(Record):
    card: ModelCard
    tests: list[ResultEntry]
    comparison: ComparisonEntry | None
    fairness: list[FairnessEntry]
    drift: ResultEntry | None
    drift_as_of: datetime | None  # the decision drift is shown at; None: not decided yet
    scan: ScanEntry | None
    decisions: list[DecisionEntry]
    unverified_attempts: int  # decisions claimed without proof (task.decision_unverified)
    states: list[StateEntry]
    deployments: list[DeploymentRecord]
    chain: ChainStatus

    @property
    def ref(self) -> str:
        return f"{self.card.name}:{self.card.version}"


class PublishedPacket(Record):
    sha256: str
    html: str
    path: str


# ---- building (pure) ----------------------------------------------------------------------------

def build_packet(model: ModelRecord, version: VersionRecord, parent: str | None,
                 results: list[TestResult], comparison: ComparisonRecord | None,
                 champion: str | None, events: list[AuditEvent],
                 deployments: list[DeploymentRecord], chain: AuditReport) -> EvidencePacket:
    """The packet of `version` from its registry records: its results, the comparison that
    made it a challenger (with the champion's ref), the model's audit events (this version's
    are picked out) and deployments, and the whole chain's verification."""
    mine = [e for e in events if concerns(e, version)]
    decisions = [decision_entry(e) for e in mine if e.action in DECISION_EVENTS]
    as_of = decided_at(decisions)
    ordered = sorted(results, key=lambda r: r.created_at)
    return EvidencePacket(
        card=model_card(model, version, parent, ordered),
        tests=[result_entry(r) for r in ordered if r.family is ResultKind.TEST],
        comparison=comparison_entry(comparison, champion) if comparison else None,
        fairness=fairness_entries(ordered), drift=drift_at(ordered, as_of), drift_as_of=as_of,
        scan=scan_entry(mine), decisions=decisions,
        unverified_attempts=sum(e.action == UNVERIFIED for e in mine), states=state_entries(mine),
        deployments=[d for d in deployments if d.version_id == version.id],
        chain=chain_status(chain, events))


def concerns(event: AuditEvent, version: VersionRecord) -> bool:
    """An event about this version: on the version itself, or on one of its tasks."""
    if event.entity == "version":
        return event.entity_id == version.id
    return event.entity == "task" and event.detail.get("number") == version.number


def model_card(model: ModelRecord, version: VersionRecord, parent: str | None,
               results: list[TestResult]) -> ModelCard:
    return ModelCard(
        name=model.name, version=version.number, state=str(version.state),
        description=model.description, owner=model.owner, team=model.tags.get("team"),
        type=model.type, risk_tier=model.risk_tier, tags=model.tags, parent=parent,
        training_data_sha256=version.training_data_sha256, training=version.training,
        parameters=version.parameters, seed=version.seed,
        artifact_sha256=version.artifact_sha256, artifact_format=version.format,
        source_sha256=version.source_sha256,
        inputs=[f"{c.name} ({c.dtype})" for c in version.input_schema], label=version.label,
        sensitive_attributes=version.sensitive_attributes, datasets=dataset_hashes(results),
        submitted_by=version.created_by, submitted_at=version.created_at)


def dataset_hashes(results: list[TestResult]) -> list[DatasetHash]:
    """Each distinct dataset the results used, once, with the kinds of result measured on it."""
    found: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.dataset_sha256:
            kinds = found.setdefault((r.dataset_uri, r.dataset_sha256), [])
            if r.kind not in kinds:
                kinds.append(r.kind)
    return [DatasetHash(used_for=", ".join(kinds), uri=uri, sha256=sha)
            for (uri, sha), kinds in found.items()]


def result_entry(r: TestResult) -> ResultEntry:
    return ResultEntry(kind=r.kind, at=r.created_at, dataset_uri=r.dataset_uri,
                       dataset_sha256=r.dataset_sha256, outcome=str(r.outcome), passed=r.passed,
                       metrics=dict(sorted(r.metrics.items())), thresholds=r.thresholds,
                       window=r.window)


def comparison_entry(record: ComparisonRecord, champion: str | None) -> ComparisonEntry:
    try:
        compared: Comparison | None = Comparison.model_validate(record.detail)
    except ValueError:
        compared = None
    return ComparisonEntry(
        champion=champion or record.champion_version_id, at=record.created_at,
        by=record.created_by, dataset_uri=record.dataset_uri,
        dataset_sha256=record.dataset_sha256, rows=record.rows, outcome=record.outcome,
        reason=record.reason, comparison=compared, stored=record.detail)


def fairness_entries(results: list[TestResult]) -> list[FairnessEntry]:
    """The newest fairness result of each sensitive attribute, with its groups' rates."""
    newest = {r.attribute: r for r in results if r.family is ResultKind.FAIRNESS}
    return [FairnessEntry(attribute=str(attribute), result=result_entry(r),
                          groups=group_entries(r.metrics))
            for attribute, r in sorted(newest.items(), key=lambda item: str(item[0]))]


def group_entries(metrics: dict[str, float]) -> list[GroupEntry]:
    """`<group>.<rate>` metrics by group (a group's name may hold dots)."""
    groups: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        group, _, rate = name.rpartition(".")
        if group and rate in GROUP_RATES:
            groups.setdefault(group, {})[rate] = value
    return [GroupEntry(group=g, rates=rates) for g, rates in sorted(groups.items())]


def decided_at(decisions: list[DecisionEntry]) -> datetime | None:
    """When the version's approval was decided: its last accepted approval decision."""
    times = [d.at for d in decisions if d.accepted and d.kind == "approval"]
    return max(times) if times else None


def drift_at(results: list[TestResult], as_of: datetime | None) -> ResultEntry | None:
    """The newest drift result at or before the decision (before any, while undecided)."""
    found = [r for r in results if r.family is ResultKind.DRIFT
             and (as_of is None or r.created_at <= as_of)]
    return result_entry(found[-1]) if found else None


def scan_entry(events: list[AuditEvent]) -> ScanEntry | None:
    scans = [e for e in events if e.action == "version.scanned"]
    if not scans:
        return None
    last = scans[-1]
    checks = [dict(c) for c in last.detail.get("checks", []) if isinstance(c, dict)]
    return ScanEntry(at=last.at, by=last.actor, checks=checks,
                     passed=bool(checks) and all(c.get("passed") is True for c in checks))


def decision_entry(e: AuditEvent) -> DecisionEntry:
    accepted = e.action == "task.decision"
    return DecisionEntry(
        task=e.entity_id, kind=str(e.detail.get("kind", "")), step=str(e.detail.get("step", "")),
        decision=str(e.detail.get("decision", "")), accepted=accepted, person=e.actor,
        channel=str(e.detail.get("via", "")), at=e.at, comment=e.reason if accepted else "",
        refusal=None if accepted else e.reason, evidence_sha256=e.evidence_sha256,
        packet_sha256=e.detail.get("packet_sha256"))


def state_entries(events: list[AuditEvent]) -> list[StateEntry]:
    return [StateEntry(at=e.at, by=e.actor, state=str(e.detail["to"]), reason=e.reason)
            for e in events if e.entity == "version" and "to" in e.detail]


def chain_status(report: AuditReport, events: list[AuditEvent]) -> ChainStatus:
    """The whole log's verification, and the model's last event the packet was made at."""
    last = events[-1] if events else None
    return ChainStatus(ok=report.ok, events=report.events, problem=report.problem,
                       anchor=report.anchor, last_seq=last.seq if last else 0,
                       last_hash=last.hash if last else "", last_at=last.at if last else None)


# ---- rendering ----------------------------------------------------------------------------------

@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["when"] = when
    return env


def number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.4f}"


def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else "—"


def render_html(packet: EvidencePacket) -> str:
    """The packet as one self-contained HTML document (inline CSS, no script, prints)."""
    return environment().get_template("evidence_packet.html").render(p=packet)


# ---- from the registry --------------------------------------------------------------------------

def gather_packet(ctx: Resources, model: str, number: int) -> EvidencePacket:
    """The packet of model:number as the registry stands now (NotFoundError if unknown)."""
    from mlc_tasks.audit_anchor import newest_anchor
    from mlc_tasks.registry.champions import ChampionBook

    registry = ctx.registry
    record, version = registry.get_model(model), registry.get_version(model, number)
    parent = (registry.get_version_by_id(version.parent_version_id).ref
              if version.parent_version_id else None)
    compared = ChampionBook(registry).comparison(version.id)
    champion = (registry.get_version_by_id(compared.champion_version_id).ref
                if compared else None)
    chain = registry.verify_audit(newest_anchor(ctx.settings.anchor_url()))
    return build_packet(record, version, parent, registry.test_results(version.id), compared,
                        champion, registry.audit_events(model), registry.deployments(model),
                        chain)


def current_packet_html(ctx: Resources, model: str, number: int) -> tuple[str, str]:
    """(html, sha256 of its UTF-8 bytes) of model:number's packet as the registry stands now."""
    html = render_html(gather_packet(ctx, model, number))
    return html, hashlib.sha256(html.encode()).hexdigest()


def publish_packet(ctx: Resources, model: str, number: int) -> PublishedPacket:
    """Store the current packet as a report (`/reports/<sha256>.html` serves it); the same
    packet is stored once."""
    html, digest = current_packet_html(ctx, model, number)
    _, stored = ctx.store().put(html.encode(), reports.SUFFIX)
    assert stored == digest
    return PublishedPacket(sha256=digest, html=html, path=f"/reports/{digest}{reports.SUFFIX}")


def packet_url(ctx: Resources, published: PublishedPacket) -> str:
    """The packet's link as people's browsers open it."""
    return f"{ctx.settings.browser_url()}{published.path}"
