"""Flow run names that say what a run works on, as the Prefect UI lists them:
`credit-risk:2 on-model-changed`, `all models daily-backtest 2026-11-25`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from prefect import runtime

NAME_MAX = 120


def describe(process: str, parameters: Mapping[str, Any]) -> str:
    """The run's name from its parameters: the model (and version) it works on, the process,
    and the day when it has one."""
    model = parameters.get("model")
    number = parameters.get("number", parameters.get("version"))
    subject = ("all models" if not model else
               f"{model}:{number}" if number is not None else str(model))
    day = parameters.get("day")
    return f"{subject} {process}{f' {day}' if day else ''}"[:NAME_MAX]


def run_name(process: str) -> Callable[[], str]:
    """For @flow(flow_run_name=...): Prefect calls it as the run starts."""

    def named() -> str:
        return describe(process, runtime.flow_run.parameters)

    return named
