"""Alert channels: Slack incoming webhooks, ServiceNow's Table API, and a signed JSON webhook.

Every channel has a ``name`` and ``send(alert, kind) -> str | None`` (an external reference,
such as the ServiceNow sys_id, or None). Every URL passes ``outbound.check_url`` before a
connection is made, and no redirect is followed. Failures raise
``DeliveryFailedError`` (408, 429, 5xx, timeout, connection refused: retry later) or
``PermanentDeliveryError`` (a redirect, 400, 401, 403, 404 and other 4xx: do not retry), with the
channel name, the status and a short reason. No message or log line holds a webhook URL's path, a
token or a password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import re
import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, urlsplit
from urllib.request import HTTPHandler, HTTPSHandler, OpenerDirector, Request

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError
from slack_sdk.webhook import WebhookClient, WebhookResponse

from mlc_tasks.alert_records import Alert
from mlc_tasks.errors import (
    DeliveryFailedError,
    InvalidInputError,
    NotFoundError,
    PermanentDeliveryError,
)
from mlc_tasks.outbound import OutboundPolicy, check_url, outbound_client

logger = logging.getLogger(__name__)

Kind = Literal["opened", "repeated", "resolved"]

SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_BLOCKS_MAX = 50
SERVICENOW_SHORT_MAX = 160
INCIDENT_RESOLVED = "6"
TASK_CLOSED_COMPLETE = "3"
URGENCY = {"critical": "1", "warning": "2", "info": "3"}


class Channel(Protocol):
    name: str

    def send(self, alert: Alert, kind: Kind) -> str | None: ...


# ---------------------------------------------------------------- failures


def raise_for_delivery(channel: str, status: int, reason: str) -> None:
    """Classify an HTTP status: 2xx passes; the rest raise a transient or permanent error."""
    if 200 <= status < 300:
        return
    if 300 <= status < 400:
        raise PermanentDeliveryError(f"{channel}: HTTP {status}: redirect refused")
    if status in (408, 429) or status >= 500:
        raise DeliveryFailedError(f"{channel}: HTTP {status}: {reason}")
    raise PermanentDeliveryError(f"{channel}: HTTP {status}: {reason}")


def short_reason(text: str, secrets: Iterable[str]) -> str:
    """A response body cut to one short line, with any of ``secrets`` blanked out."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:120] or "no reason given"


def url_secrets(url: str) -> list[str]:
    """The URL and the parts of it that may be secret: path segments and query values."""
    parts = urlsplit(url)
    pieces = parts.path.split("/") + [value for _, value in parse_qsl(parts.query)]
    return [url, parts.path, parts.query] + [piece for piece in pieces if len(piece) >= 6]


@contextmanager
def _io_errors(channel: str) -> Iterator[None]:
    """Turn I/O failures into DeliveryFailedError, naming only the kind of failure."""
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise DeliveryFailedError(f"{channel}: timed out") from exc
    except (httpx.TransportError, OSError, http.client.HTTPException) as exc:
        cause = getattr(exc, "reason", None)
        kind = type(cause if isinstance(cause, BaseException) else exc).__name__
        raise DeliveryFailedError(f"{channel}: connection failed ({kind})") from exc


# ---------------------------------------------------------------- message text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _model_ref(alert: Alert) -> str:
    return alert.model if alert.version is None else f"{alert.model}:{alert.version}"


def alert_facts(alert: Alert) -> list[tuple[str, str]]:
    """The facts every channel shows, as (label, value) pairs."""
    metric = f"{alert.metric or alert.monitor}: {_number(alert.value)}"
    if alert.threshold is not None:
        metric += f" vs threshold {_number(alert.threshold)}"
    return [
        ("Model", _model_ref(alert)),
        ("Source", f"{alert.source} ({alert.monitor})"),
        ("Metric", metric + (f", window {alert.window}" if alert.window else "")),
        ("Count", str(alert.count)),
        ("First seen", alert.first_seen.isoformat(timespec="seconds")),
        ("Last seen", alert.last_seen.isoformat(timespec="seconds")),
    ]


# ---------------------------------------------------------------- Slack


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(mrkdwn, SLACK_TEXT_MAX)}}


def _header(text: str) -> dict[str, Any]:
    plain = {"type": "plain_text", "text": _clip(text, SLACK_HEADER_MAX)}
    return {"type": "header", "text": plain}


def _run_link(run_url: str | None) -> dict[str, Any] | None:
    if not run_url or not run_url.startswith(("https://", "http://")):
        return None
    url = run_url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")
    link = f"<{url}|Open the run in Prefect>"
    return _section(link) if len(link) <= SLACK_TEXT_MAX else None


