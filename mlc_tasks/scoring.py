"""Scoring input: the MLflow request format and validation against a version's input schema."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.errors import SchemaMismatchError

Dtype = Literal["float", "int", "str", "bool"]


class Column(BaseModel):
    """One input column the model expects."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    dtype: Dtype
    nullable: bool = False


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


def frame_from_rows(rows: list[dict[str, Any]], schema: list[Column]) -> pd.DataFrame:
    """A frame with exactly the schema's columns in order and dtypes; SchemaMismatchError names
    the first column that is missing or holds a value of the wrong type."""
    if not rows:
        raise SchemaMismatchError("", "no rows to score")
    frame = pd.DataFrame.from_records(rows)
    return pd.DataFrame({col.name: _column(frame, col) for col in schema})


def _column(frame: pd.DataFrame, col: Column) -> pd.Series:
    if col.name not in frame.columns:
        raise SchemaMismatchError(col.name, f"column '{col.name}' is missing")
    values = frame[col.name]
    nulls = values.isna()
    if nulls.any() and not col.nullable:
        raise SchemaMismatchError(col.name, f"column '{col.name}' has empty values")
    present = values[~nulls]
    if not all(_fits(v, col.dtype) for v in present):
        bad = next(v for v in present if not _fits(v, col.dtype))
        raise SchemaMismatchError(
            col.name, f"column '{col.name}' expects {col.dtype}, got {bad!r}"
        )
    return _cast(values, col.dtype)


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


def _cast(values: pd.Series, dtype: Dtype) -> pd.Series:
    if dtype == "float":
        return values.astype("float64")
    if dtype == "int":
        return values.astype("Int64" if values.isna().any() else "int64")
    if dtype == "bool":
        return values.astype("boolean" if values.isna().any() else "bool")
    return values.astype(object)
