"""What a person reads of backtest and monitor results in the Prefect UI: the tables and the
markdown the flows publish as artifacts (built here, published there)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlc_tasks.evaluation import result_table
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.registry.records import ResultOutcome


class TableArtifact(BaseModel):
    """A table artifact to publish: its key (the latest under a key is shown), rows and
    description."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    table: list[dict[str, Any]]
    description: str


def backtest_table(model: str | None, done: list[tuple[VersionRecord, TestResult]], day: date
                   ) -> TableArtifact | None:
    """One model asked for: its metrics; the night's run: one summary row per model (one API
    call for the night, not one per model); nothing backtested: nothing."""
    if not done:
        return None
    if model:
        version, result = done[0]
        return TableArtifact(key=f"backtest-{model}", table=result_rows(result),
                             description=f"backtest of {version.ref} on {day}")
    return TableArtifact(key="backtest-nightly", table=[summary_row(v, r) for v, r in done],
                         description=f"backtest of {len(done)} models on {day}")


def result_rows(result: TestResult) -> list[dict[str, Any]]:
    """A result's metrics with their thresholds, or where no data was found."""
    if result.outcome is ResultOutcome.NO_DATA:
        return [{"outcome": result.outcome.value, "looked in": result.dataset_uri}]
    return result_table(result)


def summary_row(version: VersionRecord, result: TestResult) -> dict[str, Any]:
    """One model's line of the night: outcome, pass, the missed thresholds, the first metrics."""
    missed = [c.metric for c in result.thresholds if not c.passed]
    return {"version": version.ref, "outcome": result.outcome.value, "passed": result.passed,
            "missed": ", ".join(missed) or "-",
            **{k: round(v, 4) for k, v in sorted(result.metrics.items())[:6]}}


def monitor_markdown(version: VersionRecord, results: list[TestResult], report: str | None
                     ) -> str:
    """The window's checks at a glance, with the link to the Evidently report if there is one."""
    lines = [f"## Monitoring {version.ref}, {results[0].window}", "",
             "| check | outcome | passed | failing |", "|---|---|---|---|"]
    for r in results:
        failing = ", ".join(c.metric for c in r.thresholds if not c.passed) or "-"
        lines.append(f"| {r.kind} | {r.outcome} | {'✅' if r.passed else '❌'} | {failing} |")
    lines += ["", f"[Evidently data-drift report]({report})" if report else "",
              f"Data: `{results[0].dataset_uri}`"]
    return "\n".join(lines)


def report_uri(results: list[TestResult]) -> str | None:
    """The first stored report among the results (the drift record's)."""
    return next((r.report_uri for r in results if r.report_uri), None)


def monitor_tables(version: VersionRecord, results: list[TestResult]) -> list[TableArtifact]:
    """Every check against its limit, and every measure (per column effect and corrected
    p-value; per group rows and rates); an empty table is left out."""
    checks = [{"check": r.kind, "metric": c.metric,
               "value": None if c.value is None else round(c.value, 4),
               "limit": f"{c.op} {c.threshold:g}", "passed": c.passed}
              for r in results for c in r.thresholds]
    details = [{"check": r.kind, "measure": name, "value": round(value, 6)}
               for r in results for name, value in sorted(r.metrics.items())]
    tables = [TableArtifact(key=f"monitor-{version.model}-checks", table=checks,
                            description=f"checks of {version.ref} against their limits"),
              TableArtifact(key=f"monitor-{version.model}-details", table=details,
                            description=f"drift per column and metrics per group of "
                                        f"{version.ref}")]
    return [t for t in tables if t.table]
