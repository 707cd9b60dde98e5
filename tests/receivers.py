"""A loopback HTTP receiver for tests: stands in for Slack, ServiceNow or any webhook.

    with serve() as receiver:                      # http://127.0.0.1:<free port>, own thread
        receiver.script("/hook", Reply(500), Reply(500), Reply(500), Reply(200))
        receiver.script("/old", Reply.redirect(receiver.url + "/new"))
        receiver.script("/api/items/*", lambda request: Reply(200, json={"id": request.path}))
        ...                                        # call receiver.url + "/hook"
        assert [r.method for r in receiver.requests_to("/hook")] == ["POST"] * 4

``script(path, *replies)`` answers requests to ``path`` with the replies in order and repeats
the last one; a reply may be a callable ``Recorded -> Reply`` (for a small stateful fake). A
path ending in ``*`` matches by prefix. Unscripted paths answer ``200 ok``. Every request is
recorded, scripted or not. Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import json as jsonlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Recorded:
    """One request as the receiver saw it. Header names are lower-case; query is single-valued."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


@dataclass(frozen=True)
class Reply:
    """What to answer: a status, a JSON or raw body, headers, and an optional delay in seconds."""

    status: int = 200
    json: Any = None
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, body=b"", headers={"Location": location})

    def payload(self) -> tuple[bytes, str]:
        if self.json is not None:
            return jsonlib.dumps(self.json).encode(), "application/json"
        return self.body, "text/plain"


Responder = Reply | Callable[[Recorded], Reply]


class Receiver:
    """The running receiver: its base URL, the requests it recorded, and its scripts."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self._server = server
        self._lock = threading.Lock()
        self._recorded: list[Recorded] = []
        self._scripts: dict[str, list[Responder]] = {}
        self._closed = False

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._recorded)

    def requests_to(self, path: str) -> list[Recorded]:
        return [request for request in self.requests if request.path == path]

    def script(self, path: str, *replies: Responder) -> None:
        if not replies:
            raise ValueError("script needs at least one reply")
        with self._lock:
            self._scripts[path] = list(replies)

    def close(self) -> None:
        """Stop listening: later connections to ``url`` are refused. Safe to call twice."""
        if not self._closed:
            self._closed = True
            self._server.shutdown()
            self._server.server_close()

    def answer(self, request: Recorded) -> Reply:
        with self._lock:
            self._recorded.append(request)
            queue = self._find_script(request.path)
            responder = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else Reply()
        return responder(request) if callable(responder) else responder

    def _find_script(self, path: str) -> list[Responder] | None:
        if path in self._scripts:
            return self._scripts[path]
        prefixes = [key for key in self._scripts if key.endswith("*") and path.startswith(key[:-1])]
        return self._scripts[max(prefixes, key=len)] if prefixes else None


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        target = urlsplit(self.path)
        request = Recorded(
            method=self.command,
            path=target.path,
            query=dict(parse_qsl(target.query)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length),
        )
        reply = self.receiver.answer(request)
        time.sleep(reply.delay)
        body, content_type = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read ``Receiver.requests`` instead."""


@contextmanager
def serve() -> Iterator[Receiver]:
    """Run a receiver on 127.0.0.1 on a free port for the duration of the ``with`` block."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    receiver = Receiver(server)
    handler.receiver = receiver
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield receiver
    finally:
        receiver.close()
        thread.join(timeout=5)
