"""In-process predict on the example models: `model.predict(frame)` against the compiled lean
path `FastPredictor.predict(columns)` (mlc_tasks/fast_predict.py), 1 and 100 rows, median of
many runs measured alternately; and what compiling and proving the lean path costs.

    .venv/bin/python benchmarks/fast_predict_bench.py      (after `make examples`)
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlc_tasks.fast_predict import compile_predictor, plan  # noqa: E402
from mlc_tasks.fast_proof import Hints, frame_of, probe_columns  # noqa: E402
from mlc_tasks.packages import parse_model_yaml, read_sample  # noqa: E402
from mlc_tasks.scoring import frame_from_rows  # noqa: E402
from mlc_tasks.serialization import inspect_artifact, load_artifact  # noqa: E402
from mlc_tasks.settings import REVIEWED_TYPES  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUNS, COMPILES = 2000, 15


def load(name: str) -> tuple[Any, Any, Any]:
    spec = parse_model_yaml(EXAMPLES / name / "model.yaml")
    data = (EXAMPLES / name / "model.skops").read_bytes()
    types = inspect_artifact(data, name, list(REVIEWED_TYPES))
    model = load_artifact(data, name, types.needs_review, list(REVIEWED_TYPES))
    sample = frame_from_rows(read_sample(EXAMPLES / name / "sample.json"), spec.input_schema)
    return model, spec.input_schema, sample


def medians(calls: dict[str, Callable[[], Any]], runs: int) -> dict[str, float]:
    """Median microseconds of each call, the calls alternating so load hits them alike."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(found) * 1e6 for name, found in times.items()}


def bench(name: str) -> None:
    model, schema, sample = load(name)
    compile_times = []
    for _ in range(COMPILES):
        started = time.perf_counter()
        predictor = compile_predictor(model, schema, sample)
        compile_times.append(time.perf_counter() - started)
    assert predictor is not None, f"{name}: no fast path"
    hints = Hints()
    plan(model, schema, hints)
    probes = probe_columns(schema, sample, hints)  # sample rows, edge values, unseen categories
    for rows in (1, 100):
        columns = {k: np.resize(v, rows) for k, v in probes.items()}
        frame = frame_of(columns, schema)
        assert np.array_equal(model.predict(frame), predictor.predict(columns))
        found = medians({"model": partial(model.predict, frame),
                         "fast": partial(predictor.predict, columns)}, RUNS)
        print(f"{name:13} {rows:>3} rows  model.predict(frame) {found['model']:7.1f} µs  "  # noqa: T201
              f"fast predict(columns) {found['fast']:6.1f} µs  "
              f"{found['model'] / found['fast']:5.1f}×")
    print(f"{name:13} compile + proof: median {statistics.median(compile_times) * 1e3:.1f} ms, "  # noqa: T201
          f"min {min(compile_times) * 1e3:.1f} ms over {COMPILES}")


if __name__ == "__main__":
    for example in ("credit-risk", "house-prices"):
        bench(example)