def slack_message(alert: Alert, kind: Kind) -> dict[str, Any]:
    """A Block Kit message with a plain-text fallback, within Slack's size limits."""
    if kind == "resolved":
        blocks, text = _resolved_blocks(alert)
    else:
        blocks, text = _alert_blocks(alert, still_open=kind == "repeated")
    link = _run_link(alert.run_url)
    if link:
        blocks.append(link)
    return {"text": _clip(_escape(text), SLACK_TEXT_MAX), "blocks": blocks[:SLACK_BLOCKS_MAX]}


def _alert_blocks(alert: Alert, still_open: bool) -> tuple[list[dict[str, Any]], str]:
    title = f"[{alert.severity.upper()}] {alert.title}" + (" (still open)" if still_open else "")
    facts = alert_facts(alert)
    fields = [{"type": "mrkdwn", "text": _clip(f"*{label}*\n{_escape(value)}", SLACK_FIELD_MAX)}
              for label, value in facts]
    blocks = [_header(title), {"type": "section", "fields": fields}]
    if alert.detail:
        blocks.append(_section(_escape(alert.detail)))
    text = f"{title}: " + "; ".join(f"{label} {value}" for label, value in facts[:3])
    return blocks, text


def _resolved_blocks(alert: Alert) -> tuple[list[dict[str, Any]], str]:
    who = alert.resolved_by or "the monitor"
    line = f"{_model_ref(alert)} · {alert.source}: resolved by {who}"
    blocks = [_header(f"[RESOLVED] {alert.title}"), _section(_escape(line))]
    return blocks, f"Resolved: {alert.title} ({_model_ref(alert)})"


def _silent_logger() -> logging.Logger:
    """A logger outside the logging tree that drops everything slack_sdk would say.

    slack_sdk logs the full webhook URL (the secret) when its logger is at DEBUG, when it
    retries ("Going to retry the same request: POST https://hooks…") and on proxy detection.
    """
    silent = logging.Logger("mlc_tasks.channels.slack_sdk", level=logging.CRITICAL + 1)
    silent.disabled = True
    return silent


class _NoRedirectWebhookClient(WebhookClient):
    """slack_sdk's webhook client sent through an opener that cannot follow redirects.

    WebhookClient opens connections with urllib's ``urlopen`` (or ``build_opener`` with a
    proxy); both include HTTPRedirectHandler, which follows 301/302/303 by re-sending the POST
    as a GET to the Location, and ProxyHandler, which reads HTTPS_PROXY. Its constructor takes no
    opener, so this overrides the one method that opens the connection (slack-sdk 3.48; the test
    ``test_slack_does_not_follow_redirects`` fails if a new version stops calling it). The opener
    has no redirect, proxy or error handler: every status comes back as a response.
    """

    def __init__(self, url: str, timeout: float) -> None:
        # urllib takes a float timeout; slack_sdk annotates it as int.
        super().__init__(url, timeout=timeout, logger=_silent_logger(),  # type: ignore[arg-type]
                         retry_handlers=[])
        self._opener = OpenerDirector()
        self._opener.add_handler(HTTPHandler())
        self._opener.add_handler(HTTPSHandler(context=ssl.create_default_context()))

    def _perform_http_request_internal(self, url: str, req: Request) -> WebhookResponse:
        with self._opener.open(req, timeout=self.timeout) as http_resp:
            charset = http_resp.headers.get_content_charset() or "utf-8"
            body = http_resp.read().decode(charset, errors="replace")
            headers = dict(http_resp.headers.items())
            return WebhookResponse(url=url, status_code=http_resp.status, body=body,
                                   headers=headers)


class SlackChannel:
    """Slack through an incoming webhook (slack_sdk's WebhookClient, without retries)."""

    def __init__(self, webhook_url: SecretStr, policy: OutboundPolicy, timeout: float = 10.0,
                 name: str = "slack") -> None:
        self.name = name
        self._url = webhook_url
        self._policy = policy
        self._timeout = timeout

    def send(self, alert: Alert, kind: Kind) -> str | None:
        url = self._url.get_secret_value()
        check_url(url, self._policy)
        client = _NoRedirectWebhookClient(url, self._timeout)
        with _io_errors(self.name):
            response = client.send_dict(slack_message(alert, kind))
        reason = short_reason(response.body, url_secrets(url))
        raise_for_delivery(self.name, response.status_code, reason)
        logger.info("%s: delivered alert %s (%s)", self.name, alert.id, kind)
        return None


# ---------------------------------------------------------------- ServiceNow


class BasicAuth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str
    password: SecretStr


