"""Scoring input: the MLflow request formats (JSON `dataframe_split` / `dataframe_records`, CSV
with a header), read within limits, and validated against a version's input schema."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.errors import (
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)

Dtype = Literal["float", "int", "str", "bool"]
MEDIA_TYPES = ("application/json", "text/csv")
INT64 = (-(2**63), 2**63 - 1)
MAX_DIGITS = 309  # more digits than the largest float has: out of range for every column


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


def media_type(content_type: str | None) -> str:
    """The request's media type if the runtime reads it. Others (text/plain, forms: what a web
    page may post cross-site without asking) are refused before the body is read."""
    found = (content_type or "").split(";", 1)[0].strip().lower()
    if found not in MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type '{found or 'none'}' is not read here; send "
            f"{' or '.join(MEDIA_TYPES)}")
    return found


def too_large(size: int, limit: int, at_least: bool = False) -> str:
    """What a runtime answers (413) to a body over its limit."""
    more = "more than " if at_least else ""
    return (f"request body of {more}{size} bytes; a request takes at most {limit} bytes "
            "(MLC_MAX_REQUEST_BYTES)")


def rows_from_body(body: bytes, media: str, schema: list[Column], limits: RequestLimits
                   ) -> list[dict[str, Any]]:
    """Rows from a request body of a media type `media_type` accepted."""
    if media == "text/csv":
        return rows_from_csv(body, schema, limits.max_rows)
    rows = rows_from_request(parse_json(body))
    check_rows(len(rows), limits.max_rows)
    return rows


def check_rows(count: int, max_rows: int) -> None:
    if count > max_rows:
        raise RequestTooLargeError(f"{count} rows; a request takes at most {max_rows} rows "
                                   "(MLC_MAX_ROWS)")


def parse_json(body: bytes) -> Any:
    """JSON with every number in range; NaN and Infinity (which JSON does not have, but
    Python's parser takes) are refused, and so is nesting deeper than the parser recurses
    (the formats need three levels; a deeper cell value is a schema mismatch)."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_int=_parse_int,
                          parse_float=_parse_float)
    except RecursionError:
        raise ScoringRequestError("JSON nested too deep (arrays or objects more than "
                                  f"{sys.getrecursionlimit()} levels deep)") from None


def _refuse_constant(name: str) -> float:
    raise ScoringRequestError(f"{name} is not a number JSON has; send null for a missing value")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise ScoringRequestError(f"a number of {len(text.lstrip('-'))} digits is out of range "
                                  "for every column type")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ScoringRequestError(f"the number {text[:40]} is out of range for a float")
    return value


def rows_from_request(body: Any) -> list[dict[str, Any]]:
    """Rows from an MLflow scoring-server body: `dataframe_split` or `dataframe_records`."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object with dataframe_split or dataframe_records")
    if "dataframe_records" in body:
        records = body["dataframe_records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ValueError("dataframe_records must be a list of objects")
        return records
    if "dataframe_split" in body:
        split = body["dataframe_split"]
        if not isinstance(split, dict) or "columns" not in split or "data" not in split:
            raise ValueError("dataframe_split must have 'columns' and 'data'")
        columns, data = split["columns"], split["data"]
        if not isinstance(columns, list) or not isinstance(data, list):
            raise ValueError("dataframe_split: 'columns' and 'data' must be lists")
        if any(not isinstance(row, list) or len(row) != len(columns) for row in data):
            raise ValueError("dataframe_split: every row of 'data' must have one value per column")
        return [dict(zip(columns, row, strict=True)) for row in data]
    raise ValueError("body needs 'dataframe_split' or 'dataframe_records'")


def rows_from_csv(body: bytes, schema: list[Column], max_rows: int) -> list[dict[str, Any]]:
    """Rows from CSV with a header line (MLflow's text/csv): each schema column read as its
    dtype, an empty field as null; other columns are left out, as in JSON."""
    try:
        lines = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not CSV: {exc}") from exc
    if not lines:
        raise ValueError("CSV body is empty; send a header line and rows")
    header, records = lines[0], lines[1:]
    check_rows(len(records), max_rows)
    for number, record in enumerate(records, start=2):
        if len(record) != len(header):
            raise ValueError(f"CSV line {number} has {len(record)} fields; the header has "
                             f"{len(header)}")
    where = {col.name: _csv_index(header, col) for col in schema}
    return [{col.name: _csv_value(record[where[col.name]], col, number)
             for col in schema} for number, record in enumerate(records, start=2)]


def _csv_index(header: list[str], col: Column) -> int:
    if col.name not in header:
        raise SchemaMismatchError(col.name, f"column '{col.name}' is missing from the CSV header")
    return header.index(col.name)


def _csv_value(text: str, col: Column, line: int) -> Any:
    if text == "":
        return None
    where = f"column '{col.name}', CSV line {line}"
    if col.dtype == "str":
        return text
    if col.dtype == "bool":
        if text.lower() not in ("true", "false"):
            raise SchemaMismatchError(col.name, f"{where}: expects bool, got {_short(text)}")
        return text.lower() == "true"
    try:
        value = _parse_int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        raise SchemaMismatchError(col.name, f"{where}: expects {col.dtype}, got "
                                            f"{_short(text)}") from None
    except ScoringRequestError as exc:
        raise ScoringRequestError(f"{where}: {exc}", col.name) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ScoringRequestError(f"{where}: {_short(text)} is not a finite number", col.name)
    return value


def frame_from_rows(rows: list[dict[str, Any]], schema: list[Column]) -> pd.DataFrame:
    """A frame with exactly the schema's columns in order and dtypes; SchemaMismatchError names
    the first column that is missing or holds a value of the wrong type, ScoringRequestError
    one with a number out of range for its dtype. Other columns are never read."""
    if not rows:
        raise SchemaMismatchError("", "no rows to score")
    return pd.DataFrame({col.name: _column(rows, col) for col in schema})


def _column(rows: list[dict[str, Any]], col: Column) -> pd.Series:
    if not any(col.name in row for row in rows):
        raise SchemaMismatchError(col.name, f"column '{col.name}' is missing")
    values = [row.get(col.name) for row in rows]
    present = [v for v in values if not _is_null(v)]
    if len(present) < len(values) and not col.nullable:
        raise SchemaMismatchError(col.name, f"column '{col.name}' has empty values")
    bad = next((v for v in present if not _fits(v, col.dtype)), None)
    if bad is not None:
        raise SchemaMismatchError(
            col.name, f"column '{col.name}' expects {col.dtype}, got {_short(bad)}"
        )
    out_of_range = next((v for v in present if not _in_range(v, col.dtype)), None)
    if out_of_range is not None:
        raise ScoringRequestError(f"column '{col.name}': {_short(out_of_range)} is out of range "
                                  f"for {col.dtype}", col.name)
    return _series(values, col.dtype, has_nulls=len(present) < len(values))


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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"


def _series(values: list[Any], dtype: Dtype, has_nulls: bool) -> pd.Series:
    values = [None if _is_null(v) else v for v in values]
    if dtype == "float":
        return pd.Series(values, dtype="float64")
    if dtype == "int":
        return pd.Series([None if v is None else int(v) for v in values],
                         dtype="Int64" if has_nulls else "int64")
    if dtype == "bool":
        return pd.Series(values, dtype="boolean" if has_nulls else "bool")
    return pd.Series(values, dtype=object)
