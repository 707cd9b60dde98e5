"""Running the installation and who may act in it: `mlc up`, `mlc runtime start`, the people
and services enrolled (`mlc people`), the caller's token (`login`, `logout`, `whoami`) and
the audit log (a model's trail through the API; `verify` and `anchor` on the database). The
admin commands work on the installation's files directly (its MLC_HOME), as the account on
this host."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from deployments.cli.core import JsonFlag, api, app, context, friendly
from deployments.cli.output import emit_json, key, show_table, text, when
from mlc_tasks.errors import InvalidInputError

if TYPE_CHECKING:
    from mlc_tasks.resources import Resources

runtime_app = typer.Typer(help="Run scoring runtimes.", no_args_is_help=True)
people_app = typer.Typer(help="Enrol, list and revoke the people and services who may act "
                              "(admin: on the installation's host).", no_args_is_help=True)


def admin_actor() -> str:
    """Who an admin command acts as: the account on this host (it owns MLC_HOME)."""
    import getpass

    from mlc_tasks.people import local_actor

    return local_actor(getpass.getuser())


@app.command()
@friendly
def audit(
    target: Annotated[str | None, typer.Argument(
        help="A model name; 'verify' to check the whole log (its keyed chain, the newest "
             "anchor, the state tables); 'anchor' to write its head to the anchor sink.")
    ] = None,
    model: Annotated[str | None, typer.Option(
        help="A model name (also one called 'verify' or 'anchor').")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Show a model's audit trail, verify the audit log (`mlc audit verify`, exit 1 when
    anything is wrong; admin) or anchor its head outside the database (`mlc audit anchor`)."""
    if target == "verify" and model is None:
        raise typer.Exit(0 if _verify_audit(context(), json_out) else 1)
    if target == "anchor" and model is None:
        raise typer.Exit(0 if _anchor_audit(context(), json_out) else 1)
    name = model or target
    found = api().get("/v1/audit", model=name)
    if json_out:
        emit_json(found)
        return
    show_table(f"audit of {name or 'everything'}", [
        key("#"), key("when (UTC)"), text("who"), key("what"), text("why"),
        text("detail", drop=1)],
        [[e["seq"], when(e["at"], True), e["actor"], e["action"], e["reason"],
          json.dumps(e["detail"], sort_keys=True)] for e in found])


def _verify_audit(ctx: Resources, json_out: bool) -> bool:
    from mlc_tasks.audit_anchor import newest_anchor

    url = ctx.settings.anchor_url()
    report = ctx.registry.verify_audit(newest_anchor(url))
    if json_out:
        emit_json(report)
        return report.ok
    typer.echo(f"audit log {'intact' if report.ok else 'BROKEN'}: {report.events} events"
               + (f"; {report.problem}" if report.problem else ""))
    if report.keyed_from:
        typer.echo(f"keyed from event {report.keyed_from}")
    typer.echo(f"anchor: {report.anchor}" if report.anchor else
               f"anchor: none yet at {url} (`mlc audit anchor` writes one)")
    for differ in report.disagreements[1:]:
        typer.echo(f"also: {differ}")
    return report.ok


def _anchor_audit(ctx: Resources, json_out: bool) -> bool:
    from mlc_tasks.audit_anchor import anchor_log

    done = anchor_log(ctx.registry, ctx.settings.anchor_url())
    if json_out:
        emit_json(done)
    else:
        typer.echo(f"{'anchored' if done.written else 'already anchored'} event "
                   f"{done.anchor.seq} in {done.anchor.uri}")
    for differ in done.report.disagreements:
        typer.echo(f"warning: {differ}", err=True)
    return done.report.ok


@app.command()
@friendly
def up(
    submit_paths: Annotated[list[Path] | None, typer.Option(
        "--submit", help="Package folders to submit once everything is up.")] = None,
) -> None:
    """Start the Prefect server (unless PREFECT_API_URL is set), the runtimes, and serve every
    deployment. Ctrl-C stops everything it started."""
    from deployments.up import Supervisor
    from mlc_tasks.resources import Resources

    supervisor = Supervisor(Resources().settings)
    sys.exit(supervisor.run(submit_paths or []))


@runtime_app.command("start")
@friendly
def runtime_start(
    name: str,
    tags: Annotated[str, typer.Option(help="e.g. env=qa,zone=eu")],
    port: Annotated[int, typer.Option(help="Port on the loopback/host address.")],
    repin: Annotated[bool, typer.Option(
        help="Move a runtime pinned to another URL to this one (an admin's decision, "
             "audited).")] = False,
    workers: Annotated[int | None, typer.Option(
        help="Worker processes (default MLC_RUNTIME_WORKERS, else the machine's cores).")
    ] = None,
) -> None:
    """Start a scoring runtime that registers itself in the inventory and serves many models
    on several worker processes. Its URL is pinned at the first registration; it holds its own
    admin token (MLC_RUNTIME_TOKENS, else generated)."""
    from deployments import runtime_worker
    from deployments.runtime_server import capabilities
    from deployments.up import secure_home
    from mlc_tasks import runtimes
    from mlc_tasks.resources import Resources

    ctx = Resources()
    settings = ctx.settings
    secure_home(settings.home)  # its captures hold scoring inputs: this account's alone
    url, parsed = f"http://{settings.host}:{port}", runtimes.parse_tags(tags)
    settings.resolved_runtime_token(name)  # made once here, before the workers read it
    # registered here first, so that a refused re-pin is one clear line, not a startup trace
    ctx.registry.upsert_runtime(name, url, parsed, capabilities(settings.runtime_max_models),
                                repin_by=admin_actor() if repin else None)
    runtime_worker.serve(name, parsed, url, port, workers or settings.runtime_workers)


