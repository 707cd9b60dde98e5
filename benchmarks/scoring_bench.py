"""The per-request path of a scoring request before the model: read the body, validate it
against credit-risk's input schema, build the frame. Best of 7 runs, µs per request, for 1 and
100 rows in each MLflow format and in the Open Inference Protocol (V2), and, with `--baseline`,
the row-dict path of an older mlc_tasks/scoring.py (rows_from_body + frame_from_rows) beside it:

    git show <commit>:mlc_tasks/scoring.py > /tmp/scoring_old.py
    .venv/bin/python benchmarks/scoring_bench.py --baseline /tmp/scoring_old.py
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import timeit
from collections.abc import Callable
from types import ModuleType

from mlc_tasks.open_inference import read_v2_infer
from mlc_tasks.scoring import Column, RequestLimits, ScoringInput, read_mlflow

SCHEMA = [Column(name="income", dtype="float"), Column(name="debt_ratio", dtype="float"),
          Column(name="age", dtype="int"), Column(name="employment_years", dtype="int"),
          Column(name="region", dtype="str")]
ROW = [52000.0, 0.31, 34, 6, "north"]
DATATYPES = {"float": "FP64", "int": "INT64", "str": "BYTES"}
LIMITS = RequestLimits()


def bodies(rows: int) -> dict[str, tuple[bytes, str]]:
    names = [c.name for c in SCHEMA]
    record = dict(zip(names, ROW, strict=True))
    as_json = {
        "dataframe_split": {"dataframe_split": {"columns": names, "data": [ROW] * rows}},
        "dataframe_records": {"dataframe_records": [record] * rows},
        "inputs (columnar)": {"inputs": {n: [v] * rows for n, v in record.items()}}}
    found = {label: (json.dumps(body).encode(), "application/json")
             for label, body in as_json.items()}
    found["text/csv"] = ((",".join(names) + "\n" + "52000.0,0.31,34,6,north\n" * rows).encode(),
                         "text/csv")
    v2 = {"inputs": [{"name": c.name, "shape": [rows], "datatype": DATATYPES[c.dtype],
                      "data": [v] * rows} for c, v in zip(SCHEMA, ROW, strict=True)]}
    found["v2 infer"] = (json.dumps(v2).encode(), "v2")
    return found


def best(run: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(run, number=number, repeat=7)) / number * 1e6


def baseline(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("scoring_baseline", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the module's annotations through it
    spec.loader.exec_module(module)
    return module


def measure(old: ModuleType | None) -> None:
    print(f"{'format':18} {'rows':>5} {'validate µs':>12} {'+ frame µs':>11} {'baseline µs':>12}")
    for rows in (1, 100):
        number = 3000 if rows == 1 else 500
        for label, (body, media) in bodies(rows).items():
            read = reader(body, media)
            validate, framed = best(read, number), best(lambda r=read: r().frame(), number)
            before = baseline_path(old, body, media)
            was = f"{best(before, number):12.1f}" if before else ""
            print(f"{label:18} {rows:5d} {validate:12.1f} {framed:11.1f} {was:>12}")


def reader(body: bytes, media: str) -> Callable[[], ScoringInput]:
    if media == "v2":
        return lambda: read_v2_infer(body, SCHEMA, LIMITS).input
    return lambda: read_mlflow(body, media, SCHEMA, LIMITS)


def baseline_path(old: ModuleType | None, body: bytes, media: str
                  ) -> Callable[[], object] | None:
    """The old row-dict path, for the formats it reads (split, records, CSV)."""
    if old is None or media == "v2" or b'"inputs"' in body[:20]:
        return None
    schema = [old.Column(**c.model_dump()) for c in SCHEMA]
    limits = old.RequestLimits()
    return lambda: old.frame_from_rows(old.rows_from_body(body, media, schema, limits), schema)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="µs per scoring request before the model")
    parser.add_argument("--baseline", help="an older mlc_tasks/scoring.py to measure beside")
    arguments = parser.parse_args()
    measure(baseline(arguments.baseline) if arguments.baseline else None)
