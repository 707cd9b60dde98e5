"""The `mlc` command's client of the control-plane API: where it answers (MLC_API_URL, default
the local `mlc up` at http://MLC_HOST:MLC_API_PORT), and the caller's token (MLC_TOKEN, else
the file `mlc login` wrote). Kept light: no settings class, no registry, no Prefect, so that a
command that only asks the API answers at once; urllib, not httpx, which takes a tenth of a
second to import and as long again per call to build its TLS context."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

from mlc_tasks.errors import (
    AccessDeniedError,
    InstallationNotFoundError,
    InvalidInputError,
    MlcError,
    NotFoundError,
    TransientError,
)

TIMEOUT_SECONDS = 180.0  # a decision waits for the flow's record
ERRORS: dict[int, type[MlcError]] = {400: InvalidInputError, 401: AccessDeniedError,
                                     403: AccessDeniedError, 404: NotFoundError,
                                     413: InvalidInputError, 422: InvalidInputError,
                                     503: TransientError}


def api_url(environ: Mapping[str, str] = os.environ) -> str:
    """As MlcSettings.installation_url() says, without building the settings."""
    given = environ.get("MLC_API_URL")
    if given:
        return given.rstrip("/")
    host = environ.get("MLC_HOST") or "127.0.0.1"
    return f"http://{host}:{environ.get('MLC_API_PORT') or 8700}"


def token_path(environ: Mapping[str, str] = os.environ) -> Path:
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "mlc" / "token"


def stored_token(environ: Mapping[str, str] = os.environ) -> str | None:
    """MLC_TOKEN, else the token `mlc login` kept (refused when others may read it)."""
    if environ.get("MLC_TOKEN"):
        return environ["MLC_TOKEN"].strip()
    path = token_path(environ)
    if not path.exists():
        return None
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise AccessDeniedError(f"token file {path} is open to group or others (mode "
                                f"{mode:04o}): `chmod 600 {path}`, or `mlc login` again")
    return path.read_text().strip() or None


def store_token(token: str, environ: Mapping[str, str] = os.environ) -> Path:
    """Keep the token for later commands, readable by this user only."""
    path = token_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".token.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(token + "\n")
    os.replace(temp, path)
    return path


def forget_token(environ: Mapping[str, str] = os.environ) -> Path | None:
    path = token_path(environ)
    if not path.exists():
        return None
    path.unlink()
    return path


class ApiClient:
    """One call per method; an error answer becomes our error with the API's message."""

    def __init__(self, url: str | None = None, token: str | None = None) -> None:
        self.url = url or api_url()
        self.token = token if token is not None else stored_token()

    def get(self, path: str, **params: Any) -> Any:
        given = {k: v for k, v in params.items() if v is not None}
        return self.call("GET", path + (f"?{urlencode(given)}" if given else ""))

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, json.dumps(body or {}).encode(), "application/json")

    def patch(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("PATCH", path, json.dumps(body).encode(), "application/json")

    def upload(self, path: str, content: bytes) -> Any:
        return self.call("POST", path, content, "application/gzip")

    def document(self, path: str) -> bytes:
        """A GET whose answer is a document (HTML), not JSON."""
        return self.call("GET", path, raw=True)  # type: ignore[no-any-return]

    def call(self, method: str, path: str, content: bytes | None = None,
             media_type: str | None = None, raw: bool = False) -> Any:
        request = Request(f"{self.url}{path}", data=content, method=method)
        if media_type:
            request.add_header("Content-Type", media_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 (http(s) only)
                body = answer.read()
                return body if raw else json.loads(body)
        except HTTPError as exc:
            raise failure(exc.code, exc.read(), self.token is not None) from exc
        except (URLError, ConnectionError) as exc:
            raise InstallationNotFoundError(
                f"no running installation answers at {self.url} (MLC_API_URL): start one "
                "with `make run` (or `mlc up`), or set MLC_API_URL to its API") from exc
        except TimeoutError as exc:
            raise TransientError(f"the API at {self.url} did not answer within "
                                 f"{TIMEOUT_SECONDS:.0f} s") from exc


def failure(status: int, body: bytes, had_token: bool) -> MlcError:
    try:
        detail: Any = json.loads(body).get("detail", body.decode(errors="replace"))
    except (ValueError, AttributeError):
        detail = body[:300].decode(errors="replace")
    if isinstance(detail, list):  # FastAPI's validation errors: name the fields
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                           for d in detail)
    if status == 401 and not had_token:
        detail = f"{detail}. Set MLC_TOKEN, or `mlc login` with your token"
    return ERRORS.get(status, MlcError)(str(detail))
