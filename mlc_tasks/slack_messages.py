"""Slack app messages (Block Kit), pure: an alert with its triage buttons, a waiting task with
its decisions, the modal that asks for a decision's comment or reason, and the values the
buttons carry back to /slack/interactions (parsed strictly there).

Everything a process or a person typed is escaped (`&`, `<`, `>`) before it goes into mrkdwn, so
a title cannot make a link (`<https://evil|Approve>`) or a mention (`<!channel>`); every text
is clipped to Slack's limits. A message is a function of the records only (alert, task, its
decisions), so a later update — whoever sends it — shows the same thing."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from mlc_tasks.alert_records import Alert, AlertStatus
from mlc_tasks.channels import alert_facts
from mlc_tasks.task_records import HumanTask, TaskDecision, TaskKind, TaskStatus

HEADER_MAX = 150
TEXT_MAX = 3000
FIELD_MAX = 2000
BLOCKS_MAX = 50
BUTTON_TEXT_MAX = 75
ACTIONS_MAX = 25  # elements in one actions block
URL_MAX = 3000
MODAL_TITLE_MAX = 24
METADATA_MAX = 3000
COMMENT_MAX = 4000  # the task forms' comment field
DECISIONS_SHOWN = 10
DECISION_CALLBACK = "mlc-decision"
COMMENT_BLOCK, COMMENT_ACTION = "comment", "text"
SNOOZES = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}
SNOOZE_LABELS = {"1h": "1 hour", "4h": "4 hours", "1d": "1 day"}
TASK_WINDOW = re.compile(r"^task-([1-9][0-9]{0,11})$")
NEEDS_REASON = frozenset({"reject", "abort"})  # ending a version: say why


class Action(StrEnum):
    """The action_id of each element; the value says on what."""

    ACKNOWLEDGE = "mlc-ack"
    RESOLVE = "mlc-resolve"
    SNOOZE = "mlc-snooze"
    DECIDE = "mlc-decide"  # -N: action ids are unique within a block
    LINK = "mlc-link"  # -N, a URL button: Slack reports the click, nothing to do


# ---------------------------------------------------------------- text


def escape(text: str) -> str:
    """Slack's three control characters as entities: no link, mention or command survives."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"


def web_url(url: str | None) -> str | None:
    """An http(s) URL fit for a button or a link, else None (javascript:, too long, spaces)."""
    if not url or not url.startswith(("https://", "http://")) or len(url) > URL_MAX:
        return None
    if any(c.isspace() or c in "<>|" for c in url):
        return None
    return url


def task_id_of(alert: Alert) -> int | None:
    """The task an alert announces as waiting (flows/human_tasks.py waiting_signal): window
    task-N and the task's kind as monitor (an escalation or a credentials alert is not one)."""
    found = TASK_WINDOW.fullmatch(alert.window)
    if found is None or alert.monitor not in {k.value for k in TaskKind}:
        return None
    return int(found[1])


# ---------------------------------------------------------------- blocks


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, HEADER_MAX)}}


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, TEXT_MAX)}}


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn, TEXT_MAX)}]}


def _button(text: str, action: Action, value: str = "", style: str | None = None,
            url: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action.value,
                              "text": {"type": "plain_text", "text": clip(text, BUTTON_TEXT_MAX)}}
    if value:
        button["value"] = value
    if style:
        button["style"] = style
    if url:
        button["url"] = url
    return button


def _snooze_select(alert: Alert) -> dict[str, Any]:
    options = [{"text": {"type": "plain_text", "text": label}, "value": f"{alert.id}:{key}"}
               for key, label in SNOOZE_LABELS.items()]
    return {"type": "static_select", "action_id": Action.SNOOZE.value,
            "placeholder": {"type": "plain_text", "text": "Snooze"}, "options": options}


def _links(urls: list[tuple[str, str | None]]) -> list[dict[str, Any]]:
    """URL buttons, each action_id unique within the block (Slack refuses duplicates)."""
    found = [(text, checked) for text, url in urls if (checked := web_url(url))]
    return [{**_button(text, Action.LINK, url=url), "action_id": f"{Action.LINK}-{index}"}
            for index, (text, url) in enumerate(found)]


def _facts(alert: Alert) -> dict[str, Any]:
    fields = [{"type": "mrkdwn", "text": clip(f"*{label}*\n{escape(value)}", FIELD_MAX)}
              for label, value in alert_facts(alert)]
    return {"type": "section", "fields": fields[:10]}


def alert_state(alert: Alert, now: datetime) -> str:
    """Who did what to the alert, from its record."""
    lines = []
    if alert.status == AlertStatus.RESOLVED:
        lines.append(f"Resolved by {alert.resolved_by or 'the monitor'}")
    elif alert.acknowledged_by:
        lines.append(f"Acknowledged by {alert.acknowledged_by}")
    if alert.status != AlertStatus.RESOLVED and alert.snoozed_until and alert.snoozed_until > now:
        lines.append(f"Snoozed by {alert.snoozed_by or '-'} until {when(alert.snoozed_until)}")
    return escape(" · ".join(lines))


def alert_buttons(alert: Alert, now: datetime) -> list[dict[str, Any]]:
    """Acknowledge while open, Resolve and Snooze until resolved (each action's own button
    goes once it is done), Open run always."""
    found = []
    if alert.status == AlertStatus.OPEN:
        found.append(_button("Acknowledge", Action.ACKNOWLEDGE, str(alert.id), "primary"))
    if alert.status != AlertStatus.RESOLVED:
        found.append(_button("Resolve", Action.RESOLVE, str(alert.id)))
        if not (alert.snoozed_until and alert.snoozed_until > now):
            found.append(_snooze_select(alert))
    return found + _links([("Open run", alert.run_url)]) if found else []


