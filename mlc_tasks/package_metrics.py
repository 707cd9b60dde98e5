"""A package's own metrics function (`metrics_function: metrics.py:business_metrics` in
model.yaml): called with the labels, the predictions and the positive-class scores, it returns
{name: number}. It is the package owner's code, so it runs contained (mlc_tasks/sandbox.py:
bubblewrap, no network, no files of ours, limits) and sees only those three lists, never the
model, the registry or our settings and secrets.

In bootstrap mode (champion/challenger comparison) one such process calls it on all rows and on
every resample, for both models, with the same row indices as comparison.bootstrap_indices."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlc_tasks.errors import InvalidInputError, InvalidPackageError
from mlc_tasks.sandbox import SandboxLimits, run_contained

LOADER = r"""
import json, sys, types
request = json.load(sys.stdin)
module = types.ModuleType("package_metrics")
module.__file__ = request["file"]
exec(compile(request["code"], request["file"], "exec"), module.__dict__)
function = getattr(module, request["function"], None)
if not callable(function):
    sys.exit(f"{request['file']} defines no function {request['function']}")
"""

RUNNER = LOADER + r"""
result = function(request["y_true"], request["y_pred"], request["y_score"])
json.dump({k: float(v) for k, v in dict(result).items()}, sys.stdout)
"""

# The indices are comparison.bootstrap_indices(n, resamples, seed), drawn one resample at a
# time (numpy's int32 draws take the generator's 32-bit values in order, so row by row equals
# the whole matrix; a test checks it) to hold one row in memory, not resamples × n.
BOOTSTRAP_RUNNER = LOADER + r"""
import numpy as np

def measure(y, pred, score):
    return {k: float(v) for k, v in dict(function(y, pred, score)).items()}

y_true, sides = request["y_true"], [request["champion"], request["challenger"]]
full = [measure(y_true, pred, score) for pred, score in sides]
if set(full[0]) != set(full[1]):
    sys.exit(f"the champion's metrics {sorted(full[0])} differ from the challenger's")
arrays = [np.array(v, dtype=object) if v is not None else None
          for v in [y_true] + [value for side in sides for value in side]]
rng, n = np.random.default_rng(request["seed"]), len(y_true)
samples = [{name: [] for name in full[0]} for _ in sides]
for resample in range(request["resamples"]):
    rows = rng.integers(0, n, size=n, dtype=np.int32)
    taken = [None if a is None else a[rows].tolist() for a in arrays]
    for side, (pred, score) in enumerate([taken[1:3], taken[3:5]]):
        values = measure(taken[0], pred, score)
        if set(values) != set(full[0]):
            sys.exit(f"resample {resample}: metrics {sorted(values)}, not {sorted(full[0])}")
        for name, value in values.items():
            samples[side][name].append(value)
json.dump({name: [full[0][name], full[1][name], samples[0][name], samples[1][name]]
           for name in full[0]}, sys.stdout)
"""


class PackageCode(BaseModel):
    """A package's metrics function: `file.py:function`, the file's source, and the limits
    of the sandbox it runs in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: str
    source: str
    limits: SandboxLimits = SandboxLimits()


def parse_reference(reference: str) -> tuple[str, str]:
    """`metrics.py:business_metrics` → (file, function)."""
    file, _, function = reference.partition(":")
    if not file.endswith(".py") or not function.isidentifier():
        raise InvalidPackageError(f"field 'metrics_function': '{reference}' is not "
                                  "file.py:function_name")
    return file, function


def run_metrics_function(code: PackageCode, y_true: list[Any], y_pred: list[Any],
                         y_score: list[float] | None, standard: set[str]) -> dict[str, float]:
    """The function's metrics; errors name the function and what is wrong."""
    request = {"y_true": y_true, "y_pred": y_pred, "y_score": y_score}
    return checked(code.reference, _run(code, RUNNER, request), standard)


Side = tuple[list[Any], list[float] | None]  # (predictions, positive-class scores or None)


def run_metrics_bootstrap(code: PackageCode, y_true: list[Any], champion: Side,
                          challenger: Side, resamples: int, seed: int, standard: set[str]
                          ) -> dict[str, tuple[float, float, list[float], list[float]]]:
    """Metric → (champion on all rows, challenger on all rows, champion per resample,
    challenger per resample), the resamples shared by both models; one process for all."""
    for name, (pred, score) in (("champion", champion), ("challenger", challenger)):
        for what, values in (("predictions", pred), ("scores", score)):
            if values is not None and len(values) != len(y_true):
                raise InvalidInputError(f"{name} {what}: {len(values)} values for "
                                        f"{len(y_true)} labelled rows")
    request = {"y_true": y_true, "champion": list(champion), "challenger": list(challenger),
               "resamples": resamples, "seed": seed}
    found = _run(code, BOOTSTRAP_RUNNER, request)
    for side in (0, 1):
        checked(code.reference, {name: values[side] for name, values in found.items()},
                standard)
        for name, values in found.items():
            if not all(math.isfinite(v) for v in values[2 + side]):
                raise InvalidPackageError(f"{code.reference}: metric '{name}' is not a finite "
                                          "number on some resamples")
    return {name: (a, b, list(sa), list(sb)) for name, (a, b, sa, sb) in found.items()}


def _run(code: PackageCode, runner: str, request: dict[str, Any]) -> Any:
    """The runner's JSON answer from a contained process; errors name the function."""
    file, function = parse_reference(code.reference)
    request = {"file": file, "function": function, "code": code.source} | request
    done = run_contained([sys.executable, "-I", "-c", runner], json.dumps(request),
                         code.limits, code.reference)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InvalidPackageError(f"{code.reference} failed: {last}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise InvalidPackageError(f"{code.reference}: printed something other than its "
                                  f"result ({exc})") from exc


def checked(reference: str, metrics: dict[str, float], standard: set[str]) -> dict[str, float]:
    for name, value in metrics.items():
        if name in standard:
            raise InvalidPackageError(f"{reference}: '{name}' is a standard metric; give the "
                                      "package's own metric another name")
        if not math.isfinite(value):
            raise InvalidPackageError(f"{reference}: metric '{name}' is {value}")
    return metrics
