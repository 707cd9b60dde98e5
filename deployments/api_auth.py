"""Who calls the control-plane API: every /v1 route takes its caller as a dependency.

A caller proves who they are with `Authorization: Bearer <token>` (issued by `mlc people
enroll`, kept only as a hash), or through a proxy that authenticated them and names them in
MLC_TRUSTED_USER_HEADER; that header counts only when the TCP peer is one of
MLC_TRUSTED_PROXIES (anyone else could type it), and names a person of the policy. Nothing
falls back: a header from another address is refused even with a token beside it.

The peer is the real TCP peer: the API is served without uvicorn's proxy headers
(deployments/api.py), so an X-Forwarded-For line cannot make a local process look like the
proxy. Listing 127.0.0.1 (or ::1) as a trusted proxy means that every process on this host can
name itself anyone; trust only the proxy's own address, and let it reach the API alone."""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from mlc_tasks.people import SCOPES, Principal, PrincipalKind, Scope
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.resources import Resources

CHALLENGE = {"WWW-Authenticate": "Bearer"}
SSO_ENROLLER = "sso"


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers=CHALLENGE)


def authenticate(ctx: Resources, request: Request) -> Principal:
    """The caller, or 401 naming what was wrong."""
    header = ctx.settings.trusted_user_header
    if header and request.headers.get(header) is not None:
        return sso_person(ctx, request, header)
    given = request.headers.get("authorization")
    if given is None:
        raise unauthorized("no credentials: send 'Authorization: Bearer <token>' (a token from "
                           "`mlc people enroll`; `mlc login` keeps it for the mlc command)")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("malformed Authorization header: expected 'Bearer <token>'")
    found = PrincipalBook(ctx.registry).authenticate(token.strip())
    if found is None:
        raise unauthorized("unknown, revoked or malformed token")
    return found


def sso_person(ctx: Resources, request: Request, header: str) -> Principal:
    peer = request.client.host if request.client else "unknown"  # the TCP peer itself
    if peer not in ctx.settings.trusted_proxies:
        raise unauthorized(f"the {header} header is accepted only from a trusted proxy "
                           f"(MLC_TRUSTED_PROXIES); {peer} is not one")
    named = request.headers[header]
    person = ctx.policy().person(named)
    if person is None:
        raise unauthorized(f"{header}: '{named[:100]}' is not a person in the policy")
    enrolled = PrincipalBook(ctx.registry).get(person.id)
    if enrolled is not None and not enrolled.active:
        raise unauthorized(f"{person.id} was revoked (`mlc people enroll` again to restore)")
    return Principal(id=person.id, kind=PrincipalKind.PERSON,
                     scopes=SCOPES[PrincipalKind.PERSON], enrolled_at=utcnow(),
                     enrolled_by=SSO_ENROLLER, revoked_at=None)


def authenticated(ctx: Resources) -> Callable[[Request], Principal]:
    def caller(request: Request) -> Principal:
        return authenticate(ctx, request)

    return caller


def allowed(ctx: Resources, scope: Scope) -> Callable[..., Principal]:
    """A dependency: the caller, who must hold `scope` (403 naming it otherwise)."""

    def holder(principal: Annotated[Principal, Depends(authenticated(ctx))]) -> Principal:
        if scope not in principal.scopes:
            raise HTTPException(403, f"{principal.id} ({principal.kind}) lacks the "
                                     f"'{scope.value}' scope")
        return principal

    return holder