@app.command()
@friendly
def login() -> None:
    """Keep your token (read from the terminal without echo, or from stdin) for later
    commands, readable by you only; it is checked with the API first."""
    import getpass

    from deployments.client import ApiClient, store_token

    given = (getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()).strip()
    if not given:
        raise InvalidInputError("no token given (`mlc people enroll` issues one)")
    client = ApiClient(token=given)
    me = client.get("/v1/whoami")
    path = store_token(given)
    typer.echo(f"logged in to {client.url} as {me['id']} ({me['kind']}: "
               f"{', '.join(me['scopes'])}); token kept in {path}")


@app.command()
@friendly
def logout() -> None:
    """Forget the token `mlc login` kept."""
    from deployments.client import forget_token

    path = forget_token()
    typer.echo(f"token removed from {path}" if path else "no token was kept")


@app.command()
@friendly
def whoami(json_out: JsonFlag = False) -> None:
    """Who the API takes you for, and what you may do."""
    me = api().get("/v1/whoami")
    if json_out:
        emit_json(me)
        return
    typer.echo(f"{me['id']} ({me['kind']}: {', '.join(me['scopes'])})")


@people_app.command("enroll")
@friendly
def people_enroll(
    principal_id: Annotated[str, typer.Argument(
        metavar="ID", help="A person of the policy (an email), or a service's id with --service.")],
    service: Annotated[bool, typer.Option(
        "--service", help="A service (CI): a token to read and submit, no authenticator.")
                       ] = False,
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="Grant only these (read, submit, decide, operate); repeatable.")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Issue a personal API token (shown once) and, for a person, an authenticator secret
    (an otpauth:// URI and its QR code); enrolling again replaces both."""
    from mlc_tasks.people import SCOPES, PrincipalKind
    from mlc_tasks.registry.principals import PrincipalBook

    ctx = context()
    kind = PrincipalKind.SERVICE if service else PrincipalKind.PERSON
    pid = _enrollable(ctx, principal_id, kind)
    granted = _scopes(scope or [], SCOPES[kind], kind)
    made = PrincipalBook(ctx.registry).enroll(pid, kind, admin_actor(), granted or None)
    if json_out:
        principal = made.principal
        emit_json({"id": principal.id, "kind": principal.kind.value,
                   "scopes": [s.value for s in principal.scopes], "token": made.token,
                   "otpauth_uri": made.otpauth_uri})
        return
    _show_enrolled(made)


def _show_enrolled(made: Any) -> None:
    """The new credentials, once: the token, and a person's authenticator as URI and QR."""
    principal = made.principal
    typer.echo(f"enrolled {principal.id} ({principal.kind.value}: "
               f"{', '.join(s.value for s in principal.scopes)})")
    typer.echo(f"token (shown once; hand it over privately): {made.token}")
    if made.otpauth_uri:
        import segno

        typer.echo(f"authenticator (scan, or add the URI): {made.otpauth_uri}")
        segno.make(made.otpauth_uri).terminal(out=sys.stdout, compact=True)


def _enrollable(ctx: Resources, given: str, kind: Any) -> str:
    """The canonical id: a person must be in the policy, a service must not be."""
    from mlc_tasks.people import PrincipalKind, check_id

    try:
        pid = check_id(given)
    except ValueError as exc:
        raise InvalidInputError(f"ID: {exc}") from exc
    known = ctx.policy().person(pid) is not None
    where = ctx.settings.policy_file or "the built-in policy"
    if kind == PrincipalKind.PERSON and not known:
        raise InvalidInputError(f"{pid} is not a person in the policy ({where}): add them "
                                "under 'people' first (or enroll a service with --service)")
    if kind == PrincipalKind.SERVICE and known:
        raise InvalidInputError(f"{pid} is a person in the policy ({where}), not a service")
    return pid


def _scopes(given: list[str], allowed: list[Any], kind: Any) -> list[Any]:
    from mlc_tasks.people import Scope

    granted = []
    for name in given:
        try:
            found = Scope(name)
        except ValueError as exc:
            raise InvalidInputError(f"--scope: '{name}' is not one of "
                                    f"{', '.join(s.value for s in Scope)}") from exc
        if found not in allowed:
            raise InvalidInputError(f"--scope: a {kind.value} may hold only "
                                    f"{', '.join(s.value for s in allowed)}, not '{name}'")
        granted.append(found)
    return granted


@people_app.command("list")
@friendly
def people_list(json_out: JsonFlag = False) -> None:
    """Everyone enrolled, revoked ones too (never their credentials)."""
    from mlc_tasks.registry.principals import PrincipalBook

    found = PrincipalBook(context().registry).list()
    if json_out:
        emit_json(found)
        return
    show_table("people and services", [
        key("id"), key("kind"), text("scopes"), key("authenticator"), key("enrolled (UTC)"),
        key("revoked (UTC)")],
        [[p.id, p.kind.value, ", ".join(s.value for s in p.scopes),
          "yes" if p.has_authenticator else "no", when(p.enrolled_at), when(p.revoked_at)
          or "-"] for p in found])


@people_app.command("revoke")
@friendly
def people_revoke(principal_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke a token and authenticator at once (`mlc people enroll` issues new ones)."""
    from mlc_tasks.registry.principals import PrincipalBook

    try:
        done = PrincipalBook(context().registry).revoke(principal_id, admin_actor())
    except ValueError as exc:
        raise InvalidInputError(f"ID: {exc}") from exc
    typer.echo(f"revoked {done.id}: its token and authenticator no longer work")
