"""A loopback stand-in for Slack: its Web API (the methods the Slack app calls) as a real HTTP
server on 127.0.0.1, and interaction payloads signed the way Slack signs them.

    with serve() as receiver:
        slack = SlackApi(receiver, token="xoxb-test")    # MLC_SLACK_API_URL=slack.api_url
        ...                                               # the app posts an alert
        posted = slack.wait_for("chat.postMessage")
        body, headers = signed(SECRET, click(posted, "U0RITA", "Acknowledge"))
        httpx.post(f"{api}/slack/interactions", content=body, headers=headers)

Each Web API call must carry `Authorization: Bearer <token>` and a JSON body with the method's
required arguments, within Block Kit's limits; otherwise it answers {"ok": false, "error": …}
as Slack does. Every call is recorded; `calls(method)` gives the accepted ones' bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from tests.receivers import Receiver, Recorded, Reply

REQUIRED = {"chat.postMessage": ("channel", "text", "blocks"),
            "chat.update": ("channel", "ts", "text", "blocks"),
            "chat.postEphemeral": ("channel", "user", "text"),
            "views.open": ("trigger_id", "view")}


def block_problem(blocks: list[dict[str, Any]]) -> str | None:
    """What Slack would refuse in these blocks (the limits we rely on), or None."""
    if len(blocks) > 50:
        return "too many blocks"
    for block in blocks:
        if block["type"] == "header" and len(block["text"]["text"]) > 150:
            return "header too long"
        if block["type"] == "section" and len(block.get("text", {}).get("text", "")) > 3000:
            return "section too long"
        if block["type"] == "actions":
            elements = block["elements"]
            ids = [e["action_id"] for e in elements]
            if len(elements) > 25 or len(set(ids)) != len(ids):
                return "bad actions block"
            if any(len(e.get("text", {}).get("text", "")) > 75 for e in elements):
                return "button text too long"
    return None


class SlackApi:
    """The Web API on a receiver's /api/ path."""

    def __init__(self, receiver: Receiver, token: str) -> None:
        self.receiver, self.token = receiver, token
        self.api_url = receiver.url + "/api/"
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._accepted: list[tuple[str, dict[str, Any]]] = []
        receiver.script("/api/*", self._answer)

    def _answer(self, request: Recorded) -> Reply:
        method = request.path.removeprefix("/api/")
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(200, json={"ok": False, "error": "invalid_auth"})
        if method not in REQUIRED:
            return Reply(200, json={"ok": False, "error": "unknown_method"})
        if not request.headers.get("content-type", "").startswith("application/json"):
            return Reply(200, json={"ok": False, "error": "invalid_form_data"})
        body = request.json()
        missing = [name for name in REQUIRED[method] if not body.get(name)]
        problem = block_problem(body.get("blocks") or body.get("view", {}).get("blocks", []))
        if missing or problem:
            return Reply(200, json={"ok": False, "error": "invalid_arguments",
                                    "detail": problem or f"missing {missing}"})
        with self._lock:  # a posted message is recorded with the ts it was given
            ts = body.get("ts") or f"1700000000.{next(self._ts):06d}"
            self._accepted.append((method, {**body, "ts": ts} if "channel" in body else body))
        return Reply(200, json={"ok": True, "channel": body.get("channel"), "ts": ts})

    def calls(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for name, body in self._accepted if name == method]

    def wait_for(self, method: str, where: Callable[[dict[str, Any]], bool] = lambda _: True,
                 seconds: float = 60, after: int = 0) -> dict[str, Any]:
        """The first accepted call of `method` (past the first `after`) that satisfies
        `where`, once it has come."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [body for body in self.calls(method)[after:] if where(body)]
            if found:
                return found[0]
            time.sleep(0.1)
        raise AssertionError(f"no {method} call came within {seconds:.0f} s: "
                             f"{[r.path for r in self.receiver.requests]}")


# ---------------------------------------------------------------- what Slack sends us


def signed(secret: str, payload: dict[str, Any], timestamp: int | None = None
           ) -> tuple[bytes, dict[str, str]]:
    """The form body (payload=<json>) and headers of an interaction as Slack sends it: v0
    signature = HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def element(message: dict[str, Any], text: str) -> dict[str, Any]:
    """The button (or select) of the message with this text (or placeholder)."""
    for found in elements(message):
        label = found.get("text") or found.get("placeholder") or {}
        if label.get("text") == text:
            return found
    raise AssertionError(f"no '{text}' in {[e.get('text') for e in elements(message)]}")


def click(message: dict[str, Any], user: str, text: str, option: str | None = None
          ) -> dict[str, Any]:
    """A block_actions payload: `user` clicked `text` (choosing `option` of a select) on the
    message (as posted or last updated: its channel and ts)."""
    clicked = element(message, text)
    action: dict[str, Any] = {"action_id": clicked["action_id"], "type": clicked["type"],
                              "block_id": "b", "action_ts": f"{time.time():.6f}"}
    if option is not None:
        action["selected_option"] = next(o for o in clicked["options"]
                                         if o["text"]["text"] == option)
    else:
        action["value"] = clicked.get("value", "")
    ts = message["ts"]
    return {"type": "block_actions", "user": {"id": user, "username": "someone"},
            "team": {"id": "T0TEAM"}, "trigger_id": f"trigger-{time.time_ns()}",
            "channel": {"id": message["channel"]}, "message": {"ts": ts, "text": message["text"]},
            "container": {"type": "message", "message_ts": ts, "channel_id": message["channel"]},
            "actions": [action]}


def submission(view: dict[str, Any], user: str, comment: str | None) -> dict[str, Any]:
    """A view_submission payload: `user` submitted the modal with `comment` typed."""
    values = {block["block_id"]: {block["element"]["action_id"]: {
        "type": "plain_text_input", "value": comment}}
        for block in view["blocks"] if block["type"] == "input"}
    return {"type": "view_submission", "user": {"id": user}, "team": {"id": "T0TEAM"},
            "view": {**view, "id": "V0MODAL", "state": {"values": values}}}
