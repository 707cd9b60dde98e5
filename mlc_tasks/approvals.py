"""Who may decide a human task (pure rules), and the evidence an approver reads."""

from __future__ import annotations

from typing import Any

from mlc_tasks.people import canonical_id
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.task_records import DECISIONS, Decision, HumanTask, TaskDecision, TaskKind

SYSTEM_ACTOR = "mlc:deadline"  # the deadline timer; never a person
ROLLBACK_STEP = "rollback"  # the review after an automatic rollback (flows/change_management.py)


def refusal(task: HumanTask, submitter: str, members: set[str], earlier: list[TaskDecision],
            actor: str, decision: Decision, comment: str) -> str | None:
    """Why this attempt must be refused, or None when it may count. `actor` is a verified
    person's id. A decision needs a member of the task's groups (no groups: nobody may
    decide); an approval also someone who is not excluded (the submitter always, and whoever
    the task names in detail.excluded, e.g. the model's owner) and has not approved already;
    a rejection needs a reason."""
    if decision not in DECISIONS[task.kind]:
        allowed = ", ".join(sorted(DECISIONS[task.kind]))
        return f"'{decision}' is not a decision for a {task.kind} task (use {allowed})"
    if not actor.strip():
        return "the approver's name is empty"
    if actor == SYSTEM_ACTOR:
        return f"'{SYSTEM_ACTOR}' is reserved for the deadline timer"
    who = same_person(actor)
    if not task.groups:
        return f"task {task.id} names no group, so nobody may decide it"
    if who not in {same_person(m) for m in members}:
        return f"{actor} is not a member of {', '.join(task.groups)}"
    excluded = {same_person(submitter): "submitted"} | {
        same_person(k): v for k, v in dict(task.detail.get("excluded") or {}).items()}
    # a rollback review's retry puts the version back into production: an approval in effect
    if (task.kind != TaskKind.REVIEW or task.step == ROLLBACK_STEP) and who in excluded:
        role = excluded[who]
        return f"{actor} {role} {task.ref} and cannot decide on its {task.kind}"
    if decision == Decision.REJECT and not comment.strip():
        return "a rejection needs a reason (comment)"
    if any(d.accepted and same_person(d.actor) == who and d.decision == decision
           for d in earlier):
        return f"{actor} has already given '{decision}' on task {task.id}"
    return None


def same_person(name: str) -> str:
    """Ids compare after NFKC and casefolding: `Rita@Bank` is `rita@bank` (people.py)."""
    return canonical_id(name)


def approvals_counted(earlier: list[TaskDecision]) -> int:
    """Distinct people who approved."""
    return len({same_person(d.actor) for d in earlier
                if d.accepted and d.decision == Decision.APPROVE})


def evidence_markdown(version: VersionRecord, previous: VersionRecord | None,
                      result: TestResult | None, production: TestResult | None,
                      scan: dict[str, Any], task: HumanTask, comparison: str = "") -> str:
    """The approval form's description: what changed, the tests against the thresholds and
    against the version now in production, the security scan, and for a challenger its
    comparison with the champion (markdown)."""
    lines = [f"## Approve {version.ref} for production?",
             "",
             f"Submitted by **{version.created_by}** at {version.created_at:%Y-%m-%d %H:%M} UTC. "
             f"Needs **{task.quorum}** approval(s) from **{', '.join(task.groups)}**"
             + (f", by {task.deadline:%Y-%m-%d %H:%M} UTC." if task.deadline else "."),
             "",
             "### What changed",
             *_changes(version, previous),
             "",
             "### Tests against the thresholds"]
    lines += _test_table(result, production, previous, version.number)
    lines += ["", "### Security scan", *_scan_lines(scan), "", comparison,
              "Decide: `approve` or `reject` (a rejection needs a comment). The approver must be "
              "a member of the group and may not be the submitter."]
    return "\n".join(lines)


def _changes(version: VersionRecord, previous: VersionRecord | None) -> list[str]:
    if previous is None:
        return ["- first version in production: nothing to compare with"]
    rows = [f"- replaces **{previous.ref}** (in production now)"]
    for field in ("artifact_sha256", "training_data_sha256", "parameters", "seed",
                  "input_schema"):
        old, new = getattr(previous, field), getattr(version, field)
        if old != new:
            rows.append(f"- {field.replace('_', ' ')}: `{_short(old)}` → `{_short(new)}`")
    return rows


def _short(value: Any) -> str:
    text = str([c.name for c in value] if isinstance(value, list) and value and hasattr(
        value[0], "name") else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _test_table(result: TestResult | None, production: TestResult | None,
                previous: VersionRecord | None, number: int) -> list[str]:
    if result is None:
        return ["- no test result"]
    checks = {c.metric: c for c in result.thresholds}
    # short headers: Prefect's form is narrow and hides what does not fit
    head = (f"| metric | v{number} | threshold | v{previous.number} (prod) |" if previous
            else f"| metric | v{number} | threshold | prod |")
    rows = [head, "|---|---|---|---|"]
    for metric, value in sorted(result.metrics.items()):
        check = checks.get(metric)
        bound = (f"{check.op} {check.threshold:g} {'✅' if check.passed else '❌'}"
                 if check else "-")
        prod = production.metrics.get(metric) if production else None
        rows.append(f"| {metric} | {value:.4f} | {bound} | "
                    f"{'-' if prod is None else f'{prod:.4f}'} |")
    rows.append(f"\nOverall: **{'passed' if result.passed else 'FAILED'}** on "
                f"`{result.dataset_uri}` (sha256 {result.dataset_sha256[:12]}…)")
    return rows


def _scan_lines(scan: dict[str, Any]) -> list[str]:
    if not scan:
        return ["- not scanned"]
    lines = [f"- {check['name']}: {'✅' if check['passed'] else '❌'} {check['detail']}"
             for check in scan.get("checks", [])]
    return lines or ["- no checks"]
