"""Scoring input, validated: a request's values checked column by column against a version's
input schema into a `ScoringInput` (one array per column, the frame built once, only when
asked), JSON read within bounds, and the status a refused request gets. The protocols
(scoring.py: MLflow's; open_inference.py: KServe V2) read their bodies into this."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.errors import (
    InvalidInputError,
    NotFoundError,
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)

Dtype = Literal["float", "int", "str", "bool"]
INT64 = (-(2**63), 2**63 - 1)
MAX_DIGITS = 309  # more digits than the largest float has: out of range for every column
# Types a column takes without a closer look (exact types: bool is not an int here).
PLAIN: dict[str, frozenset[type]] = {"float": frozenset({float, int}), "int": frozenset({int}),
                                     "str": frozenset({str}), "bool": frozenset({bool})}
NUMPY = {"float": np.float64, "int": np.int64, "str": object, "bool": np.bool_}
_DIGITS = bytes(ord("0") if 48 <= i <= 57 else i for i in range(256))
_ABSENT = object()


class Column(BaseModel):
    """One input column the model expects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    dtype: Dtype
    nullable: bool = False


class RequestLimits(BaseModel):
    """What one scoring request may hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_rows: int = Field(default=10_000, ge=1)


@dataclass(frozen=True, eq=False)
class ScoringInput:
    """A request's input, validated: `columns` holds exactly the schema's columns in schema
    order, one 1-D array each (float64, int64, bool, or object for str). A column with a null
    holds float64 with NaN (float) or object with None (int, bool, str): read `frame()` then."""

    columns: dict[str, np.ndarray]
    rows: int
    params: dict[str, Any]
    has_nulls: bool
    schema: tuple[Column, ...]
    _frame: pd.DataFrame | None = field(default=None, init=False, repr=False)

    def frame(self) -> pd.DataFrame:
        """The frame the model predicts on (built once): schema order and dtypes, Int64 and
        boolean where an int or bool column holds a null."""
        if self._frame is None:  # two threads may both build it: the same frame, harmless
            object.__setattr__(self, "_frame", self._build_frame())
        return self._frame  # type: ignore[return-value]

    def _build_frame(self) -> pd.DataFrame:
        arrays = [_frame_array(self.columns[col.name], col.dtype) for col in self.schema]
        # pandas is pinned (pyproject); test_scoring checks this equals the public constructor,
        # which costs 60 µs more a request and would turn object columns into pandas strings
        columns = _column_index(tuple(col.name for col in self.schema))
        return pd.DataFrame._from_arrays(arrays, columns=columns, index=pd.RangeIndex(self.rows),
                                         verify_integrity=False)


@lru_cache(maxsize=4096)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """One (immutable) column index per schema: building it takes 18 µs, the whole frame 16."""
    return pd.Index(names)


def _frame_array(values: np.ndarray, dtype: Dtype) -> Any:
    if values.dtype == object and dtype == "int":
        return pd.array(values, dtype="Int64")
    if values.dtype == object and dtype == "bool":
        return pd.array(values, dtype="boolean")
    return values


def too_large(size: int, limit: int, at_least: bool = False) -> str:
    """What a runtime answers (413) to a body over its limit."""
    more = "more than " if at_least else ""
    return (f"request body of {more}{size} bytes; a request takes at most {limit} bytes "
            "(MLC_MAX_REQUEST_BYTES)")


def check_rows(count: int, max_rows: int, at_least: bool = False) -> None:
    """RequestTooLargeError (413) for more rows than a request may hold."""
    if count > max_rows:
        raise RequestTooLargeError(f"{'at least ' if at_least else ''}{count} rows; a request "
                                   f"takes at most {max_rows} rows (MLC_MAX_ROWS)")


def build_input(schema: list[Column] | tuple[Column, ...], rows: int,
                values: Callable[[str], list[Any] | None], params: dict[str, Any]
                ) -> ScoringInput:
    """A ScoringInput from each column's values (None: the column is not in the request),
    checked in schema order; SchemaMismatchError names the first column that is missing or
    holds a wrong value, ScoringRequestError one with a number out of range for its dtype."""
    if rows == 0:
        raise SchemaMismatchError("", "no rows to score")
    columns: dict[str, np.ndarray] = {}
    nulls = False
    for col in schema:
        found = values(col.name)
        if found is None:
            raise SchemaMismatchError(col.name, f"column '{col.name}' is missing")
        columns[col.name], has_nulls = validate_column(found, col)
        nulls = nulls or has_nulls
    return ScoringInput(columns, rows, params, nulls, tuple(schema))


# ---- one column's values ----------------------------------------------------------------------

def validate_column(values: list[Any], col: Column) -> tuple[np.ndarray, bool]:
    """The column's array and whether it holds a null. Plain values (JSON's) take the fast way;
    anything else (nulls, numpy scalars, wrong types, out of range) is looked at one by one."""
    if set(map(type, values)) <= PLAIN[col.dtype]:
        array = _plain_array(values, col.dtype)
        if array is not None:
            return array, False
    return _checked_array(values, col)


def _plain_array(values: list[Any], dtype: Dtype) -> np.ndarray | None:
    """None when a value is out of range for the dtype (the slow way names it)."""
    try:
        array = np.array(values, dtype=NUMPY[dtype])
    except OverflowError:
        return None
    if dtype == "float" and not np.isfinite(array).all():
        return None
    return array


def _checked_array(values: list[Any], col: Column) -> tuple[np.ndarray, bool]:
    present = [v for v in values if not _is_null(v)]
    has_nulls = len(present) < len(values)
    if has_nulls and not col.nullable:
        raise SchemaMismatchError(col.name, f"column '{col.name}' has empty values")
    bad = next((v for v in present if not _fits(v, col.dtype)), _ABSENT)
    if bad is not _ABSENT:
        raise SchemaMismatchError(
            col.name, f"column '{col.name}' expects {col.dtype}, got {describe(bad)}")
    out_of_range = next((v for v in present if not _in_range(v, col.dtype)), _ABSENT)
    if out_of_range is not _ABSENT:
        raise ScoringRequestError(f"column '{col.name}': {describe(out_of_range)} is out of range "
                                  f"for {col.dtype}", col.name)
    return _array([None if _is_null(v) else v for v in values], col.dtype, has_nulls), has_nulls


def _array(values: list[Any], dtype: Dtype, has_nulls: bool) -> np.ndarray:
    if dtype == "float":
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if dtype == "int":
        values = [None if v is None else int(v) for v in values]
    if dtype == "bool":
        values = [None if v is None else bool(v) for v in values]
    if has_nulls or dtype == "str":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return np.array(values, dtype=NUMPY[dtype])


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fits(value: Any, dtype: Dtype) -> bool:
    if isinstance(value, bool | np.bool_):
        return dtype == "bool"
    if dtype == "float":
        return isinstance(value, int | float | np.integer | np.floating)
    if dtype == "int":
        return isinstance(value, int | np.integer) or (
            isinstance(value, float | np.floating) and float(value).is_integer()
        )
    if dtype == "str":
        return isinstance(value, str)
    return False


def _in_range(value: Any, dtype: Dtype) -> bool:
    """A value that fits the dtype also fits its storage: finite float64, or int64."""
    if dtype == "float":
        try:
            return math.isfinite(float(value))
        except OverflowError:
            return False
    if dtype == "int":
        return INT64[0] <= int(value) <= INT64[1]
    return True


def describe(value: Any) -> str:
    """A value as an error message names it: short, and never nested."""
    if isinstance(value, list | dict):  # never repr a nested value: it may be 1000 levels deep
        return f"{kind_of(value)} ({len(value)} items)"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def kind_of(value: Any) -> str:
    """What a JSON value is, in words."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null"}
    return kinds.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def record_values(records: list[dict[str, Any]], name: str) -> list[Any] | None:
    """A column of records (objects): null where a record lacks it, None if all do."""
    try:
        return list(map(itemgetter(name), records))
    except KeyError:
        values = [record.get(name, _ABSENT) for record in records]
        if all(v is _ABSENT for v in values):
            return None
        return [None if v is _ABSENT else v for v in values]


