"""The models one runtime worker holds: for each model its current version and the one before,
fetched (sha256 checked), loaded with the reviewed types only, warmed up on its sample rows and
measured. The table is replaced whole, so a request never sees half a change."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from mlc_tasks.artifacts import fetch_verified
from mlc_tasks.errors import InvalidInputError, UnsafeArtifactError
from mlc_tasks.fast_predict import FastPredictor, compile_predictor
from mlc_tasks.open_inference import v2_datatype
from mlc_tasks.runtimes import DeployRequest
from mlc_tasks.scoring import ScoringInput, frame_from_rows
from mlc_tasks.serialization import load_artifact


@dataclass(frozen=True)
class Loaded:
    """One version in memory, ready to score: through its compiled predictor (proven equal to
    the model on its sample rows and probes at load) when the model allows it and a request
    holds no nulls, else through the model itself on a frame."""

    request: DeployRequest
    model: Any
    loaded_at: datetime
    memory_bytes: int
    fast: FastPredictor | None = None
    output_type: str | None = None  # the Open Inference datatype of its predictions

    @property
    def version_id(self) -> str:
        return self.request.version_id

    def predict(self, scoring: ScoringInput) -> np.ndarray:
        if self.fast is not None and not scoring.has_nulls:
            return self.fast.predict(scoring.columns)
        return np.asarray(self.model.predict(scoring.frame()))

    def summary(self) -> dict[str, Any]:
        r = self.request
        return {"version_id": r.version_id, "model": r.model, "number": r.number,
                "artifact_sha256": r.artifact_sha256, "deployed_at": self.loaded_at.isoformat(),
                "memory_bytes": self.memory_bytes, "compiled": self.fast is not None}


@dataclass(frozen=True)
class Slot:
    current: Loaded
    previous: Loaded | None


def load_version(request: DeployRequest, reviewed_types: Iterable[str]) -> Loaded:
    """Fetch, verify, load and warm up a version: a model that cannot score its own sample rows
    is refused. Only types this runtime's own settings list as reviewed are trusted, whatever
    the request says."""
    reviewed = set(reviewed_types)
    unreviewed = sorted(set(request.trusted_types) - reviewed)
    if unreviewed:
        raise UnsafeArtifactError(f"types not reviewed on this runtime: {unreviewed}")
    data = fetch_verified(request.artifact_uri, request.artifact_sha256)
    model = load_artifact(data, request.artifact_uri, request.trusted_types, sorted(reviewed))
    try:
        sample = frame_from_rows(request.sample_rows, request.input_schema)
        predictions = np.asarray(model.predict(sample))
    except Exception as exc:
        raise InvalidInputError(f"warm-up on the sample rows failed: {exc}") from exc
    return Loaded(request, model, datetime.now(UTC), object_bytes(model),
                  compile_predictor(model, request.input_schema, sample),
                  v2_datatype(predictions.dtype))


def object_bytes(root: Any) -> int:
    """Bytes held by an object graph (a loaded model): every object reachable from it counted
    once, numpy arrays by their buffers. Modules, classes and functions are shared code, not
    the model's, and are not followed."""
    seen: dict[int, Any] = {}  # holding each object: a native state's copies stay alive, ids unique
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | type(sys) | Callable):  # type: ignore[arg-type]
            continue
        seen[id(obj)] = obj
        if isinstance(obj, np.ndarray):
            total += sys.getsizeof(obj) + (obj.nbytes if obj.base is None else 0)
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
            continue
        total += sys.getsizeof(obj)
        referents = gc.get_referents(obj)
        stack.extend(referents or _native_state(obj))
    return total


def _native_state(obj: Any) -> list[Any]:
    """What a native (Cython) object such as sklearn's Tree holds outside Python's view: the
    arrays its own __getstate__ gives."""
    if isinstance(obj, str | bytes | int | float | bool | type(None)):
        return []
    try:
        state = obj.__getstate__()
    except Exception:
        return []
    return list(state.values()) if isinstance(state, dict) else []


class ModelTable:
    """What one worker serves, by model name."""

    def __init__(self) -> None:
        self._slots: dict[str, Slot] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> Loaded | None:
        slot = self._slots.get(model)
        return slot.current if slot else None

    def slots(self) -> dict[str, Slot]:
        return dict(self._slots)

    def loaded(self, version_id: str) -> Loaded | None:
        for slot in self._slots.values():
            for held in (slot.current, slot.previous):
                if held is not None and held.version_id == version_id:
                    return held
        return None

    def apply(self, wanted: Mapping[str, tuple[DeployRequest, DeployRequest | None]],
              load: Callable[[DeployRequest], Loaded]) -> dict[str, str]:
        """Serve exactly `wanted` (model → current and previous request), keeping what is
        loaded already and loading the rest; returns the versions that failed to load (id →
        error), whose models keep what they had."""
        with self._lock:
            slots, failed = {}, {}
            for model, (current, previous) in wanted.items():
                try:
                    now = self.loaded(current.version_id) or load(current)
                except Exception as exc:  # one broken version never stops the others
                    failed[current.version_id] = f"{model}:{current.number}: {exc}"
                    if model in self._slots:
                        slots[model] = self._slots[model]
                    continue
                before = previous and (self.loaded(previous.version_id)
                                       or _try(load, previous))
                slots[model] = Slot(now, before or None)
            self._slots = slots
            return failed

    def summary(self) -> dict[str, Any]:
        return {model: {"current": slot.current.summary(),
                        "previous": slot.previous.summary() if slot.previous else None}
                for model, slot in sorted(self._slots.items())}

    def memory_bytes(self) -> int:
        held = {h.version_id: h.memory_bytes for s in self._slots.values()
                for h in (s.current, s.previous) if h is not None}
        return sum(held.values())


def _try(load: Callable[[DeployRequest], Loaded], request: DeployRequest) -> Loaded | None:
    """The previous version is a convenience (an undo): one that no longer loads is left out."""
    try:
        return load(request)
    except Exception:
        return None
