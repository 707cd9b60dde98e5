"""What happened to a model over a window — what served production, what its tests, backtests
and monitors measured, the alerts, and every decision with the verified person — as one record
a reviewer reads (a periodic review, a model-risk file)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from mlc_tasks.alert_records import Alert
from mlc_tasks.audit import AuditEvent
from mlc_tasks.registry import DeploymentRecord, TestResult, VersionRecord
from mlc_tasks.registry.records import StoredKind

# what a reviewer reads as a decision: people's (verified) decisions and what they changed
DECISION_ACTIONS = frozenset({"task.decision", "version.approved", "version.rejected",
                              "version.retired", "version.deployed_to", "model.updated",
                              "model.champion", "model.retrain_requested"})


class ResultSummary(BaseModel):
    """One kind of result of one version in the window: how often, how many passed, the last."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int
    kind: StoredKind
    runs: int
    passed: int
    last: TestResult


class EvidenceBundle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    since: datetime
    until: datetime
    production: VersionRecord | None
    deployments: list[DeploymentRecord]
    results: list[ResultSummary]
    alerts: list[Alert]
    decisions: list[AuditEvent]

    def markdown(self) -> str:
        """The bundle as the description of a review form (Prefect renders markdown)."""
        head = [f"## {self.model}: evidence {self.since:%Y-%m-%d} to {self.until:%Y-%m-%d}", "",
                f"In production now: **{self.production.ref if self.production else 'nothing'}**"]
        return "\n".join(head + self._deployments() + self._results() + self._alerts()
                         + self._decisions())

    def _deployments(self) -> list[str]:
        rows = [f"- {d.deployed_at:%Y-%m-%d %H:%M} v{d.version_number} on {d.runtime} "
                f"({d.env or '-'}) by {d.deployed_by}" for d in self.deployments]
        return ["", "### Deployments", *(rows or ["- none in the window"])]

    def _results(self) -> list[str]:
        rows = ["| version | kind | runs | passed | last metrics |", "|---|---|---|---|---|"]
        rows += [f"| v{r.version} | {r.kind} | {r.runs} | {r.passed} | "
                 + ", ".join(f"{k} {v:.4f}" for k, v in sorted(r.last.metrics.items())) + " |"
                 for r in self.results]
        return ["", "### Tests, backtests and monitors",
                *(rows if self.results else ["- no results in the window"])]

    def _alerts(self) -> list[str]:
        counted = Counter((a.severity.value, a.status.value) for a in self.alerts)
        rows = [f"- {n} {severity} ({status})" for (severity, status), n in sorted(counted.items())]
        return ["", "### Alerts", *(rows or ["- none in the window"])]

    def _decisions(self) -> list[str]:
        rows = [f"- {e.at:%Y-%m-%d %H:%M} {e.action} by **{e.actor}**: {e.reason[:120]}"
                for e in self.decisions]
        return ["", "### Decisions", *(rows or ["- none in the window"])]


def bundle(model: str, since: datetime, until: datetime, production: VersionRecord | None,
           versions: list[VersionRecord], results: list[TestResult],
           deployments: list[DeploymentRecord], alerts: list[Alert],
           audit: list[AuditEvent]) -> EvidenceBundle:
    """The model's evidence between `since` and `until` from what the registry holds."""
    def within(at: datetime) -> bool:
        return since <= at <= until

    return EvidenceBundle(
        model=model, since=since, until=until, production=production,
        deployments=[d for d in deployments if within(d.deployed_at)],
        results=summarise({v.id: v.number for v in versions},
                          [r for r in results if within(r.created_at)]),
        alerts=[a for a in alerts if within(a.last_seen)],
        decisions=[e for e in audit if within(e.at) and e.action in DECISION_ACTIONS])


def summarise(numbers: dict[str, int], results: list[TestResult]) -> list[ResultSummary]:
    """One summary per (version, kind), in version then kind order."""
    groups: dict[tuple[int, str], list[TestResult]] = {}
    for result in sorted(results, key=lambda r: r.created_at):
        groups.setdefault((numbers[result.version_id], str(result.kind)), []).append(result)
    return [ResultSummary(version=number, kind=kind, runs=len(found),
                          passed=sum(r.passed for r in found), last=found[-1])
            for (number, kind), found in sorted(groups.items())]
