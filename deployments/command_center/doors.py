"""The Command Center's doors: who may see a page (a session, else the login page), who may
act (a session, a same-site POST with its CSRF token, and the scope), login and logout."""

import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from deployments.command_center.forms import form_fields
from deployments.command_center.render import LoginRequired, page, redirect
from deployments.command_center.session import (
    COOKIE,
    LOGIN_COOKIE,
    PREFIX,
    SESSION_SECONDS,
    PageError,
    Visitor,
    check_post,
    login_token,
    safe_next,
    same_origin,
    same_secret,
    session_cookie,
    visitor,
)
from mlc_tasks.people import Scope
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.resources import Resources


def reader(ctx: Resources) -> Callable[[Request], Visitor]:
    """A dependency: who is looking; without a session, off to the login page (no data)."""

    def who(request: Request) -> Visitor:
        found = visitor(ctx, request)
        if found is None:
            query = f"?{request.url.query}" if request.url.query else ""
            raise LoginRequired(request.url.path + query)
        return found

    return who


def actor(ctx: Resources, scope: Scope) -> Callable[..., Visitor]:
    """A dependency: who acts, by a same-site form of their session, holding `scope`."""

    def who(request: Request, form: Annotated[dict[str, str], Depends(form_fields)]
            ) -> Visitor:
        return acting(ctx, request, form.get("csrf", ""), scope)

    return who


def acting(ctx: Resources, request: Request, csrf: str, scope: Scope) -> Visitor:
    found = visitor(ctx, request)
    if found is None:
        raise LoginRequired(f"{PREFIX}/")
    check_post(ctx, request, found, csrf)
    if not found.may(scope):
        raise PageError(403, f"{found.principal.id} ({found.principal.kind}) lacks the "
                             f"'{scope.value}' scope: this needs a person's token")
    return found


def secure(ctx: Resources, request: Request) -> bool:
    return request.url.scheme == "https" or ctx.settings.browser_url().startswith("https:")


def add_login_routes(router: APIRouter, ctx: Resources) -> None:
    key = ctx.settings.resolved_session_key

    @router.get(f"{PREFIX}/login")
    def login_form(request: Request, next: str = "") -> Response:  # noqa: A002 (the parameter)
        if visitor(ctx, request) is not None:
            return redirect(key(), safe_next(next))
        return login_page(request, next, None)

    def login_page(request: Request, next_: str, error: str | None) -> Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        shown = page(request, key(), "login.html", None, 401 if error else 200,
                     csrf=login_token(key(), nonce), next=safe_next(next_), error=error)
        shown.set_cookie(LOGIN_COOKIE, nonce, max_age=3600, path=f"{PREFIX}/login",
                         httponly=True, samesite="strict", secure=secure(ctx, request))
        return shown

    @router.post(f"{PREFIX}/login")
    def login(request: Request, form: Annotated[dict[str, str], Depends(form_fields)]
              ) -> Response:
        token, csrf, next_ = (form.get(k, "") for k in ("token", "csrf", "next"))
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not same_origin(request, ctx.settings.browser_url()) or not nonce or \
                not same_secret(csrf, login_token(key(), nonce)):
            raise PageError(403, "refused: the login form was not sent from this site's page; "
                                 "open the login page again")
        principal = PrincipalBook(ctx.registry).authenticate(token.strip())
        if principal is None:
            return login_page(request, next_, "That token is unknown, revoked or malformed. "
                                             "Paste the token `mlc people enroll` gave you.")
        done = redirect(key(), safe_next(next_))
        done.set_cookie(COOKIE, session_cookie(key(), principal), max_age=SESSION_SECONDS,
                        path=PREFIX, httponly=True, samesite="strict",
                        secure=secure(ctx, request))
        done.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
        return done

    @router.post(f"{PREFIX}/logout")
    def logout(request: Request, form: Annotated[dict[str, str], Depends(form_fields)]
               ) -> Response:
        acting(ctx, request, form.get("csrf", ""), Scope.READ)
        done = redirect(key(), f"{PREFIX}/login", "ok", "You are logged out.")
        done.delete_cookie(COOKIE, path=PREFIX)
        return done
