"""Links into the Command Center (deployments/command_center/), as people's browsers reach it
(settings.browser_url): from Prefect artifacts, Slack messages and evidence packets."""

from __future__ import annotations

from urllib.parse import quote

from mlc_tasks.settings import MlcSettings


def model_page(settings: MlcSettings, model: str) -> str:
    """A model's page: versions, deployments over time, metric charts, audit timeline."""
    return f"{settings.browser_url()}/center/models/{quote(model, safe='')}"


def task_page(settings: MlcSettings, task_id: int) -> str:
    """A human task's page: its evidence, and the decision form."""
    return f"{settings.browser_url()}/center/tasks/{int(task_id)}"
