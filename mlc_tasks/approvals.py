"""Who may decide a human task (pure rules), and the evidence an approver reads."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from mlc_tasks.lifecycle import State
from mlc_tasks.people import canonical_id
from mlc_tasks.registry import TestResult, VersionRecord
from mlc_tasks.task_records import Decision, HumanTask, TaskDecision, TaskKind, TaskStatus

SYSTEM_ACTOR = "mlc:deadline"  # the deadline timer; never a person
ROLLBACK_STEP = "rollback"  # the review after an automatic rollback (flows/change_management.py)


def refusal(task: HumanTask, submitter: str, members: set[str], earlier: list[TaskDecision],
            actor: str, decision: str, comment: str) -> str | None:
    """Why this attempt must be refused, or None when it may count. `actor` is a verified
    person's id. A decision needs a member of the task's groups (no groups: nobody may
    decide), and someone not excluded (excluded_for) who has not given it already; a
    rejection needs a reason."""
    if decision not in task.choices:
        allowed = ", ".join(task.choices)
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
    excluded = excluded_for(task, submitter)
    if who in excluded:
        return f"{actor} {excluded[who]} {task.ref} and cannot decide on its {task.kind}"
    if decision == Decision.REJECT and not comment.strip():
        return "a rejection needs a reason (comment)"
    if any(d.accepted and same_person(d.actor) == who and d.decision == decision
           for d in earlier):
        return f"{actor} has already given '{decision}' on task {task.id}"
    return None


def excluded_for(task: HumanTask, submitter: str) -> dict[str, str]:
    """Who may not decide, and why. An approval or change excludes its submitter and whom the
    task names (detail.excluded, e.g. the owner); so does a rollback review, whose retry puts
    the version back into production; a question excludes whom its asker named; an error
    review nobody."""
    named = {same_person(k): v for k, v in dict(task.detail.get("excluded") or {}).items()}
    if task.kind == TaskKind.QUESTION:
        return named
    if task.kind == TaskKind.REVIEW and task.step != ROLLBACK_STEP:
        return {}
    return {same_person(submitter): "submitted"} | named


class Closing(BaseModel):
    """How an accepted decision ends a task, and where it moves the version (None: nowhere)."""

    model_config = ConfigDict(frozen=True)

    status: TaskStatus
    outcome: str
    version_state: State | None


def closing(task: HumanTask, decision: str, decided: list[TaskDecision]) -> Closing | None:
    """The end of the task after an accepted decision (`decided` includes it), or None while
    it waits for more: approvals and answers count distinct people against the quorum."""
    if task.kind == TaskKind.QUESTION:
        count = agreeing(decided, decision)
        return (Closing(status=TaskStatus.ANSWERED, outcome=f"answered {decision} by {count}",
                        version_state=None) if count >= task.quorum else None)
    if decision == Decision.APPROVE:
        count = approvals_counted(decided)
        return (Closing(status=TaskStatus.APPROVED, outcome=f"approved by {count} of "
                        f"{task.quorum} needed", version_state=State.APPROVED)
                if count >= task.quorum else None)
    comment = decided[-1].comment if decided else ""
    if decision == Decision.REJECT:
        return Closing(status=TaskStatus.REJECTED, outcome=f"rejected: {comment}",
                       version_state=State.REJECTED)
    if decision == Decision.RETRY:
        return Closing(status=TaskStatus.RETRY, outcome=f"retry {task.step}", version_state=None)
    return Closing(status=TaskStatus.ABORTED, outcome=f"aborted after {task.step} failed: "
                   f"{task.detail.get('error', '')}".strip(), version_state=State.FAILED)


def expiry(task: HumanTask) -> State | None:
    """Where an expired task leaves the version: an approval's ends rejected, a review's
    failed; a change or a question leaves it as it is."""
    return {TaskKind.APPROVAL: State.REJECTED, TaskKind.REVIEW: State.FAILED}.get(task.kind)


def agreeing(decided: list[TaskDecision], decision: str) -> int:
    """Distinct people whose accepted decision was this one."""
    return len({same_person(d.actor) for d in decided if d.accepted and d.decision == decision})


def same_person(name: str) -> str:
    """Ids compare after NFKC and casefolding: `Rita@Bank` is `rita@bank` (people.py)."""
    return canonical_id(name)


def approvals_counted(earlier: list[TaskDecision]) -> int:
    """Distinct people who approved."""
    return agreeing(earlier, Decision.APPROVE)


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
