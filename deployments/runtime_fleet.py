"""The worker processes of one runtime, serving the same models.

Uvicorn hands each request to any worker, so every worker must serve the same versions. They
share one folder, made private (0700) by the runtime's parent process and fresh at each start:
`state.json` says what the runtime serves (model → current and previous deploy request) with a
generation number, `workers/<pid>` lists the live workers, and `acks/<pid>` the generation each
has applied. A change (deploy, revert, unload) is made by whichever worker got the admin
request: under the folder's lock it loads what is new, writes the next generation and applies
it, then waits until every live worker has applied it too, so a deploy is reported done only
once every worker serves it. The others watch the state file and apply each generation. The
first worker of a start builds the state from the registry; a worker started later (uvicorn
replaces one that died) applies the state the others serve.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from deployments.runtime_models import Loaded, ModelTable
from mlc_tasks.errors import InvalidInputError, RuntimeFullError, RuntimeUnavailableError
from mlc_tasks.runtimes import DeployRequest

log = logging.getLogger(__name__)
POLL_SECONDS = 0.02  # how often a worker looks for a new generation: a stat() call


class ServedModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    current: DeployRequest
    previous: DeployRequest | None = None


class FleetState(BaseModel):
    """What the runtime serves, agreed by its workers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation: int = 0
    models: dict[str, ServedModel] = {}

    @model_validator(mode="after")
    def _served_under_their_names(self) -> FleetState:
        for name, served in self.models.items():
            for request in filter(None, (served.current, served.previous)):
                if request.model != name:
                    raise ValueError(f"state entry '{name[:100]}' holds a version of "
                                     f"{request.model[:100]}")
        return self

    def wanted(self) -> dict[str, tuple[DeployRequest, DeployRequest | None]]:
        return {name: (m.current, m.previous) for name, m in self.models.items()}


def with_deployed(state: FleetState, request: DeployRequest, max_models: int) -> FleetState:
    """The state after serving `request`; its model's current version becomes the previous
    (unless it is the same version). A new model beyond `max_models` is refused."""
    served = state.models.get(request.model)
    if served is None and len(state.models) >= max_models:
        raise RuntimeFullError(f"this runtime serves {len(state.models)} of its {max_models} "
                               f"models (MLC_RUNTIME_MAX_MODELS); {request.model} does not fit")
    previous = served and (served.previous if served.current.version_id == request.version_id
                           else served.current)
    return _with(state, request.model, ServedModel(current=request, previous=previous or None))


def with_reverted(state: FleetState, model: str) -> FleetState:
    """The state before the model's last deploy: its previous version again, or, when there
    was none, the model no longer served."""
    served = state.models.get(model)
    if served is None:
        raise InvalidInputError(f"this runtime serves no model '{model}'")
    after = ServedModel(current=served.previous) if served.previous else None
    return _with(state, model, after)


def without_version(state: FleetState, model: str, version_id: str) -> FleetState:
    """The state with a (retired) version of `model` served nowhere: as current, the model is
    unloaded (nothing falls back silently to an older version); as previous, it is dropped."""
    for name, served in state.models.items():
        if name != model:
            continue
        if served.current.version_id == version_id:
            return _with(state, name, None)
        if served.previous and served.previous.version_id == version_id:
            return _with(state, name, ServedModel(current=served.current))
    return state


def _with(state: FleetState, model: str, served: ServedModel | None) -> FleetState:
    models = {k: v for k, v in state.models.items() if k != model}
    if served is not None:
        models[model] = served
    return FleetState(generation=state.generation + 1, models=dict(sorted(models.items())))


