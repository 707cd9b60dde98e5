"""A package's own metrics function (`metrics_function: metrics.py:business_metrics` in
model.yaml): called with the labels, the predictions and the positive-class scores, it returns
{name: number}. It is the package owner's code, so it runs in its own isolated Python process
(`python -I`, an empty environment, a temporary working folder, a time limit) and sees only
those three lists, never the model, the registry or our settings and secrets."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from typing import Any

from mlc_tasks.errors import InvalidPackageError

RUNNER = r"""
import json, sys, types
request = json.load(sys.stdin)
module = types.ModuleType("package_metrics")
module.__file__ = request["file"]
exec(compile(request["code"], request["file"], "exec"), module.__dict__)
function = getattr(module, request["function"], None)
if not callable(function):
    sys.exit(f"{request['file']} defines no function {request['function']}")
result = function(request["y_true"], request["y_pred"], request["y_score"])
json.dump({k: float(v) for k, v in dict(result).items()}, sys.stdout)
"""


def parse_reference(reference: str) -> tuple[str, str]:
    """`metrics.py:business_metrics` → (file, function)."""
    file, _, function = reference.partition(":")
    if not file.endswith(".py") or not function.isidentifier():
        raise InvalidPackageError(f"field 'metrics_function': '{reference}' is not "
                                  "file.py:function_name")
    return file, function


def run_metrics_function(reference: str, code: str, y_true: list[Any], y_pred: list[Any],
                         y_score: list[float] | None, standard: set[str],
                         timeout: float = 120.0) -> dict[str, float]:
    """The function's metrics; errors name the function and what is wrong."""
    file, function = parse_reference(reference)
    request = {"file": file, "function": function, "code": code, "y_true": y_true,
               "y_pred": y_pred, "y_score": y_score}
    with tempfile.TemporaryDirectory() as folder:
        try:
            done = subprocess.run([sys.executable, "-I", "-c", RUNNER], input=json.dumps(request),
                                  capture_output=True, text=True, timeout=timeout, cwd=folder,
                                  env={"PATH": os.defpath})  # no tokens, no passwords
        except subprocess.TimeoutExpired as exc:
            raise InvalidPackageError(f"{reference}: did not finish within {timeout:.0f} s"
                                      ) from exc
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise InvalidPackageError(f"{reference} failed: {last}")
    return checked(reference, json.loads(done.stdout), standard)


def checked(reference: str, metrics: dict[str, float], standard: set[str]) -> dict[str, float]:
    for name, value in metrics.items():
        if name in standard:
            raise InvalidPackageError(f"{reference}: '{name}' is a standard metric; give the "
                                      "package's own metric another name")
        if not math.isfinite(value):
            raise InvalidPackageError(f"{reference}: metric '{name}' is {value}")
    return metrics