class OAuthClientCredentials(BaseModel):
    """OAuth client credentials; the token comes from {instance}/oauth_token.do."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    client_id: str
    client_secret: SecretStr


class _TokenResponse(BaseModel):
    access_token: str
    expires_in: float = 0.0


_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,100}")


def _checked_name(value: str, what: str) -> str:
    """Table names and task ids go into paths and encoded queries: no ^, =, / or spaces."""
    if not _NAME.fullmatch(value):
        raise InvalidInputError(f"{what} {value!r} must match {_NAME.pattern}")
    return value


def incident_fields(alert: Alert) -> dict[str, str]:
    """The fields of a new incident for an alert; correlation_id is the fingerprint."""
    facts = "\n".join(f"{label}: {value}" for label, value in alert_facts(alert))
    run = f"\nRun: {alert.run_url}" if alert.run_url else ""
    short = f"[{alert.severity.upper()}] {alert.model}: {alert.title}"
    return {
        "correlation_id": alert.fingerprint,
        "short_description": _clip(short, SERVICENOW_SHORT_MAX),
        "description": f"{alert.title}\n\n{facts}{run}\n\n{alert.detail}".strip(),
        "urgency": URGENCY[alert.severity],
        "impact": URGENCY[alert.severity],
    }


def _servicenow_reason(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase


def _result(response: httpx.Response, channel: str) -> Any:
    try:
        return response.json()["result"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DeliveryFailedError(f"{channel}: the answer was not Table API JSON") from exc


class ServiceNowChannel:
    """An incident per alert fingerprint, and a task per human approval, over the Table API."""

    def __init__(self, instance_url: str, auth: BasicAuth | OAuthClientCredentials,
                 policy: OutboundPolicy, timeout: float = 10.0, incident_table: str = "incident",
                 task_table: str = "sc_task", close_code: str = "Solution provided",
                 name: str = "servicenow") -> None:
        self.name = name
        self._base = instance_url.rstrip("/")
        self._auth = auth
        self._policy = policy
        self._timeout = timeout
        self._incidents = _checked_name(incident_table, "incident_table")
        self._tasks = _checked_name(task_table, "task_table")
        self._close_code = close_code
        self._token: tuple[str, float] | None = None

    def send(self, alert: Alert, kind: Kind) -> str | None:
        _checked_name(alert.fingerprint, "fingerprint")
        with outbound_client(self._policy, self._timeout) as client:
            sys_id = self._find(client, self._incidents, alert.fingerprint)
            if kind == "resolved":
                return self._resolve_incident(client, sys_id, alert)
            if sys_id is None:
                sys_id = self._create(client, self._incidents, incident_fields(alert))
                logger.info("%s: opened incident %s for alert %s", self.name, sys_id, alert.id)
                return sys_id
            note = f"Seen again: count {alert.count}, last seen {alert.last_seen.isoformat()}"
            self._update(client, self._incidents, sys_id, {"work_notes": note})
        logger.info("%s: updated incident %s for alert %s", self.name, sys_id, alert.id)
        return sys_id

    def open_task(self, task_id: str, short_description: str, description: str) -> str:
        """Open the task for a human decision; a second call returns the same record's sys_id."""
        _checked_name(task_id, "task_id")
        with outbound_client(self._policy, self._timeout) as client:
            sys_id = self._find(client, self._tasks, task_id)
            if sys_id is None:
                sys_id = self._create(client, self._tasks, {
                    "correlation_id": task_id, "description": description,
                    "short_description": _clip(short_description, SERVICENOW_SHORT_MAX)})
        logger.info("%s: task %s is %s %s", self.name, task_id, self._tasks, sys_id)
        return sys_id

    def close_task(self, task_id: str, outcome: str) -> None:
        """Close the task as complete with the decision as its close notes."""
        _checked_name(task_id, "task_id")
        with outbound_client(self._policy, self._timeout) as client:
            sys_id = self._find(client, self._tasks, task_id)
            if sys_id is None:
                raise NotFoundError(f"{self.name}: no {self._tasks} record for task {task_id}")
            self._update(client, self._tasks, sys_id, {
                "state": TASK_CLOSED_COMPLETE, "close_notes": outcome})
        logger.info("%s: closed task %s (%s): %s", self.name, task_id, sys_id, outcome)

    def _resolve_incident(self, client: httpx.Client, sys_id: str | None,
                          alert: Alert) -> str | None:
        if sys_id is None:
            logger.warning("%s: no incident to resolve for alert %s", self.name, alert.id)
            return None
        notes = f"Alert {alert.id} resolved by {alert.resolved_by or 'the monitor'}"
        self._update(client, self._incidents, sys_id, {
            "state": INCIDENT_RESOLVED, "close_code": self._close_code, "close_notes": notes})
        logger.info("%s: resolved incident %s for alert %s", self.name, sys_id, alert.id)
        return sys_id

    def _find(self, client: httpx.Client, table: str, correlation_id: str) -> str | None:
        params = {"sysparm_query": f"correlation_id={correlation_id}^ORDERBYDESCsys_created_on",
                  "sysparm_limit": "1", "sysparm_fields": "sys_id"}
        rows = _result(self._request(client, "GET", f"/api/now/table/{table}", params=params),
                       self.name)
        return str(rows[0]["sys_id"]) if rows else None

    def _create(self, client: httpx.Client, table: str, fields: dict[str, str]) -> str:
        response = self._request(client, "POST", f"/api/now/table/{table}", json=fields)
        return str(_result(response, self.name)["sys_id"])

    def _update(self, client: httpx.Client, table: str, sys_id: str,
                fields: dict[str, str]) -> None:
        self._request(client, "PATCH", f"/api/now/table/{table}/{sys_id}", json=fields)

    def _request(self, client: httpx.Client, method: str, path: str,
                 **kwargs: Any) -> httpx.Response:
        with _io_errors(self.name):
            response = client.request(method, self._base + path, headers=self._headers(client),
                                      **kwargs)
            if response.status_code == 401 and self._token is not None:
                self._token = None  # revoked or expired early: one more try with a new token
                response = client.request(method, self._base + path,
                                          headers=self._headers(client), **kwargs)
        raise_for_delivery(self.name, response.status_code, self._reason(response))
        return response

    def _headers(self, client: httpx.Client) -> dict[str, str]:
        if isinstance(self._auth, BasicAuth):
            pair = f"{self._auth.user}:{self._auth.password.get_secret_value()}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode()
        else:
            authorization = "Bearer " + self._bearer_token(client, self._auth)
        return {"Accept": "application/json", "Authorization": authorization}

    def _bearer_token(self, client: httpx.Client, auth: OAuthClientCredentials) -> str:
        now = time.monotonic()
        if self._token is not None and self._token[1] > now:
            return self._token[0]
        form = {"grant_type": "client_credentials", "client_id": auth.client_id,
                "client_secret": auth.client_secret.get_secret_value()}
        with _io_errors(self.name):
            response = client.post(self._base + "/oauth_token.do", data=form,
                                   headers={"Accept": "application/json"})
        raise_for_delivery(f"{self.name} token", response.status_code, self._reason(response))
        try:
            token = _TokenResponse.model_validate_json(response.content)
        except ValidationError as exc:
            raise PermanentDeliveryError(f"{self.name}: the token answer has no token") from exc
        early = min(60.0, token.expires_in / 10)  # renew a little before it expires
        self._token = (token.access_token, now + token.expires_in - early)
        logger.info("%s: got an OAuth token valid for %ss", self.name, int(token.expires_in))
        return token.access_token

    def _reason(self, response: httpx.Response) -> str:
        secrets = [self._token[0] if self._token else ""]
        if isinstance(self._auth, BasicAuth):
            secrets.append(self._auth.password.get_secret_value())
        else:
            secrets.append(self._auth.client_secret.get_secret_value())
        return short_reason(_servicenow_reason(response), secrets)