# ---- JSON -------------------------------------------------------------------------------------

def parse_json(body: bytes) -> Any:
    """JSON with every number in range; NaN and Infinity (which JSON does not have) are refused
    (ScoringRequestError), and so is nesting deeper than 1024 levels; not JSON: ValueError.
    orjson reads it; integers of 19 digits or more, which orjson turns into floats past 64 bits,
    are read again exactly, and a refusal is explained by the standard parser."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _refusal(body, exc) from None
    if b"0" * 19 in body.translate(_DIGITS):
        return _parse_exact(body)
    return document


def _refusal(body: bytes, exc: orjson.JSONDecodeError) -> Exception:
    if "depth limit" in str(exc) or "recursion" in str(exc):
        return ScoringRequestError("JSON nested too deep (arrays or objects more than 1024 "
                                   "levels deep)")
    try:
        _parse_exact(body)  # raises the ScoringRequestError that names the number
    except (ScoringRequestError, ValueError) as named:
        return named
    return ValueError(str(exc))  # the standard parser reads what orjson does not: refuse it


def _parse_exact(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_int=bounded_int,
                          parse_float=_parse_float)
    except RecursionError:
        raise ScoringRequestError("JSON nested too deep (arrays or objects more than "
                                  f"{sys.getrecursionlimit()} levels deep)") from None


def _refuse_constant(name: str) -> float:
    raise ScoringRequestError(f"{name} is not a number JSON has; send null for a missing value")


def bounded_int(text: str) -> int:
    """int(text), refused past MAX_DIGITS digits (int() of a long text takes quadratic time)."""
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ScoringRequestError(f"a number of {len(text.lstrip('-'))} digits is out of range "
                                  "for every column type")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ScoringRequestError(f"the number {text[:40]} is out of range for a float")
    return value


# ---- refusals ---------------------------------------------------------------------------------

def error_status(exc: Exception) -> int:
    """413 over a limit, 415 a media type not read, 404 a model not served, 400 any other bad
    input (ours, or a ValueError / TypeError the model raised on it), else 500."""
    if isinstance(exc, RequestTooLargeError):
        return 413
    if isinstance(exc, UnsupportedMediaTypeError):
        return 415
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InvalidInputError | ValueError | TypeError):
        return 400
    return 500


def error_message(exc: Exception) -> str:
    """What a client is told: the error itself when it is about the request, never the inside
    of a failure (500)."""
    if error_status(exc) == 500:
        return "the runtime failed to score this request; its log says why"
    return str(exc)[:2000]


# ---- rows (batch scoring, evaluation) -----------------------------------------------------------

def frame_from_rows(rows: list[dict[str, Any]], schema: list[Column]) -> pd.DataFrame:
    """A frame with exactly the schema's columns in order and dtypes; SchemaMismatchError names
    the first column that is missing or holds a value of the wrong type, ScoringRequestError
    one with a number out of range for its dtype. Other columns are never read."""
    return build_input(schema, len(rows), lambda name: record_values(rows, name), {}).frame()
