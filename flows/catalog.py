"""The processes an installation runs besides ours: every module of the process folders
(MLC_PROCESS_PATHS, else processes/) that declares `process = Process(...)` beside a flow of
that name. `mlc up` serves them, and the control-plane API checks custom events against them."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

from prefect import Flow
from pydantic import BaseModel, ConfigDict

from flows.run_names import run_name
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.processes import Process

# our own processes' names: a team's may not take them
OURS = frozenset({"on-model-changed", "test-model", "deploy-model", "rollback-model",
                  "daily-backtest", "monitor", "retrain", "data-sensor", "batch-score",
                  "alert-sweeper", "audit-anchor", "retire-champions", "rollback-review",
                  "model-change"})


class Declared(BaseModel):
    """A process found in a folder: its declaration, its flow and the file they are in."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    process: Process
    flow: Flow  # type: ignore[type-arg]
    path: Path


def load_processes(folders: list[Path]) -> list[Declared]:
    """Every declared process in `folders` (modules whose name starts with `_` are skipped);
    errors name the file. A folder that does not exist is an error: it was configured. Read
    once per process (the API and the notification endpoint ask on every event); `mlc up`
    serves what it found at start, so a new module needs a restart anyway."""
    return list(_load(tuple(f.resolve() for f in folders)))


@functools.cache
def _load(folders: tuple[Path, ...]) -> tuple[Declared, ...]:
    found: dict[str, Declared] = {}
    for folder in folders:
        if not folder.is_dir():
            raise InvalidInputError(f"MLC_PROCESS_PATHS: {folder} is not a folder")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            declared = load_module(path)
            first = found.get(declared.process.name)
            if first is not None:
                raise InvalidInputError(f"{path}: process '{declared.process.name}' is "
                                        f"declared again (first in {first.path})")
            found[declared.process.name] = declared
    return tuple(found.values())


def load_module(path: Path) -> Declared:
    """Import one process module by its path and find its declaration and flow."""
    name = f"mlc_processes.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    process = getattr(module, "process", None)
    if not isinstance(process, Process):
        raise InvalidInputError(f"{path}: declares no `process = Process(...)`")
    if process.name in OURS:
        raise InvalidInputError(f"{path}: '{process.name}' is the name of one of our processes")
    flows = [v for v in vars(module).values() if isinstance(v, Flow) and v.name == process.name]
    if len(flows) != 1:
        raise InvalidInputError(f"{path}: needs exactly one flow named '{process.name}' "
                                f"(@flow(name=\"{process.name}\")), found {len(flows)}")
    found = flows[0]
    if found.flow_run_name is None:  # runs named after their model, as ours are
        found = found.with_options(flow_run_name=run_name(process.name))
    return Declared(process=process, flow=found, path=path.resolve())
