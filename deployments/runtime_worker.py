"""Starting a runtime: uvicorn with one or several worker processes on one port, each building
the same app from what the starting process hands it (MLC_RUNTIME_WORKER, JSON), sharing a
fresh private folder through which they agree on what they serve (runtime_fleet.py)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict

WORKER_ENV = "MLC_RUNTIME_WORKER"
_held_slot: list[IO[str]] = []  # the open lock file of this worker's slot, for its whole life


class WorkerSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    tags: dict[str, str]
    url: str
    fleet_dir: str
    workers: int


def serve(name: str, tags: dict[str, str], url: str, port: int, workers: int) -> None:
    """Run the runtime until it is stopped (SIGINT/SIGTERM); uvicorn restarts a worker that
    dies."""
    import uvicorn

    from mlc_tasks.settings import MlcSettings

    settings = MlcSettings()
    fleet_dir = Path(tempfile.mkdtemp(prefix=f"mlc-runtime-{name}-"))  # 0700
    spec = WorkerSpec(name=name, tags=tags, url=url, fleet_dir=str(fleet_dir), workers=workers)
    os.environ[WORKER_ENV] = spec.model_dump_json()
    try:
        uvicorn.run("deployments.runtime_worker:worker_app", factory=True, workers=workers,
                    host=settings.host, port=port, log_level="warning")
    finally:
        shutil.rmtree(fleet_dir, ignore_errors=True)


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory)."""
    from deployments.runtime_capture import CaptureQueue
    from deployments.runtime_server import RuntimeSpec, create_app
    from mlc_tasks.capture import InputCapture
    from mlc_tasks.resources import Resources
    from mlc_tasks.scoring import RequestLimits

    worker = WorkerSpec.model_validate(json.loads(os.environ[WORKER_ENV]))
    ctx = Resources()
    settings, fleet_dir = ctx.settings, Path(worker.fleet_dir)
    slot = claim_slot(fleet_dir, worker.workers)
    # each worker keeps its own capture file (two processes never append to one), within its
    # share of the runtime's daily cap
    capture = InputCapture(settings.capture_dir(),
                           f"{worker.name}.w{slot}" if worker.workers > 1 else worker.name,
                           settings.capture_max_rows_per_day // worker.workers,
                           settings.capture_max_bytes_per_day // worker.workers)
    spec = RuntimeSpec(
        name=worker.name, tags=worker.tags, token=settings.resolved_runtime_token(worker.name),
        public_url=worker.url, reviewed_types=settings.trusted_types,
        prod=ctx.policy().deployment.prod,
        limits=RequestLimits(max_bytes=settings.max_request_bytes, max_rows=settings.max_rows),
        heartbeat_seconds=settings.heartbeat_seconds, max_models=settings.runtime_max_models)
    return create_app(spec, ctx.registry, CaptureQueue(capture), fleet_dir)


def claim_slot(fleet_dir: Path, workers: int) -> int:
    """The lowest worker slot no live worker holds: a worker replacing one that died takes its
    slot, and with it its capture files and share of the cap."""
    slots = fleet_dir / "slots"
    slots.mkdir(mode=0o700, exist_ok=True)
    for index in range(workers * 4):
        handle = (slots / f"{index}.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held_slot.append(handle)
        return index
    raise RuntimeError(f"no free worker slot in {slots}")