# ---------------------------------------------------------------- signed webhook


def webhook_body(alert: Alert, kind: Kind) -> bytes:
    """The JSON body: the kind of notification and the whole alert record."""
    return json.dumps({"kind": kind, "alert": alert.model_dump(mode="json")}).encode()


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 over ``timestamp.body``, keyed with the shared secret."""
    signed = f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


class WebhookChannel:
    """A generic JSON webhook, signed with X-MLC-Timestamp and X-MLC-Signature headers."""

    def __init__(self, url: str | SecretStr, secret: SecretStr, policy: OutboundPolicy,
                 timeout: float = 10.0, name: str = "webhook") -> None:
        self.name = name
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self._secret = secret
        self._policy = policy
        self._timeout = timeout

    def send(self, alert: Alert, kind: Kind) -> str | None:
        url, secret = self._url.get_secret_value(), self._secret.get_secret_value()
        body = webhook_body(alert, kind)
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "X-MLC-Timestamp": str(timestamp),
                   "X-MLC-Signature": webhook_signature(secret, timestamp, body)}
        with outbound_client(self._policy, self._timeout) as client, _io_errors(self.name):
            response = client.post(url, content=body, headers=headers)
        raise_for_delivery(self.name, response.status_code,
                           short_reason(response.text, [*url_secrets(url), secret]))
        logger.info("%s: delivered alert %s (%s)", self.name, alert.id, kind)
        return None
