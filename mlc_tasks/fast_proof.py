"""The proof a compiled fast predict path (mlc_tasks/fast_predict.py) must pass before it serves:
identical predictions to `model.predict(frame)` on the version's sample rows and on probe rows
made around them — perturbed and edge numbers, every category the model knows, unseen ones
where the model ignores them — as one batch, as single rows and as small batches; and where an
encoder refuses unknown categories, both paths refuse the same row.

The probes are seeded, so a version compiles the same way every time; they are a few hundred
rows, so the proof costs a few model calls (tens of milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mlc_tasks.errors import SchemaMismatchError
from mlc_tasks.scoring import Column

ARRAY_DTYPES = {"float": np.dtype(np.float64), "int": np.dtype(np.int64),
                "bool": np.dtype(np.bool_), "str": np.dtype(object)}
FRAME_DTYPES = {"float": "float64", "int": "int64", "bool": "bool", "str": object}
PROBE_SEED = 13
RANDOM_ROWS = 128
MAX_SAMPLE_ROWS = 100
MAX_BASE_VALUES = 32  # distinct sample values a numeric column's probes are made around
MAX_CATEGORIES = 200  # known categories a column's probes take (a model may know millions)
EDGE_FLOATS = (0.0, -0.0, 1.0, -1.0, 0.5, 1e-9, -1e-9, 1e9, -1e9, 123456.789)
EDGE_INTS = (0, 1, -1, 2, 1000, -1000, 2**31, -(2**31), 2**53 + 1)
UNSEEN = ("mlc-unseen-probe", "", "ÜNSEEN ☃")
SINGLE_ROWS = 4
SMALL_BATCHES = (2, 10)

Predict = Callable[[Mapping[str, np.ndarray]], np.ndarray]


class ProofFailed(Exception):
    """The compiled path and the model disagree, or the model fails on the probe rows."""


@dataclass
class Hints:
    """What the compiled steps know about the input columns, for probes that reach them:
    categories, columns whose encoder refuses unknown values, centres and spreads of numbers."""

    categories: dict[str, list[Any]] = field(default_factory=dict)
    refuse_unknown: set[str] = field(default_factory=set)
    centers: dict[str, list[float]] = field(default_factory=dict)
    spreads: dict[str, list[float]] = field(default_factory=dict)

    def add_categories(self, names: tuple[str, ...] | None, number: int,
                       categories: np.ndarray, refuse_unknown: bool) -> None:
        if names is None:
            return
        found = self.categories.setdefault(names[number], [])
        found.extend(c for c in categories.tolist() if isinstance(c, str | bool | int | float)
                     and c == c)
        if refuse_unknown:
            self.refuse_unknown.add(names[number])

    def add_numbers(self, names: tuple[str, ...] | None, centers: Any, spreads: Any) -> None:
        if names is None:
            return
        for name, center, spread in zip(names, np.asarray(centers, dtype=float).tolist(),
                                        np.asarray(spreads, dtype=float).tolist(), strict=True):
            self.centers.setdefault(name, []).append(center)
            self.spreads.setdefault(name, []).append(abs(spread))


def frame_of(columns: Mapping[str, np.ndarray], schema: list[Column]) -> pd.DataFrame:
    """The frame the runtime gives the model for these columns: schema order, float64, int64,
    bool and object columns (as ScoringInput.frame() builds it)."""
    return pd.DataFrame({c.name: pd.Series(columns[c.name].copy(), dtype=FRAME_DTYPES[c.dtype])
                         for c in schema})


def prove(predict: Predict, model: Any, schema: list[Column], sample: pd.DataFrame,
          hints: Hints) -> int:
    """Raise ProofFailed unless `predict` equals the model on every probe; the rows compared."""
    probes = probe_columns(schema, sample, hints)
    rows = len(probes[schema[0].name])
    _same(predict, model, schema, probes, "all probe rows")
    for number in np.linspace(0, rows - 1, SINGLE_ROWS).astype(int):
        _same(predict, model, schema, _rows(probes, slice(number, number + 1)), f"row {number}")
    for size in SMALL_BATCHES:
        _same(predict, model, schema, _rows(probes, slice(rows - size, rows)), f"{size} rows")
    for col in schema:
        if col.name in hints.refuse_unknown:
            _both_refuse(predict, model, schema, _rows(probes, slice(0, 1)), col, hints)
    return rows


def _rows(columns: Mapping[str, np.ndarray], rows: slice) -> dict[str, np.ndarray]:
    return {name: values[rows].copy() for name, values in columns.items()}


def _expected(model: Any, schema: list[Column], columns: Mapping[str, np.ndarray]
              ) -> np.ndarray:
    try:
        return np.asarray(model.predict(frame_of(columns, schema)))
    except Exception as exc:  # the model's own failure ends the proof, with its reason
        raise ProofFailed(f"the model itself fails on the probe rows: {exc!r}") from exc


def _same(predict: Predict, model: Any, schema: list[Column],
          columns: Mapping[str, np.ndarray], what: str) -> None:
    expected = _expected(model, schema, columns)
    given = {name: values.copy() for name, values in columns.items()}
    found = predict(given)
    if any(not np.array_equal(given[n], columns[n]) for n in columns):
        raise ProofFailed(f"the fast path changed its input columns ({what})")
    if found.shape != expected.shape or found.dtype != expected.dtype:
        raise ProofFailed(f"{what}: the model gives {expected.dtype}{expected.shape}, the fast "
                          f"path {found.dtype}{found.shape}")
    if not np.array_equal(found, expected):
        row = int(np.nonzero(found != expected)[0][0])
        raise ProofFailed(f"{what}: predictions differ, first at row {row}: the model "
                          f"{expected[row]!r}, the fast path {found[row]!r}")


def _both_refuse(predict: Predict, model: Any, schema: list[Column],
                 columns: dict[str, np.ndarray], col: Column, hints: Hints) -> None:
    """A value unseen in fit in a column whose encoder refuses it: the model raises ValueError,
    the fast path SchemaMismatchError naming the column."""
    unseen = _unseen(col, hints.categories.get(col.name, []))
    if unseen is None:
        return
    columns[col.name] = np.array([unseen], dtype=ARRAY_DTYPES[col.dtype])
    try:
        model.predict(frame_of(columns, schema))
    except ValueError:
        pass
    else:
        raise ProofFailed(f"the model takes an unseen category in column '{col.name}'")
    try:
        predict(columns)
    except SchemaMismatchError as exc:
        if exc.column == col.name:
            return
    raise ProofFailed(f"the fast path does not refuse an unseen category in column "
                      f"'{col.name}'")


def _unseen(col: Column, known: list[Any]) -> Any:
    """A value of the column's type its encoder did not see (None: a bool column that saw
    both)."""
    if col.dtype == "str":
        return next(v for v in UNSEEN if v not in known)
    if col.dtype == "bool":
        return next((v for v in (False, True) if v not in known), None)
    return max(known, default=0) + 1


def probe_columns(schema: list[Column], sample: pd.DataFrame, hints: Hints
                  ) -> dict[str, np.ndarray]:
    """The sample's rows without nulls, then every candidate value of each column at least
    once, then seeded random combinations."""
    rng = np.random.default_rng(PROBE_SEED)
    seen = sample_columns(schema, sample)
    pools = {c.name: _pool(c, seen[c.name], hints, rng) for c in schema}
    cycle = max(len(pool) for pool in pools.values())
    out = {}
    for col in schema:
        pool = pools[col.name]
        picks = np.concatenate((np.arange(cycle) % len(pool),
                                rng.integers(0, len(pool), RANDOM_ROWS)))
        out[col.name] = np.concatenate((seen[col.name], pool[picks])).astype(
            ARRAY_DTYPES[col.dtype])
    return out


def sample_columns(schema: list[Column], sample: pd.DataFrame) -> dict[str, np.ndarray]:
    """The sample rows in which no schema column is null, one array per column."""
    missing = [c.name for c in schema if c.name not in sample.columns]
    if missing:
        raise ProofFailed(f"the sample rows lack columns {missing}")
    complete = sample[[c.name for c in schema]].dropna().iloc[:MAX_SAMPLE_ROWS]
    return {c.name: complete[c.name].to_numpy(dtype=ARRAY_DTYPES[c.dtype]) for c in schema}


def _pool(col: Column, seen: np.ndarray, hints: Hints, rng: np.random.Generator) -> np.ndarray:
    """Candidate values of one column; only known categories where an encoder refuses others."""
    known = _some(hints.categories.get(col.name, []), rng)
    if col.name in hints.refuse_unknown:
        pool = np.empty(len(known), dtype=object)
        pool[:] = known
        return pool
    if col.dtype == "bool":
        return np.array([False, True])
    if col.dtype == "str":
        return _str_pool(known, seen)
    numbers = [v for v in known if not isinstance(v, str)]
    floats = np.concatenate((_float_pool(col.name, seen.astype(np.float64), hints, rng),
                             np.asarray(numbers, dtype=np.float64)))
    if col.dtype == "float":
        return floats
    ints = np.round(np.clip(floats, -(2.0**62), 2.0**62)).astype(np.int64)
    return np.unique(np.concatenate((ints, np.array(EDGE_INTS, dtype=np.int64))))


def _float_pool(name: str, seen: np.ndarray, hints: Hints, rng: np.random.Generator
                ) -> np.ndarray:
    """Around each sample value and fitted centre: itself, a hair off, a spread off either
    way, scaled, negated, random draws; and the edge values."""
    base = np.unique(np.concatenate((seen, hints.centers.get(name, []))))[:MAX_BASE_VALUES]
    spread = max(hints.spreads.get(name, []) or [float(np.std(seen)) if len(seen) > 1 else 1.0])
    spread = spread if np.isfinite(spread) and spread > 0 else 1.0
    around = [base, base * (1 + 1e-12), base - spread, base + spread, base * 3.5, -base,
              base + rng.normal(0, spread, len(base)), base * rng.uniform(0.5, 1.5, len(base))]
    return np.concatenate((*around, EDGE_FLOATS))


def _some(values: list[Any], rng: np.random.Generator) -> list[Any]:
    """At most MAX_CATEGORIES distinct values, a seeded choice when there are more."""
    distinct = list(dict.fromkeys(values))
    if len(distinct) <= MAX_CATEGORIES:
        return distinct
    return [distinct[i] for i in sorted(rng.choice(len(distinct), MAX_CATEGORIES,
                                                   replace=False))]


def _str_pool(categories: list[Any], seen: np.ndarray) -> np.ndarray:
    values: Iterable[Any] = [*categories, *seen.tolist()]
    known = [v for v in dict.fromkeys(values) if isinstance(v, str)]
    known += [v for v in UNSEEN if v not in known]
    known += [v.upper() for v in known[:3] if v.upper() not in known]
    pool = np.empty(len(known) or 1, dtype=object)
    pool[:] = known or [UNSEEN[0]]
    return pool
