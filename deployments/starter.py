"""`mlc process new NAME`: a commented starting point for a team's own process, written into
the first process folder, ready for `mlc up` to serve (flows/catalog.py finds it)."""

from __future__ import annotations

import re
from pathlib import Path

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.processes import PROCESS_NAME

TEMPLATE = '''"""{name}: what this process is for, in one sentence (shown in the Prefect UI).

Started on the custom event `mlc events emit {name} --model NAME` (and on the schedule below);
read it top to bottom: each line is a step of the kit (flows/steps.py)."""

from datetime import timedelta

from prefect import flow
from pydantic import BaseModel, Field

from flows import steps
from mlc_tasks.processes import Process


class Payload(BaseModel):
    """What the event may carry; the API refuses anything else, naming the field."""

    days: int = Field(default=30, ge=1, le=366, description="how far back to look")


process = Process(
    name="{name}",
    description="TODO: one line for the Prefect UI.",
    schedule=None,  # e.g. "0 6 * * 1": every Monday at 06:00 UTC, one run per model
    events=["{name}"],  # custom events that start it: mlc.custom.{name}
    payload=Payload,
)


@flow(name="{name}")
def {function}(model: str, event: str = "") -> str:
    """What one run does (the Prefect UI shows this and each parameter's line).

    Args:
        model: the model this run works on
        event: the id of the verified request that started it (set by the trigger)
    """
    request = steps.request_of(model, event)  # who asked (verified), and with what
    payload = Payload.model_validate(request.payload)
    version = steps.production_version(model)
    if version is None:
        return f"{{model}}: nothing in production"
    evidence = steps.evidence_bundle(model, payload.days)
    answer = steps.ask(version, f"{name} of {{version.ref}}", evidence.markdown(),
                       choices=["keep", "retrain"], groups=["model-risk"],
                       deadline=timedelta(days=7))
    if answer.choice == "retrain":
        steps.request_process("retrain", model, requested_by=answer.people[0])
    return f"{{version.ref}}: {{answer.choice or 'no answer'}}"
'''


def starter(name: str) -> str:
    """The module text of a new process called `name`."""
    if not re.fullmatch(PROCESS_NAME, name):
        raise InvalidInputError(f"NAME: '{name[:80]}' must be lowercase letters, digits and "
                                "'-' (it names the flow, the deployment and the event)")
    return TEMPLATE.format(name=name, function=name.replace("-", "_"))


def write_starter(name: str, folder: Path) -> Path:
    """Write the starting point as folder/<name>.py; never over an existing file."""
    text = starter(name)
    path = folder / f"{name.replace('-', '_')}.py"
    if path.exists():
        raise InvalidInputError(f"{path} exists: choose another NAME or edit it")
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
