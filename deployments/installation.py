"""Which installation a command works with: the configured one (MLC_HOME or MLC_DATABASE_URL
set), else the running `mlc up` that answers at MLC_API_URL (default http://127.0.0.1:8700),
from any folder and any HOME. With neither, commands say so instead of reading (and creating)
an empty registry under ~/.mlc."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from mlc_tasks.errors import InstallationNotFoundError
from mlc_tasks.settings import MlcSettings

CONFIGURING = ("MLC_HOME", "MLC_DATABASE_URL")


def find_installation(environ: Mapping[str, str] = os.environ, create: bool = False
                      ) -> tuple[MlcSettings, str | None]:
    """Settings of the installation to use and, when found running, its Prefect API URL.
    `create` lets a configured home without a registry get one (a first submission); a read
    never does."""
    settings = MlcSettings()
    if any(environ.get(name) for name in CONFIGURING):
        if not create:
            require_registry(settings)
        return settings, None
    found = ask_running(settings.installation_url())
    located = settings.model_copy(update={
        "home": Path(found["home"]), "database_url": registry_url(found["registry_url"]),
        "policy_file": settings.policy_file or (Path(found["policy_file"])
                                                if found.get("policy_file") else None),
        # the installation's reviewed types, whatever this terminal's MLC_TRUSTED_TYPES says
        "trusted_types": list(found["trusted_types"]),
        "audit_anchor_url": settings.audit_anchor_url or found.get("audit_anchor_url"),
        "data_roots": list(found.get("data_roots", []))})
    return located, found["prefect_api_url"]


def ask_running(api_url: str) -> dict[str, Any]:
    try:
        answer = httpx.get(f"{api_url}/installation", timeout=3)
        answer.raise_for_status()
        found: dict[str, Any] = answer.json()
        return found
    except (httpx.HTTPError, ValueError) as exc:
        raise InstallationNotFoundError(
            f"no running installation answers at {api_url} (MLC_API_URL), and MLC_HOME is not "
            "set: start one with `make run` (or `mlc up`), or set MLC_HOME to its folder"
        ) from exc


def registry_url(url: str) -> str:
    if "***" in url and not os.environ.get("MLC_DATABASE_URL"):
        safe = make_url(url).render_as_string(hide_password=True)
        raise InstallationNotFoundError(f"the running installation's registry ({safe}) needs "
                                        "a password: set MLC_DATABASE_URL")
    return os.environ.get("MLC_DATABASE_URL") or url


def require_registry(settings: MlcSettings) -> None:
    """A configured SQLite registry must exist already: a read never creates one."""
    url = make_url(settings.registry_url())
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database)
        if not path.exists():
            raise InstallationNotFoundError(
                f"no registry at {path} (MLC_HOME={settings.home}): nothing was ever submitted "
                "there; start `mlc up` (or `make run`) with this MLC_HOME, or point MLC_HOME at "
                "the installation's folder")
