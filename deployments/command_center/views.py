"""What each Command Center page shows, read from the registry (the same books the API's
read routes use); the templates only lay it out."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from mlc_tasks import charts
from mlc_tasks.alert_records import Alert, AlertStatus
from mlc_tasks.audit import AuditEvent, AuditReport
from mlc_tasks.errors import InvalidInputError, MlcError
from mlc_tasks.registry import ModelRecord, TestResult, VersionRecord
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.champions import ChampionBook, ComparisonRecord
from mlc_tasks.registry.records import DeploymentRecord
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.task_records import HumanTask, TaskStatus

CHART_KINDS = ("test", "holdout", "backtest", "performance")
MAX_CHARTS = 12
MAX_RESULTS = 30
MAX_AUDIT = 80


@dataclass(frozen=True)
class InventoryRow:
    model: ModelRecord
    champion: int | None
    latest: VersionRecord | None
    served: list[DeploymentRecord]
    tasks: int
    alerts: int


@dataclass(frozen=True)
class ResultRow:
    number: int
    result: TestResult


@dataclass(frozen=True)
class ModelPage:
    model: ModelRecord
    versions: list[VersionRecord]
    champion: int | None
    served: list[DeploymentRecord]
    deployments: list[DeploymentRecord]
    charts: list[str]
    results: list[ResultRow]
    comparisons: list[ComparisonRecord]
    numbers: dict[str, int]
    audit: list[AuditEvent]
    chain: AuditReport | None
    chain_error: str | None
    tasks: list[HumanTask]
    alerts: list[Alert]
    served_then: VersionRecord | None = None
    asked: dict[str, str] = field(default_factory=dict)


def inventory(ctx: Resources) -> list[InventoryRow]:
    registry = ctx.registry
    champions = ChampionBook(registry)
    served = registry.served_on()
    tasks = TaskBook(registry).list(TaskStatus.OPEN)
    alerts = [a for a in AlertBook(registry).list() if a.status != AlertStatus.RESOLVED]
    rows = []
    for model in registry.list_models():
        champion = champions.champion(model.name)
        latest = registry.list_versions(model.name, limit=1)
        rows.append(InventoryRow(
            model=model, champion=champion.number if champion else None,
            latest=latest[0] if latest else None,
            served=[d for d in served if d.model == model.name],
            tasks=sum(t.model == model.name for t in tasks),
            alerts=sum(a.model == model.name for a in alerts)))
    return rows


def parse_at(at: str) -> datetime:
    """A date-time from the picker (naive: UTC; with an offset: converted to UTC)."""
    try:
        when = datetime.fromisoformat(at.strip())
        return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
    except (ValueError, OverflowError) as exc:  # an offset can push it past year 1 or 9999
        raise InvalidInputError(f"at: '{at[:40]}' is not a date and time such as "
                                "2025-01-31T09:30") from exc


def model_page(ctx: Resources, name: str, at: str | None, env: str) -> ModelPage:
    registry = ctx.registry
    model = registry.get_model(name)  # a 404 page for an unknown model
    versions = registry.list_versions(name)
    results = [ResultRow(v.number, r) for v in versions for r in registry.test_results(v.id)]
    results.sort(key=lambda row: row.result.created_at, reverse=True)
    series = charts.metric_series([r.result for r in results
                                   if r.result.family.value in CHART_KINDS])
    champion = ChampionBook(registry).champion(name)
    chain, problem = chain_status(ctx)
    page = ModelPage(
        model=model, versions=versions, champion=champion.number if champion else None,
        served=[d for d in registry.served_on() if d.model == name],
        deployments=list(reversed(registry.deployments(name))),
        charts=[charts.line_chart(s) for s in series[:MAX_CHARTS]],
        results=results[:MAX_RESULTS], comparisons=ChampionBook(registry).comparisons(name),
        numbers={v.id: v.number for v in versions},
        audit=list(reversed(registry.audit_events(name)))[:MAX_AUDIT], chain=chain,
        chain_error=problem, tasks=TaskBook(registry).list(None, name),
        alerts=AlertBook(registry).list(None, name), asked={"env": env, "at": at or ""})
    if at:
        when = parse_at(at)
        return replace(page, served_then=registry.version_in_env_at(name, env, when),
                       asked={"env": env, "at": at, "when": f"{when:%Y-%m-%d %H:%M}"})
    return page


def chain_status(ctx: Resources) -> tuple[AuditReport | None, str | None]:
    """The audit chain checked against its newest anchor; what stopped the check, if any."""
    from mlc_tasks.audit_anchor import newest_anchor

    try:
        return ctx.registry.verify_audit(newest_anchor(ctx.settings.anchor_url())), None
    except MlcError as exc:
        return None, str(exc)


def alerts(ctx: Resources, status: str) -> list[Alert]:
    """The alerts of a status; "active" (the default) is every one not resolved."""
    book = AlertBook(ctx.registry)
    if status in ("", "active"):
        return [a for a in book.list() if a.status != AlertStatus.RESOLVED]
    if status == "all":
        return book.list()
    try:
        return book.list(AlertStatus(status))
    except ValueError as exc:
        raise InvalidInputError(f"status: '{status[:40]}' is not active, open, acknowledged, "
                                "resolved or all") from exc


def task_view(ctx: Resources, task_id: int) -> dict[str, Any]:
    book = TaskBook(ctx.registry)
    task = book.get(task_id)
    return {"task": task, "decisions": book.decisions(task_id),
            "evidence": str(task.detail.get("evidence", "")),
            "packet_url": str(task.detail.get("packet_url") or ""),
            "run_url": str(task.detail.get("run_url") or "")}