def task_links(task: HumanTask, browser_url: str) -> list[tuple[str, str | None]]:
    """The task's pages behind the Command Center's login: a channel may hold guests, so
    never the packet's unauthenticated /reports address."""
    base = browser_url.rstrip("/")
    packet = (f"{base}/center/models/{quote(task.model, safe='')}/versions/{task.number}/packet"
              if task.detail.get("packet_url") else None)
    return [("Evidence", f"{base}/center/tasks/{task.id}"), ("Evidence packet", packet),
            ("Open run", str(task.detail.get("run_url") or "") or None)]


def decision_buttons(alert: Alert, task: HumanTask) -> list[dict[str, Any]]:
    styles = {"approve": "primary", "retry": "primary", "reject": "danger", "abort": "danger"}
    return [{**_button(choice.capitalize(), Action.DECIDE, f"{alert.id}:{task.id}:{choice}",
                       styles.get(choice)), "action_id": f"{Action.DECIDE}-{index}"}
            for index, choice in enumerate(task.choices)]


def decision_line(made: TaskDecision) -> str:
    verdict = "accepted" if made.accepted else f"REFUSED: {made.refusal}"
    why = f" — “{clip(made.comment, 300)}”" if made.comment else ""
    return escape(f"{made.decision} by {made.actor} via {made.via} at {when(made.at)}: "
                  f"{verdict}{why}")


def task_state(task: HumanTask, decisions: list[TaskDecision]) -> list[dict[str, Any]]:
    lines = [decision_line(d) for d in decisions[-DECISIONS_SHOWN:]]
    if task.status == TaskStatus.OPEN:
        status = f"*Waiting* for {task.quorum} of {escape(', '.join(task.groups) or 'any')}"
    else:
        status = f"*{task.status.upper()}* at {when(task.closed_at or task.created_at)}: " \
                 f"{escape(task.outcome)}"
    return [_section(status + ("\n" + "\n".join(lines) if lines else ""))]


def alert_message(alert: Alert, now: datetime, task: HumanTask | None = None,
                  decisions: list[TaskDecision] | None = None,
                  browser_url: str = "") -> dict[str, Any]:
    """The message of an alert as its records say now: facts, who did what, and the buttons
    still useful; a waiting task's message carries its decisions and evidence links instead."""
    resolved = alert.status == AlertStatus.RESOLVED
    title = ("[RESOLVED] " if resolved else f"[{alert.severity.upper()}] ") + alert.title
    blocks = [_header(title), _facts(alert)]
    if alert.detail:
        blocks.append(_section(escape(alert.detail)))
    if task is not None:
        blocks += task_state(task, decisions or [])
        open_task = task.status == TaskStatus.OPEN and not resolved
        elements = (decision_buttons(alert, task) if open_task else []) + _links(
            task_links(task, browser_url))
    else:
        state = alert_state(alert, now)
        if state:
            blocks.append(_context(state))
        elements = alert_buttons(alert, now)
    for start in range(0, len(elements), ACTIONS_MAX):
        blocks.append({"type": "actions", "block_id": f"mlc-alert-{alert.id}-{start}",
                       "elements": elements[start:start + ACTIONS_MAX]})
    text = f"{title} ({alert.model}{f':{alert.version}' if alert.version else ''})"
    return {"text": clip(escape(text), TEXT_MAX), "blocks": blocks[:BLOCKS_MAX]}


def done_note(message: dict[str, Any], note: str) -> dict[str, Any]:
    """The message with a line saying who just did what and when (kept out of the records'
    rendering: it is the click's own news)."""
    blocks = list(message["blocks"])
    at = next((i for i, b in enumerate(blocks) if b["type"] == "actions"), len(blocks))
    blocks.insert(at, _context(escape(note)))
    return {**message, "blocks": blocks[:BLOCKS_MAX]}


# ---------------------------------------------------------------- the decision modal


def decision_modal(task: HumanTask, decision: str, alert_id: int, message: str,
                   browser_url: str) -> dict[str, Any]:
    """The modal that asks for the decision's comment (or its reason: required to reject or
    abort); private_metadata carries what the submission acts on."""
    reason = decision in NEEDS_REASON
    label = "Reason (required)" if reason else "Comment"
    metadata = json.dumps({"alert": alert_id, "task": task.id, "decision": decision,
                           "message": message})
    links = " · ".join(f"<{url}|{text}>" for text, raw in task_links(task, browser_url)
                       if (url := web_url(raw)))
    summary = escape(f"{decision.capitalize()} {task.kind} task {task.id} for {task.ref} "
                     f"({task.step}).")
    return {
        "type": "modal", "callback_id": DECISION_CALLBACK, "private_metadata": metadata,
        "title": {"type": "plain_text", "text": clip(f"{decision.capitalize()} {task.ref}",
                                                     MODAL_TITLE_MAX)},
        "submit": {"type": "plain_text", "text": clip(decision.capitalize(), MODAL_TITLE_MAX)},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [_section(summary + (f"\n{links}" if links else "")),
                   {"type": "input", "block_id": COMMENT_BLOCK, "optional": not reason,
                    "label": {"type": "plain_text", "text": label},
                    "element": {"type": "plain_text_input", "action_id": COMMENT_ACTION,
                                "multiline": True, "max_length": COMMENT_MAX}}],
    }
