"""Keeping Prefect's view of our runs true across restarts of `mlc up`: runs that claim to run
but whose process is gone are settled as crashed, with the reason (which also gives back any
deployment concurrency slot they held), and schedules that went quiet raise an alert.

Plain calls to Prefect's REST API: `mlc up` does not import Prefect, which takes seconds."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mlc_tasks.alert_records import AlertSignal, Severity
from mlc_tasks.errors import TransientError
from mlc_tasks.prefect_auth import PrefectAuth
from mlc_tasks.run_health import CLAIMS_TO_RUN, RunView, Silence

log = logging.getLogger(__name__)
TAG = "mlc"  # every deployment we serve carries it
PAGE = 200


class PrefectRuns:
    """The runs of our deployments on one Prefect server (its credentials: `auth`, default
    PREFECT_API_AUTH_STRING)."""

    def __init__(self, api_url: str, auth: PrefectAuth | None = None,
                 timeout: float = 10.0) -> None:
        self.api = api_url.rstrip("/")
        self.auth = auth or PrefectAuth(self.api)
        self.timeout = timeout

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            answer = httpx.post(f"{self.api}{path}", json=body, timeout=self.timeout,
                                auth=self.auth)
        except httpx.HTTPError as exc:
            raise TransientError(f"the Prefect server at {self.api} did not answer: {exc}"
                                 ) from exc
        if answer.status_code >= 300:
            raise TransientError(f"the Prefect server at {self.api} answered {path} with HTTP "
                                 f"{answer.status_code}: {answer.text[:200]}")
        return answer.json() if answer.content else None

    def deployments(self) -> dict[str, dict[str, Any]]:
        """Our deployments by id."""
        found = self._post("/deployments/filter", {"deployments": {"tags": {"all_": [TAG]}}})
        return {d["id"]: d for d in found}

    def runs(self, deployments: dict[str, dict[str, Any]], flow_runs: dict[str, Any]
             ) -> Iterator[RunView]:
        """Runs of these deployments' flows (subflow runs included) matching the filter."""
        if not deployments:
            return
        flows = sorted({d["flow_id"] for d in deployments.values()})
        names = {d["flow_id"]: d["name"] for d in deployments.values()}
        names.update({d["id"]: d["name"] for d in deployments.values()})
        for offset in range(0, 100 * PAGE, PAGE):
            page = self._post("/flow_runs/filter", {
                "flows": {"id": {"any_": flows}}, "flow_runs": flow_runs,
                "sort": "EXPECTED_START_TIME_DESC", "limit": PAGE, "offset": offset})
            for run in page:  # a subflow run has no deployment; another's run is not ours
                if run.get("deployment_id") in (None, *deployments):
                    yield view(run, names.get(run.get("deployment_id") or "",
                                              names.get(run["flow_id"], "?")))
            if len(page) < PAGE:
                return

    def crash(self, run_id: str, why: str) -> None:
        self._post(f"/flow_runs/{run_id}/set_state", {
            "state": {"type": "CRASHED", "name": "Crashed", "message": why}, "force": True})


def view(run: dict[str, Any], deployment: str) -> RunView:
    state = run.get("state") or {}
    expected = run.get("expected_start_time")
    return RunView(id=run["id"], name=run["name"], deployment=deployment,
                   state_type=state.get("type", ""), state_name=state.get("name", ""),
                   message=state.get("message") or "",
                   expected_start=(datetime.fromisoformat(expected).astimezone(UTC)
                                   if expected else None))


def settle_orphaned_runs(prefect: PrefectRuns, why: str) -> list[RunView]:
    """Every run of ours that claims to run is crashed with `why`. Call it only when no
    process of ours can be running them: before serving starts, or after it stopped."""
    claiming = list(prefect.runs(prefect.deployments(), {
        "state": {"type": {"any_": sorted(CLAIMS_TO_RUN)}}}))
    for run in claiming:
        prefect.crash(run.id, why)
        log.info("settled %s (%s, was %s): %s", run.name, run.deployment, run.state_name, why)
    return claiming


def scheduled_runs(prefect: PrefectRuns, now: datetime, window: timedelta) -> list[RunView]:
    """Runs of our scheduled deployments that were due within the window."""
    scheduled = {i: d for i, d in prefect.deployments().items() if d.get("schedules")}
    found = prefect.runs(scheduled, {"expected_start_time": {
        "after_": (now - window).isoformat(), "before_": now.isoformat()}})
    return [r for r in found if r.deployment != "?"]


def silence_signal(silence: Silence, ui_url: str) -> AlertSignal:
    """One alert per quiet deployment while it lasts (repeats count up)."""
    return AlertSignal(
        severity=Severity.WARNING, model="installation", source="mlc-up", monitor="schedule",
        metric=silence.deployment,
        title=f"deployment {silence.deployment} is not running on its schedule"[:300],
        detail=silence.reason[:2000], run_url=f"{ui_url}/deployments")
