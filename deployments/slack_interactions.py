"""Slack's interactivity endpoint, POST /slack/interactions: the buttons of the Slack app's
messages (mlc_tasks/slack_messages.py) act here as the verified person who clicked.

A request counts only when Slack signed it: slack_sdk's SignatureVerifier checks the v0
HMAC-SHA256 of the raw body with the signing secret (constant-time, 5-minute window) before
anything is parsed; without a signing secret (and bot token) the endpoint answers 503 and
accepts nothing. Each signed body is taken once: its sha256 is a key of the notifications table
(the database decides which of two identical requests is first), kept longer than any signature
stays valid. The clicker is the policy's person whose slack_user_id is the payload's user.id; a
user nobody maps, a revoked principal, a refused action — each is audited (`slack.refused`) and
told to the clicker in an ephemeral message, with nothing else changed.

Slack waits 3 s for the answer. Acknowledge, resolve and snooze are registry writes done before
answering; the message update follows in the background. Approve / Reject / Retry / Abort (and
a question's choices) open a modal first (views.open must use the trigger_id within those 3 s):
every decision then carries the person's comment, a reason is required to reject or abort (a
stray click must not end a version), and the submission is answered at once while the decision
runs in the background through the control-plane API's own path (deployments/decide.py, a
minted proof, channel "slack"); the flow records it — accepted, or refused as for a
non-member or the submitter, with the reason — and the message is updated from the records."""

# no `from __future__ import annotations`: FastAPI must see the route's parameters' types
import hashlib
import logging
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from mlc_tasks import slack_messages as sm
from mlc_tasks.errors import MlcError, TransientError
from mlc_tasks.people import Person, PrincipalKind
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tables import NotificationRow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources, slack_app, slack_app_channel
from mlc_tasks.slack_app import SlackApp, SlackAppChannel
from mlc_tasks.task_records import CHOICE_PATTERN, TaskStatus

log = logging.getLogger(__name__)
MAX_BODY = 256 * 1024
# a signature is valid 5 minutes either side of its timestamp: keep each key longer than that
SEEN_FOR = timedelta(minutes=15)
KEY_PREFIX = "slack:"
# a record id as our buttons write it: ASCII digits a database integer holds (str.isdigit
# takes "²" and "١", int() then fails or reads another number)
RECORD_ID = re.compile(r"[1-9][0-9]{0,11}")


class Loose(BaseModel):
    """Slack sends much more than we read; what we read is typed."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Ref(Loose):
    id: str = Field(max_length=40)


class MessageRef(Loose):
    ts: str = Field(max_length=40)


class Option(Loose):
    value: str = Field(max_length=200)


class Clicked(Loose):
    action_id: str = Field(max_length=255)
    value: str = Field(default="", max_length=2000)
    selected_option: Option | None = None


class View(Loose):
    callback_id: str = Field(default="", max_length=255)
    private_metadata: str = Field(default="", max_length=3000)
    state: dict[str, Any] = Field(default_factory=dict)


class Interaction(Loose):
    type: str = Field(max_length=40)
    user: Ref
    trigger_id: str = Field(default="", max_length=255)
    channel: Ref | None = None
    message: MessageRef | None = None
    actions: list[Clicked] = Field(default_factory=list, max_length=5)
    view: View | None = None

    def where(self) -> str | None:
        """The clicked message as "channel:ts"."""
        return f"{self.channel.id}:{self.message.ts}" if self.channel and self.message else None


class DecisionMeta(Loose):
    """What the decision modal carries (its private_metadata, set by us)."""

    alert: int = Field(ge=1, lt=10**12)
    task: int = Field(ge=1, lt=10**12)
    decision: str = Field(pattern=CHOICE_PATTERN)
    message: str = Field(max_length=100)


class Refused(Exception):
    """A click that is not carried out: audited and told to the clicker."""


def record_id(text: str) -> int | None:
    """The id a button's value carries, or None when it is not one."""
    return int(text) if RECORD_ID.fullmatch(text) else None


