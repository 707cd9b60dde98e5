"""The control-plane API's read routes (scope `read`): what `mlc models`, `versions`,
`deployments`, `comparisons`, `audit`, `tasks`, `alerts` and `runtimes` list. Each answers the
registry's records as JSON (the same records `--json` prints); a version's evidence packet
answers HTML."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from deployments.api_auth import allowed, authenticated
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.people import Principal, Scope
from mlc_tasks.resources import Resources


def dumped(records: list[Any] | Any) -> Any:
    if isinstance(records, list):
        return [r.model_dump(mode="json") for r in records]
    return records.model_dump(mode="json") if isinstance(records, BaseModel) else records


def read_router(ctx: Resources) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(allowed(ctx, Scope.READ))])
    registry = ctx.registry
    add_model_routes(router, ctx)

    @router.get("/audit")
    def audit(model: str | None = None) -> Any:
        if model is not None:
            registry.get_model(model)  # a clear 404 for an unknown model
        return dumped(registry.audit_events(model))

    @router.get("/tasks")
    def tasks(all: bool = False, model: str | None = None) -> Any:  # noqa: A002 (mlc's --all)
        from mlc_tasks.registry.tasks import TaskBook
        from mlc_tasks.task_records import TaskStatus

        return dumped(TaskBook(registry).list(None if all else TaskStatus.OPEN, model))

    @router.get("/tasks/{task_id}")
    def task(task_id: int) -> Any:
        """The task with its detail, evidence included: the markdown the decider is shown."""
        from mlc_tasks.registry.tasks import TaskBook

        return dumped(TaskBook(registry).get(task_id))

    @router.get("/alerts")
    def alerts(status: str | None = None, model: str | None = None) -> Any:
        from mlc_tasks.alert_records import AlertStatus
        from mlc_tasks.registry.alerts import AlertBook

        try:
            wanted = AlertStatus(status) if status else None
        except ValueError as exc:
            raise InvalidInputError(f"status: '{status}' is not open, acknowledged or "
                                    "resolved") from exc
        return dumped(AlertBook(registry).list(wanted, model))

    @router.get("/runtimes")
    def runtimes() -> Any:
        return dumped(registry.list_runtimes())

    @router.get("/runtimes/serving")
    def serving() -> dict[str, list[str]]:
        """What each runtime serves now, as model:number, by model name."""
        found: dict[str, list[str]] = {}
        for d in registry.served_on():
            found.setdefault(d.runtime, []).append(f"{d.model}:{d.version_number}")
        return found

    return router


def add_model_routes(router: APIRouter, ctx: Resources) -> None:
    registry = ctx.registry

    @router.get("/models")
    def models() -> Any:
        return dumped(registry.list_models())

    @router.get("/champions")
    def champions() -> dict[str, int]:
        """Each model's champion's version number (models with one)."""
        from mlc_tasks.registry.champions import ChampionBook

        book = ChampionBook(registry)
        found = {m.name: book.champion(m.name) for m in registry.list_models()}
        return {name: v.number for name, v in found.items() if v is not None}

    @router.get("/models/{name}")
    def model(name: str) -> Any:
        return dumped(registry.get_model(name))

    @router.get("/models/{name}/versions")
    def versions(name: str) -> Any:
        return dumped(registry.list_versions(name))

    @router.get("/models/{name}/deployments")
    def deployments(name: str, env: str | None = None, at: datetime | None = None) -> Any:
        """The deployment history; with env and at, the version that served env then."""
        if at is None and env is None:
            return dumped(registry.deployments(name))
        if at is None or env is None:
            raise InvalidInputError("env and at go together")
        if at.tzinfo is not None:
            at = at.astimezone(UTC)
        found = registry.version_in_env_at(name, env, at.replace(tzinfo=None))
        return dumped(found) if found else None

    @router.get("/models/{name}/versions/{number}/evidence", response_class=HTMLResponse)
    def evidence(name: str, number: int) -> HTMLResponse:
        """The version's evidence packet as the registry stands now (HTML, sandboxed like a
        report: a packet is people's text and must not run as this origin)."""
        from deployments.api import REPORT_HEADERS  # here: deployments.api imports this module
        from mlc_tasks.evidence_packet import current_packet_html

        html, digest = current_packet_html(ctx, name, number)
        return HTMLResponse(html, headers={**REPORT_HEADERS, "ETag": f'"{digest}"'})

    @router.get("/models/{name}/comparisons")
    def comparisons(name: str) -> Any:
        from mlc_tasks.registry.champions import ChampionBook

        registry.get_model(name)
        return dumped(ChampionBook(registry).comparisons(name))


def whoami_router(ctx: Resources) -> APIRouter:
    router = APIRouter(prefix="/v1")

    @router.get("/whoami")
    def whoami(principal: Annotated[Principal, Depends(authenticated(ctx))]) -> Any:
        return dumped(principal)

    return router
