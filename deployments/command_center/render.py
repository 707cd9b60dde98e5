"""Pages from Jinja2 templates (autoescaped), the security headers every Command Center answer
carries, the one-time message shown after a form (a signed cookie: POST, redirect, GET), and
the route class that turns a refusal or one of our errors into a page."""

import base64
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markdown_it import MarkdownIt
from markupsafe import Markup

from deployments.command_center.session import PREFIX, PageError, Visitor, same_secret, seal
from mlc_tasks.errors import MlcError

FLASH = "mlc_flash"
STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store"}


class LoginRequired(Exception):
    """No session: the person is sent to the login page, then back to `path`."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def link(url: object) -> str:
    """A URL a page may link: http(s), or a path of this site; anything else (javascript:,
    data:) is no link at all."""
    text = str(url or "")
    if text.startswith("/") and not text.startswith("//"):
        return text
    return text if urlsplit(text).scheme in ("http", "https") else ""


# CommonMark with tables; raw HTML off (it is shown as text) and markdown-it's own link check
# (no javascript:, vbscript:, file: or data: links): the evidence is people's text
MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown(text: str) -> Markup:
    """The evidence a decider is shown, as the Prefect form shows it (rendered markdown)."""
    return Markup(MARKDOWN.render(text))  # noqa: S704 (html off: markdown-it escapes it all)


def when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "—"


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(link=link, when=when, q=lambda v: quote(str(v), safe=""),
                       markdown=markdown,
                       svg=lambda s: Markup(s))  # mlc_tasks/charts.py escapes every label
    env.globals["prefix"] = PREFIX
    return env


TEMPLATES = _environment()


def flash_cookie(key: str, kind: str, text: str) -> str:
    payload = base64.urlsafe_b64encode(json.dumps({"kind": kind, "text": text[:1500]})
                                       .encode()).decode()
    return f"{payload}.{seal(key, 'flash', payload)}"


def read_flash(key: str, request: Request) -> dict[str, str] | None:
    payload, _, mac = (request.cookies.get(FLASH) or "").partition(".")
    if not payload or not same_secret(mac, seal(key, "flash", payload)):
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, UnicodeDecodeError):
        return None
    return {"kind": str(found.get("kind", "")), "text": str(found.get("text", ""))}


def page(request: Request, key: str, template: str, visitor: Visitor | None,
         code: int = 200, **values: Any) -> HTMLResponse:
    flash = read_flash(key, request)
    html = TEMPLATES.get_template(template).render(visitor=visitor, flash=flash,
                                                   path=request.url.path, **values)
    response = HTMLResponse(html, status_code=code)
    if FLASH in request.cookies:
        response.delete_cookie(FLASH, path=PREFIX)
    return response


def redirect(key: str, to: str, kind: str | None = None, text: str = "") -> RedirectResponse:
    """303 to `to` (a path of ours), with a message for the next page."""
    response = RedirectResponse(to, status_code=303)
    if kind is not None:
        response.set_cookie(FLASH, flash_cookie(key, kind, text), path=PREFIX, httponly=True,
                            samesite="strict", secure=False)
    return response


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    html = TEMPLATES.get_template("error.html").render(
        visitor=None, flash=None, path=request.url.path, status=status, message=message)
    return HTMLResponse(html, status_code=status)


def _status(exc: MlcError) -> int:
    from deployments.api import error_status  # at request time: api imports this package

    return error_status(exc)


class CenterRoute(APIRoute):
    """Refusals and our errors as pages; the security headers on every answer (a route that
    sets its own, such as the sandboxed packet, keeps them)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired as exc:
                response = RedirectResponse(f"{PREFIX}/login?next={quote(exc.path, safe='')}",
                                            status_code=303)
            except PageError as exc:
                response = error_page(request, exc.status, exc.message)
            except MlcError as exc:
                response = error_page(request, _status(exc), str(exc))
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return guarded
