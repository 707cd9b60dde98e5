"""Who is at the Command Center: a signed session cookie, or the trusted SSO header.

A person logs in by pasting their API token (`mlc people enroll`), checked like a bearer
token; the answer is an HttpOnly, SameSite=Strict cookie holding their id, an expiry and a
nonce, sealed with HMAC-SHA256 under the installation's session key over those and the time
they were enrolled. Every request checks the seal, the expiry and that the principal is still
enrolled and active in the registry: a revoked person, or one enrolled again (a new token
because the old one leaked), is logged out at once. Behind a trusted proxy the SSO header
counts exactly as it does for the API (deployments/api_auth.py).

Every POST carries a CSRF token bound to the session (an HMAC of the cookie, or of the SSO
person's id), and a POST whose Origin (or, without it, Referer) is another origin is refused
before anything is read or done. The login form has its own token, bound to a pre-login
cookie, so nobody can log a victim in as someone else."""

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from deployments.api_auth import sso_person
from mlc_tasks.people import Principal, Scope
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.resources import Resources

COOKIE = "mlc_session"
LOGIN_COOKIE = "mlc_login"
SESSION_SECONDS = 8 * 3600
PREFIX = "/center"
# each segment starts with a letter, digit, _ or ~: no "." or ".." segment, no "//"
SAFE_PATH = re.compile(r"/center(/[A-Za-z0-9_~][A-Za-z0-9._~-]*)*/?")
SAFE_QUERY = re.compile(r"[A-Za-z0-9._~=&%+:-]*")


class PageError(Exception):
    """A refusal shown as a page: its status and what to tell the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Visitor:
    """The person (or service) at the Command Center, and the CSRF token of their forms."""

    principal: Principal
    name: str
    csrf: str
    via: str  # "session" or "sso"

    def may(self, scope: Scope) -> bool:
        return scope in self.principal.scopes


def same_secret(given: str, wanted: str) -> bool:
    """Constant-time, and any text: compare_digest raises on non-ASCII str."""
    return hmac.compare_digest(given.encode(), wanted.encode())


def seal(key: str, *parts: str) -> str:
    message = "\x1f".join(parts).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def session_cookie(key: str, principal: Principal, now: float | None = None) -> str:
    """id.expiry.nonce.seal, the seal also over when the principal was enrolled."""
    expiry = str(int(now if now is not None else time.time()) + SESSION_SECONDS)
    nonce = secrets.token_urlsafe(12)
    mac = seal(key, "session", principal.id, expiry, nonce, principal.enrolled_at.isoformat())
    return ".".join((_b64(principal.id), expiry, nonce, mac))


def cookie_principal(ctx: Resources, value: str, now: float | None = None) -> Principal | None:
    """The active principal a well-sealed, unexpired cookie names; None for anything else."""
    try:
        encoded, expiry, nonce, mac = value.split(".")
        pid = _unb64(encoded)
        expires = int(expiry)
    except (ValueError, UnicodeDecodeError):
        return None
    if expires < (now if now is not None else time.time()) or len(pid) > 200:
        return None
    principal = PrincipalBook(ctx.registry).get(pid)
    if principal is None or not principal.active:
        return None
    wanted = seal(ctx.settings.resolved_session_key(), "session", pid, expiry, nonce,
                  principal.enrolled_at.isoformat())
    return principal if same_secret(wanted, mac) else None


def display_name(ctx: Resources, principal: Principal) -> str:
    person = ctx.policy().person(principal.id)
    return person.name if person is not None and person.name else principal.id


def visitor(ctx: Resources, request: Request) -> Visitor | None:
    """Who this request comes from, or None (no session). A bad SSO header is a 401."""
    key = ctx.settings.resolved_session_key()
    header = ctx.settings.trusted_user_header
    if header and request.headers.get(header) is not None:
        try:
            person = sso_person(ctx, request, header)
        except HTTPException as exc:
            raise PageError(401, str(exc.detail)) from exc
        return Visitor(person, display_name(ctx, person), seal(key, "csrf-sso", person.id),
                       "sso")
    value = request.cookies.get(COOKIE)
    principal = cookie_principal(ctx, value) if value else None
    if principal is None:
        return None
    return Visitor(principal, display_name(ctx, principal), seal(key, "csrf", value or ""),
                   "session")


def safe_next(target: str | None) -> str:
    """Where to go after login: a plain path of the Command Center (no dot segments, no empty
    ones, nothing encoded), else its start page: never another site."""
    default = f"{PREFIX}/"
    path, _, query = (target or "").partition("?")
    if len(path) + len(query) > 500 or not SAFE_PATH.fullmatch(path) or \
            not SAFE_QUERY.fullmatch(query) or path.startswith(f"{PREFIX}/login"):
        return default
    return target or default


def same_origin(request: Request, browser_url: str) -> bool:
    """Whether the Origin (else the Referer) names this site; True when the browser sent
    neither (an older client; the CSRF token still guards the form)."""
    given = request.headers.get("origin")
    if given is None:
        referer = request.headers.get("referer")
        if referer is None:
            return True
        parts = urlsplit(referer)
        given = f"{parts.scheme}://{parts.netloc}"
    host = request.headers.get("host", "")
    ours = {f"{request.url.scheme}://{host}".lower()}
    public = urlsplit(browser_url)
    ours.add(f"{public.scheme}://{public.netloc}".lower())
    return given.lower() in ours


def check_post(ctx: Resources, request: Request, found: Visitor, token: str) -> None:
    """Refuse a cross-site POST or one without this session's CSRF token (403)."""
    if not same_origin(request, ctx.settings.browser_url()):
        raise PageError(403, "refused: this form was sent from another site (Origin)")
    if not token or not same_secret(token, found.csrf):
        raise PageError(403, "refused: the form's CSRF token is missing or not this session's; "
                             "reload the page and try again")


def login_token(key: str, nonce: str) -> str:
    return seal(key, "login", nonce)
