"""Credentials for raw calls to Prefect's REST API, which `mlc up` starts with auth on: basic
auth with PREFECT_API_AUTH_STRING as Prefect's own client sends it, and the CSRF token its
server asks of every change (POST, PUT, PATCH, DELETE) when CSRF protection is on.

Plain httpx: the commands and `mlc up` that call Prefect this way do not import Prefect."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Generator
from pathlib import Path

import httpx

from mlc_tasks.errors import PrefectAuthError

AUTH_ENV = "PREFECT_API_AUTH_STRING"
AUTH_FILE = "prefect-auth"  # under MLC_HOME, written by `mlc up` (mode 0600)
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def auth_headers(auth_string: str | None = None) -> dict[str, str]:
    """The Authorization header for `auth_string` (default: PREFECT_API_AUTH_STRING), or none
    when there is no auth string (a Prefect server with auth off)."""
    value = auth_string if auth_string is not None else os.environ.get(AUTH_ENV)
    if not value:
        return {}
    return {"Authorization": f"Basic {base64.b64encode(value.encode()).decode()}"}


def stored_auth(home: Path) -> str | None:
    """The auth string `mlc up` keeps under this home, when this user may read it."""
    from mlc_tasks.settings import refuse_open_secret

    path = home / AUTH_FILE
    try:
        refuse_open_secret(path)
        return path.read_text().strip() or None
    except OSError:  # none yet, or another user's installation
        return None


class PrefectAuth(httpx.Auth):
    """httpx auth for one Prefect API: basic auth on every request, and a CSRF token on every
    change, fetched once and again when the server says it expired. A server with CSRF off
    answers 422 to the token request; then none is sent. A 401 is a PrefectAuthError."""

    requires_response_body = True

    def __init__(self, api_url: str, auth_string: str | None = None) -> None:
        self.api = api_url.rstrip("/")
        self.headers = auth_headers(auth_string)
        self.client = str(uuid.uuid4())
        self.token: str | None = None
        self.csrf = True

    def auth_flow(self, request: httpx.Request
                  ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers)
        if request.method in CHANGES and self.csrf and self.token is None:
            yield from self._fetch_token()
        self._sign(request)
        response = yield request
        if response.status_code == 403 and "CSRF" in response.text and self.csrf:
            yield from self._fetch_token()  # expired: once more with a fresh one
            self._sign(request)
            response = yield request
        self._check(response)

    def _fetch_token(self) -> Generator[httpx.Request, httpx.Response, None]:
        answer = yield httpx.Request("GET", f"{self.api}/csrf-token",
                                     params={"client": self.client}, headers=self.headers)
        self._check(answer)
        try:
            self.token = str(answer.json()["token"]) if answer.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            self.token = None
        # 422 "CSRF protection is disabled", or no server of Prefect's: send none from now on
        self.csrf = self.token is not None or answer.status_code >= 500

    def _sign(self, request: httpx.Request) -> None:
        if request.method in CHANGES and self.token is not None:
            request.headers["Prefect-Csrf-Token"] = self.token
            request.headers["Prefect-Csrf-Client"] = self.client

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise PrefectAuthError(
                f"the Prefect server at {self.api} refused "
                f"{'our credentials' if self.headers else 'a call without credentials'} "
                f"(HTTP 401): set {AUTH_ENV} to its auth string (`mlc up` keeps it in "
                f"MLC_HOME/{AUTH_FILE})")
