"""Production as the registry records it: the environment the policy's production stage names,
the deployment through which production serves a version now, and when it stopped serving one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from mlc_tasks.registry import DeploymentRecord

PROD_ENV = "prod"  # the env of a production stage whose tags name none (policy.DeploymentStages)


def prod_env(prod: Mapping[str, str]) -> str:
    """The registry's environment of production: the env tag of the policy's production stage
    (`deployment.prod`)."""
    return prod.get("env", PROD_ENV)


def serving(history: list[DeploymentRecord], version_id: str, env: str
            ) -> DeploymentRecord | None:
    """The newest deployment through which production (`env`) serves the version now; None
    when it does not serve it."""
    current = [d for d in history if d.version_id == version_id and d.env == env
               and d.replaced_at is None]
    return current[-1] if current else None


def replaced_at(history: list[DeploymentRecord], version_id: str, env: str
                ) -> datetime | None:
    """When production (`env`) stopped serving the version; None while it still does (or never
    did)."""
    prod = [d for d in history if d.version_id == version_id and d.env == env]
    if not prod or any(d.replaced_at is None for d in prod):
        return None
    return max(d.replaced_at for d in prod if d.replaced_at is not None)