class Fleet:
    """This worker's part in the runtime's shared folder."""

    def __init__(self, folder: Path, table: ModelTable, load: Callable[[DeployRequest], Loaded],
                 restore: Callable[[], FleetState], wait_seconds: float = 120.0) -> None:
        check_private(folder)
        self.folder, self.table, self.load, self.restore = folder, table, load, restore
        self.wait_seconds, self.pid = wait_seconds, os.getpid()
        self.applied, self.errors = -1, {}
        self._stop, self._applying = threading.Event(), threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        for sub in ("workers", "acks"):
            (folder / sub).mkdir(mode=0o700, exist_ok=True)

    # ---- life -------------------------------------------------------------------------------

    def start(self) -> None:
        """Join: registered first (so a change made meanwhile waits for us), then apply the
        state, built from the registry by the first worker of the start."""
        (self.folder / "workers" / str(self.pid)).write_text("")
        with self._locked():
            state = self.read()
            if state is None:
                state = self.restore()
                failed = self.table.apply(state.wanted(), self.load)
                state = _without_failed(state, failed)
                self._write(state)
            self._apply(state)
        threading.Thread(target=self._watch, name="fleet-watch", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        for path in (self.folder / "workers" / str(self.pid), self.folder / "acks" / str(self.pid)):
            path.unlink(missing_ok=True)

    # ---- changes ----------------------------------------------------------------------------

    def change(self, mutate: Callable[[FleetState], FleetState]) -> FleetState:
        """Make a change and return once every live worker serves it. It is loaded here
        before anything is written: a version that fails to load changes nothing. A change
        some worker cannot apply (or does not take in time) is undone on every worker: the
        state before it becomes the next generation, and the error is raised."""
        with self._locked():
            before = self.read() or FleetState()
            state = mutate(before)
            self._publish(state)
        try:
            self._wait_for_workers(state.generation)
        except RuntimeUnavailableError:
            with self._locked():
                undone = before.model_copy(update={"generation": self.read_generation() + 1})
                self._publish(undone)
            raise
        return state

    def read_generation(self) -> int:
        state = self.read()
        return state.generation if state else 0

    def _publish(self, state: FleetState) -> None:
        with self._applying:
            failed = self.table.apply(state.wanted(), self.load)
            if failed:  # the table kept what the model had; the state is not written
                raise InvalidInputError("; ".join(failed.values()))
            self._write(state)
            self._acknowledge(state.generation, failed)

    def read(self) -> FleetState | None:
        path = self.folder / "state.json"
        if not path.exists():
            return None
        return FleetState.model_validate_json(path.read_bytes())

    def workers(self) -> list[int]:
        """The pids of the live workers (a killed worker's entry is cleared)."""
        live = []
        for entry in (self.folder / "workers").iterdir():
            pid = int(entry.name)
            if _alive(pid):
                live.append(pid)
            else:
                entry.unlink(missing_ok=True)
                (self.folder / "acks" / entry.name).unlink(missing_ok=True)
        return sorted(live)

    # ---- inside -----------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.folder / "lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self, state: FleetState) -> None:
        temporary = self.folder / f"state.json.{self.pid}"
        temporary.write_text(state.model_dump_json())
        os.replace(temporary, self.folder / "state.json")

    def _apply(self, state: FleetState) -> None:
        with self._applying:  # never an older generation after a newer one
            if state.generation <= self.applied:
                return
            failed = self.table.apply(state.wanted(), self.load)
            for error in failed.values():
                log.error("worker %d could not load %s", self.pid, error)
            self._acknowledge(state.generation, failed)

    def _acknowledge(self, generation: int, failed: dict[str, str]) -> None:
        self.applied, self.errors = generation, failed
        ack = self.folder / "acks" / str(self.pid)
        temporary = ack.with_name(f".{self.pid}")
        temporary.write_text(f"{generation}\n" + "\n".join(failed.values()))
        os.replace(temporary, ack)

    def _watch(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                stamp = _stamp(self.folder / "state.json")
                if stamp == self._stamp:
                    continue
                self._stamp = stamp
                state = self.read()
                if state is not None and state.generation > self.applied:
                    self._apply(state)
            except Exception as exc:  # a torn read or a disk hiccup: try again at the next poll
                log.warning("worker %d could not read the runtime's state: %s", self.pid, exc)
                self._stamp = None

    def _wait_for_workers(self, generation: int) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            behind, errors = [], []
            for pid in self.workers():
                applied, failed = _ack(self.folder / "acks" / str(pid))
                if applied < generation:
                    behind.append(pid)
                elif failed and applied == generation:
                    errors.append(f"worker {pid}: {failed}")
            if errors:
                raise RuntimeUnavailableError("; ".join(errors))
            if not behind:
                return
            if time.monotonic() > deadline:
                raise RuntimeUnavailableError(f"workers {behind} did not take generation "
                                              f"{generation} in {self.wait_seconds:.0f} s")
            time.sleep(POLL_SECONDS)


def check_private(folder: Path) -> None:
    """The workers' folder is a real folder of this user's that nobody else may write: what
    it says is what the runtime serves."""
    found = folder.lstat()
    if folder.is_symlink() or not folder.is_dir():
        raise InvalidInputError(f"{folder}: the runtime's state folder must be a folder, not a "
                                "link")
    if found.st_uid != os.getuid() or found.st_mode & 0o077:
        raise InvalidInputError(f"{folder}: the runtime's state folder must be this user's "
                                f"alone (mode 0700), not {oct(found.st_mode & 0o777)}")


def _without_failed(state: FleetState, failed: dict[str, str]) -> FleetState:
    models = {k: v for k, v in state.models.items() if v.current.version_id not in failed}
    return FleetState(generation=state.generation, models=models)


def _ack(path: Path) -> tuple[int, str]:
    try:
        first, _, rest = path.read_text().partition("\n")
        return int(first), rest
    except (OSError, ValueError):
        return -1, ""


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