def parse_interaction(body: bytes) -> Interaction:
    """The form's one `payload` field as an Interaction, or 400 naming what is wrong."""
    try:
        fields = parse_qs(body.decode(), strict_parsing=True, max_num_fields=5)
        (raw,) = fields["payload"]
        return Interaction.model_validate_json(raw)
    except (UnicodeDecodeError, ValueError, KeyError) as exc:
        what = exc.errors()[0]["loc"] if isinstance(exc, ValidationError) else "payload"
        raise HTTPException(400, f"not a Slack interaction payload ({what})") from None


async def signed_body(request: Request, secret: str) -> bytes:
    """The raw body, once Slack's signature over it is checked (401 otherwise)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > MAX_BODY:
        raise HTTPException(413, f"interaction payload over {MAX_BODY >> 10} KB or of no "
                                 "declared length")
    body = await request.body()  # uvicorn stops at the declared length
    try:
        valid = SignatureVerifier(secret).is_valid_request(body, dict(request.headers))
    except (ValueError, TypeError):  # a timestamp not a number, a signature not ASCII
        valid = False
    if not valid:
        raise HTTPException(401, "not signed by Slack: missing or wrong X-Slack-Signature, or "
                                 "X-Slack-Request-Timestamp not within 5 minutes")
    return body


class SlackDoor:
    """What a verified interaction does, for the person who clicked."""

    def __init__(self, ctx: Resources) -> None:
        self.ctx = ctx

    def signing_secret(self) -> str:
        """The signing secret, when the bot token is set too; 503 saying what to set."""
        try:
            secret = self.ctx.settings.resolved_slack_signing_secret() or (
                found.get_secret_value() if (found := self.ctx.secret(
                    None, "mlc-slack-signing-secret")) else None)
            app = self.app()
        except TransientError as exc:
            raise HTTPException(503, "Slack interactivity is off: MLC_SLACK_SIGNING_SECRET or "
                                     f"MLC_SLACK_BOT_TOKEN is not set, and {exc}") from None
        missing = [name for name, value in (("MLC_SLACK_SIGNING_SECRET", secret),
                                            ("MLC_SLACK_BOT_TOKEN", app)) if not value]
        if missing or not secret:
            raise HTTPException(503, f"Slack interactivity is off: set {' and '.join(missing)} "
                                     "(or the Prefect Secret blocks mlc-slack-signing-secret, "
                                     "mlc-slack-bot-token)")
        return secret

    def app(self) -> SlackApp | None:
        return slack_app(self.ctx.settings, self.ctx.secret)

    def channel(self, app: SlackApp) -> SlackAppChannel:
        return slack_app_channel(self.ctx.settings, app, lambda: self.ctx.registry)

    def claim(self, digest: str) -> bool:
        """Take this signed body once; False when it was taken before (a replay)."""
        now = utcnow()
        try:
            with self.ctx.registry.transaction() as session:
                session.execute(delete(NotificationRow).where(
                    NotificationRow.id.startswith(KEY_PREFIX),
                    NotificationRow.received_at < now - SEEN_FOR))
                session.add(NotificationRow(id=KEY_PREFIX + digest, model="slack",
                                            action="slack", body_sha256=digest, received_at=now))
                session.flush()
        except IntegrityError:
            return False
        return True

    def person(self, user_id: str) -> Person:
        """The policy's person with this Slack user id, enrolled and not revoked (or known
        only to the policy, as an SSO person)."""
        found = [p for p in self.ctx.policy().people if p.slack_user_id == user_id]
        if len(found) != 1:
            raise Refused(f"Slack user {user_id} is not mapped to a person of the policy "
                          "(people[].slack_user_id)" if not found else
                          f"Slack user {user_id} is mapped to {len(found)} people")
        enrolled = PrincipalBook(self.ctx.registry).get(found[0].id)
        if enrolled is not None and (not enrolled.active or enrolled.kind != PrincipalKind.PERSON):
            raise Refused(f"{found[0].id} was revoked (`mlc people enroll` again to restore)")
        return found[0]

    def refuse(self, given: Interaction, reason: str, actor: str | None,
               where: str | None, background: BackgroundTasks) -> None:
        """Audit the refusal now; tell the clicker after answering."""
        clicked = given.actions[0] if given.actions else None
        with self.ctx.registry.transaction() as session:
            self.ctx.registry.append_audit(
                session, actor=actor or f"slack:{given.user.id}", action="slack.refused",
                entity="slack-user", entity_id=given.user.id, model=None, reason=reason[:2000],
                detail={"type": given.type, "action": clicked.action_id if clicked else "",
                        "value": clicked.value if clicked else ""})
        log.warning("slack: %s by %s refused: %s", given.type, given.user.id, reason)
        if where is not None:
            background.add_task(self.tell, where, given.user.id, f"Not done: {reason}")

    def tell(self, where: str, user: str, text: str) -> None:
        app = self.app()
        if app is None:
            return
        try:
            app.tell(where.partition(":")[0], user, text)
        except MlcError as exc:
            log.warning("slack: could not tell %s: %s", user, exc)

    def update(self, where: str, alert_id: int, note: str = "") -> None:
        """Show the alert (and its task) as the records say now, with the click's news."""
        app = self.app()
        if app is None:
            return
        try:
            message = self.channel(app).message(AlertBook(self.ctx.registry).get(alert_id))
            app.update(where, sm.done_note(message, note) if note else message)
        except MlcError as exc:
            log.warning("slack: message of alert %d not updated: %s", alert_id, exc)

    # ---- block_actions ----------------------------------------------------------------------

    def click(self, given: Interaction, person: Person, background: BackgroundTasks) -> None:
        where = given.where()
        if not given.actions or where is None:
            raise Refused("the click names no action or message")
        clicked = given.actions[0]
        if clicked.action_id.startswith(sm.Action.LINK):
            return  # a URL button: Slack opened the link
        if clicked.action_id.startswith(sm.Action.DECIDE):
            self.open_decision(given, clicked.value, where)
            return
        alert_id, note = self.alert_action(clicked, person)
        background.add_task(self.update, where, alert_id, note)
        if clicked.action_id == sm.Action.RESOLVE:
            background.add_task(self.ctx.deliver_alerts)  # ServiceNow etc. are told too

    def alert_action(self, clicked: Clicked, person: Person) -> tuple[int, str]:
        book, now = AlertBook(self.ctx.registry), utcnow()
        who = f"{person.name} ({person.id})" if person.name else person.id
        if clicked.action_id == sm.Action.SNOOZE:
            raw = clicked.selected_option.value if clicked.selected_option else ""
            given, _, length = raw.partition(":")
            snoozed = record_id(given)
            if snoozed is None or length not in sm.SNOOZES:
                raise Refused(f"not a snooze choice: '{raw[:50]}'")
            until = now + sm.SNOOZES[length]
            book.snooze(snoozed, until, person.id)
            return snoozed, f"Snoozed by {who} at {sm.when(now)} until {sm.when(until)}"
        found = record_id(clicked.value)
        if clicked.action_id not in (sm.Action.ACKNOWLEDGE, sm.Action.RESOLVE) or found is None:
            raise Refused(f"unknown action '{clicked.action_id[:50]}'")
        alert_id = found
        if clicked.action_id == sm.Action.ACKNOWLEDGE:
            book.acknowledge(alert_id, person.id)
            return alert_id, f"Acknowledged by {who} at {sm.when(now)}"
        book.resolve(alert_id, person.id)
        return alert_id, f"Resolved by {who} at {sm.when(now)}"

    def open_decision(self, given: Interaction, value: str, where: str) -> None:
        parts = value.split(":")
        alert_id, task_id = (record_id(parts[0]), record_id(parts[1])) if len(parts) == 3 \
            else (None, None)
        if alert_id is None or task_id is None:
            raise Refused(f"not a decision: '{value[:50]}'")
        task = TaskBook(self.ctx.registry).get(task_id)
        if task.status != TaskStatus.OPEN:
            raise Refused(f"task {task.id} is already {task.status} ({task.outcome})")
        if parts[2] not in task.choices:
            raise Refused(f"'{parts[2][:20]}' does not answer task {task.id}")
        app = self.app()
        assert app is not None  # the route answers 503 without one
        app.open_view(given.trigger_id, sm.decision_modal(
            task, parts[2], alert_id, where, self.ctx.settings.browser_url()))

    # ---- view_submission --------------------------------------------------------------------

    def submit(self, given: Interaction, person: Person,
               background: BackgroundTasks) -> dict[str, Any]:
        assert given.view is not None
        try:
            meta = DecisionMeta.model_validate_json(given.view.private_metadata)
        except ValidationError as exc:
            raise Refused("the modal's metadata is not a decision") from exc
        typed = given.view.state.get("values", {}).get(sm.COMMENT_BLOCK, {}).get(
            sm.COMMENT_ACTION, {}).get("value") or ""
        comment = str(typed).strip()[:sm.COMMENT_MAX]
        if meta.decision in sm.NEEDS_REASON and not comment:
            return {"response_action": "errors",
                    "errors": {sm.COMMENT_BLOCK: f"Give the reason to {meta.decision}."}}
        background.add_task(self.decide, given.user.id, person, meta, comment)
        return {"response_action": "clear"}

    def decide(self, user: str, person: Person, meta: DecisionMeta, comment: str) -> None:
        """Decide for the person (the flow checks and records it), then show the outcome."""
        from deployments.decide import submit_decision

        try:
            made, _task = submit_decision(self.ctx, meta.task, person.id, meta.decision,
                                          comment, channel="slack")
        except MlcError as exc:
            reason = str(exc)
            with self.ctx.registry.transaction() as session:
                self.ctx.registry.append_audit(
                    session, actor=person.id, action="slack.refused", entity="task",
                    entity_id=str(meta.task), model=None, reason=reason[:2000],
                    detail={"decision": meta.decision, "slack_user": user})
            self.tell(meta.message, user, f"Your {meta.decision} of task {meta.task} was not "
                                          f"taken: {reason}")
            return
        self.update(meta.message, meta.alert)
        if not made.accepted:
            self.tell(meta.message, user, f"Your {meta.decision} of task {meta.task} was "
                                          f"refused: {made.refusal}")

    # ---- one interaction --------------------------------------------------------------------

    def handle(self, given: Interaction, digest: str, background: BackgroundTasks) -> Response:
        if not self.claim(digest):
            return JSONResponse({"detail": "this interaction was handled before (replayed)"},
                                status_code=409)
        person: Person | None = None
        try:
            person = self.person(given.user.id)
            if given.type == "block_actions":
                self.click(given, person, background)
                return Response(status_code=200)
            if given.type == "view_submission" and given.view is not None \
                    and given.view.callback_id == sm.DECISION_CALLBACK:
                return JSONResponse(self.submit(given, person, background))
            return Response(status_code=200)  # a modal closed, a shortcut: nothing to do
        except (Refused, MlcError) as exc:
            where = given.where() or self.meta_message(given)
            self.refuse(given, str(exc), person.id if person else None, where, background)
            if given.type == "view_submission":
                return JSONResponse({"response_action": "errors",
                                     "errors": {sm.COMMENT_BLOCK: str(exc)[:150]}})
            return Response(status_code=200)

    @staticmethod
    def meta_message(given: Interaction) -> str | None:
        try:
            return DecisionMeta.model_validate_json(given.view.private_metadata).message \
                if given.view else None
        except ValidationError:
            return None


def slack_router(ctx: Resources) -> APIRouter:
    router = APIRouter()
    door = SlackDoor(ctx)

    @router.post("/slack/interactions", include_in_schema=False)
    async def interactions(request: Request, background: BackgroundTasks) -> Response:
        secret = await run_in_threadpool(door.signing_secret)
        body = await signed_body(request, secret)
        given = parse_interaction(body)
        digest = hashlib.sha256(body).hexdigest()
        return await run_in_threadpool(door.handle, given, digest, background)

    return router

