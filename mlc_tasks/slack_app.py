"""The Slack app: a bot that posts alerts with buttons (chat.postMessage), updates them in place
(chat.update), tells one person something (chat.postEphemeral) and opens modals (views.open),
over slack_sdk's WebClient.

The bot token travels only in the Authorization header: no log line or error holds it (the
client's logger is silenced, as the webhook's, and errors are cut with the token blanked). Every
call's URL passes `outbound.check_url` first; no redirect is followed and no proxy from the
environment is used (the address checked must be the one connected to)."""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.request import HTTPHandler, HTTPSHandler, OpenerDirector, Request

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from mlc_tasks import slack_messages
from mlc_tasks.alert_records import Alert
from mlc_tasks.channels import Kind, _io_errors, _silent_logger, raise_for_delivery, short_reason
from mlc_tasks.errors import DeliveryFailedError, PermanentDeliveryError
from mlc_tasks.outbound import OutboundPolicy, check_url
from mlc_tasks.registry.store import utcnow
from mlc_tasks.task_records import HumanTask, TaskDecision

logger = logging.getLogger(__name__)

TRANSIENT = frozenset({"ratelimited", "service_unavailable", "fatal_error", "internal_error",
                       "request_timeout"})
TaskView = tuple[HumanTask, list[TaskDecision]]


class _NoRedirectWebClient(WebClient):
    """WebClient whose connections go through an opener without redirect, proxy or error
    handlers (slack-sdk 3.48 opens them in `_perform_urllib_http_request_internal`; the
    redirect test fails if a new version stops calling it): every status comes back as is."""

    def __init__(self, token: str, base_url: str, timeout: float) -> None:
        super().__init__(token=token, base_url=base_url, timeout=timeout,  # type: ignore[arg-type]
                         logger=_silent_logger(), retry_handlers=[])
        self.proxy = None
        self._opener = OpenerDirector()
        self._opener.add_handler(HTTPHandler())
        self._opener.add_handler(HTTPSHandler(context=ssl.create_default_context()))

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        with self._opener.open(req, timeout=self.timeout) as resp:
            charset = resp.headers.get_content_charset() or "utf-8"
            return {"status": resp.status, "headers": resp.headers,
                    "body": resp.read().decode(charset, errors="replace")}


class SlackApp:
    """Calls of Slack's Web API as the bot; failures raise DeliveryFailedError (try again) or
    PermanentDeliveryError, naming the method and Slack's error code only."""

    def __init__(self, token: SecretStr, api_url: str, policy: OutboundPolicy,
                 timeout: float = 10.0, name: str = "slack") -> None:
        self.name = name
        self._token = token
        self._base = api_url.rstrip("/") + "/"
        self._policy = policy
        self._timeout = timeout

    def call(self, method: str, **body: Any) -> dict[str, Any]:
        check_url(self._base + method, self._policy)
        token = self._token.get_secret_value()
        client = _NoRedirectWebClient(token, self._base, self._timeout)
        with _io_errors(self.name):
            try:
                answer = client.api_call(method, json=body)
            except SlackApiError as exc:
                raise self._failure(method, exc.response.status_code,
                                    exc.response.data) from None
            except (SlackClientError, json.JSONDecodeError, ValueError) as exc:
                raise PermanentDeliveryError(f"{self.name}: {method}: not a Web API answer "
                                             f"({type(exc).__name__})") from None
        return dict(answer.data) if isinstance(answer.data, dict) else {}

    def _failure(self, method: str, status: int, data: Any) -> Exception:
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        reason = short_reason(error or str(data)[:200], [self._token.get_secret_value()])
        where = f"{self.name} {method}"
        if status == 200:  # ok: false
            kind = DeliveryFailedError if error in TRANSIENT else PermanentDeliveryError
            return kind(f"{where}: {reason}")
        try:
            raise_for_delivery(where, status, reason)
        except (DeliveryFailedError, PermanentDeliveryError) as exc:
            return exc
        return PermanentDeliveryError(f"{where}: HTTP {status}: {reason}")

    def post(self, channel: str, message: dict[str, Any]) -> str:
        """Post; the message's reference, "channel:ts"."""
        answer = self.call("chat.postMessage", channel=channel, **message)
        return f"{answer.get('channel') or channel}:{answer['ts']}"

    def update(self, ref: str, message: dict[str, Any]) -> str:
        channel, ts = split_ref(ref)
        self.call("chat.update", channel=channel, ts=ts, **message)
        return ref

    def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral message: only `user` sees it."""
        self.call("chat.postEphemeral", channel=channel, user=user,
                  text=slack_messages.clip(slack_messages.escape(text), 3000))

    def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        self.call("views.open", trigger_id=trigger_id, view=view)


def split_ref(ref: str) -> tuple[str, str]:
    channel, _, ts = ref.partition(":")
    if not channel or not ts:
        raise PermanentDeliveryError(f"slack: '{ref[:50]}' is not a channel:ts reference")
    return channel, ts


class SlackAppChannel:
    """The alert channel of the Slack app: a new alert is posted with its buttons; a repeat
    or its resolution updates that message in place (found through `message_ref`, the earlier
    delivery's external_ref); a waiting task's alert shows its decisions (`task_view`)."""

    def __init__(self, app: SlackApp, channel: str, browser_url: str,
                 message_ref: Callable[[int], str | None],
                 task_view: Callable[[int], TaskView | None]) -> None:
        self.name = app.name
        self.app = app
        self._channel = channel
        self._browser_url = browser_url
        self._message_ref = message_ref
        self._task_view = task_view

    def message(self, alert: Alert, now: datetime | None = None) -> dict[str, Any]:
        task_id = slack_messages.task_id_of(alert)
        view = self._task_view(task_id) if task_id is not None else None
        task, decisions = view if view else (None, [])
        return slack_messages.alert_message(alert, now or utcnow(), task, decisions,
                                            self._browser_url)

    def send(self, alert: Alert, kind: Kind) -> str | None:
        message = self.message(alert)
        ref = self._message_ref(alert.id) if kind != "opened" else None
        if ref is not None:
            self.app.update(ref, message)
            logger.info("%s: updated the message of alert %s (%s)", self.name, alert.id, kind)
            return ref
        ref = self.app.post(self._channel, message)
        logger.info("%s: posted alert %s (%s) as %s", self.name, alert.id, kind, ref)
        return ref
