"""What every command shares: the app, our errors as one line, the control-plane API as the
caller's token, and (admin commands) the installation's resources. Only typer, the standard
library and deployments/client.py are imported here: `mlc --help` must stay fast."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote

import typer

from deployments.client import ApiClient
from mlc_tasks.errors import MlcError

if TYPE_CHECKING:
    from mlc_tasks.resources import Resources
    from mlc_tasks.settings import MlcSettings

app = typer.Typer(help="Model life-cycle manager on Prefect.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
F = TypeVar("F", bound=Callable[..., Any])

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@app.callback()
def quiet_clients() -> None:
    """Model life-cycle manager on Prefect."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # Prefect's client sends nothing, says nothing
    context.cache_clear()  # each invocation finds its installation (tests invoke in-process)


def friendly(command: F) -> F:
    """Our errors become one clear line on stderr and exit code 1, not a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MlcError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from exc

    return wrapper  # type: ignore[return-value]


def api() -> ApiClient:
    """The control-plane API, as the caller's token."""
    return ApiClient()


def path_of(*parts: str | int) -> str:
    return "/v1/" + "/".join(quote(str(p), safe="") for p in parts)


@functools.cache
def context(create: bool = False) -> Resources:
    """The installation an admin command works with: the configured one, else the running
    `mlc up` (deployments/installation.py); `create` only for a first submission."""
    from deployments.installation import find_installation
    from mlc_tasks.resources import Resources

    settings, prefect_api = find_installation(create=create)
    if prefect_api:  # found running: flows this command runs here must see the same one
        os.environ.setdefault("PREFECT_API_URL", prefect_api)
        os.environ["MLC_HOME"] = str(settings.home)
        os.environ["MLC_DATABASE_URL"] = settings.registry_url()
        if settings.policy_file:
            os.environ["MLC_POLICY_FILE"] = str(settings.policy_file)
        os.environ["MLC_DATA_ROOTS"] = json.dumps(settings.data_roots)
        os.environ["MLC_TRUSTED_TYPES"] = json.dumps(settings.trusted_types)
        if settings.audit_anchor_url:
            os.environ["MLC_AUDIT_ANCHOR_URL"] = settings.audit_anchor_url
    _know_prefect_auth(settings)
    return Resources(settings)


def _know_prefect_auth(settings: MlcSettings) -> None:
    """Prefect's client and ours send PREFECT_API_AUTH_STRING: when it is not set, the one
    `mlc up` keeps under the installation's home, if this user may read it (the installation's
    API never serves it)."""
    from mlc_tasks.prefect_auth import AUTH_ENV, stored_auth

    found = None if os.environ.get(AUTH_ENV) else stored_auth(settings.home)
    if found:
        os.environ[AUTH_ENV] = found
