"""MLflow's scoring protocol, whole: JSON with exactly one of `dataframe_split`,
`dataframe_records`, `instances`, `inputs` (and `params`), or CSV with a header line, read
within limits into a `ScoringInput` (scoring_input.py validates each column against the input
schema); and MLflow's answers (`{"predictions": …}`, `{"error_code": …, "message": …}`).

It follows MLflow's scoring server (mlflow/pyfunc/scoring_server/__init__.py,
mlflow/utils/proto_json_utils.py). Unlike MLflow, every value is checked against its column's
dtype before the model sees it, and nothing that does not fit is coerced (a string is never read
as a number)."""

from __future__ import annotations

import csv
import io
import itertools
import math
import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import orjson

from mlc_tasks.errors import (
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)
from mlc_tasks.scoring_input import (
    MAX_DIGITS,
    Column,
    RequestLimits,
    ScoringInput,
    bounded_int,
    build_input,
    check_rows,
    describe,
    error_message,
    error_status,
    frame_from_rows,
    kind_of,
    parse_json,
    record_values,
    too_large,
)

__all__ = [  # with the names other modules have always imported from here
    "Column", "RequestLimits", "ScoringInput", "check_charset", "frame_from_rows",
    "media_type", "mlflow_error", "mlflow_predictions", "parse_json", "read_mlflow",
    "read_params", "rows_from_request", "too_large"]

MEDIA_TYPES = ("application/json", "text/csv")
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
MAX_PARAMS, MAX_PARAM_ITEMS = 64, 1000
# MLflow's error codes (mlflow/protos/databricks.proto) for our statuses; MLflow has no body
# limit, and answers 415 in plain text
_MLFLOW_CODES = {400: "BAD_REQUEST", 404: "RESOURCE_DOES_NOT_EXIST", 413: "REQUEST_LIMIT_EXCEEDED",
                 415: "BAD_REQUEST", 500: "INTERNAL_ERROR"}


# ---- MLflow's scoring protocol ----------------------------------------------------------------

def read_mlflow(body: bytes, content_type: str | None, schema: list[Column],
                limits: RequestLimits) -> ScoringInput:
    """A scoring request in MLflow's protocol, validated against `schema`. Raises
    UnsupportedMediaTypeError (not JSON or CSV, or not UTF-8), RequestTooLargeError (bytes or
    rows over `limits`), ScoringRequestError (malformed, too deep, a number out of range) and
    SchemaMismatchError (naming the column that is missing or holds a wrong value)."""
    media = media_type(content_type)
    check_charset(content_type)
    if len(body) > limits.max_bytes:
        raise RequestTooLargeError(too_large(len(body), limits.max_bytes))
    if media == "text/csv":
        return _csv_input(body, schema, limits.max_rows)
    try:
        document = parse_json(body)
    except ValueError as exc:
        raise ScoringRequestError(f"not JSON: {exc}") from None
    return _json_input(document, schema, limits.max_rows)


def media_type(content_type: str | None) -> str:
    """The request's media type if the runtime reads it. Others (text/plain, forms: what a web
    page may post cross-site without asking) are refused before the body is read."""
    found = (content_type or "").split(";", 1)[0].strip().lower()
    if found not in MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type '{found or 'none'}' is not read here; send "
            f"{' or '.join(MEDIA_TYPES)}")
    return found


def check_charset(content_type: str | None) -> None:
    """MLflow's server reads UTF-8 only (415 for another charset); other parameters, such as
    MLflow 1's `format=pandas-split`, change nothing: the body's format key decides."""
    for parameter in (content_type or "").split(";")[1:]:
        key, _, value = parameter.partition("=")
        charset = value.strip().strip('"').lower()
        if key.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise UnsupportedMediaTypeError(f"charset '{charset[:40]}' is not read here; send "
                                            "UTF-8")


def _json_input(document: Any, schema: list[Column], max_rows: int) -> ScoringInput:
    if not isinstance(document, dict):
        raise ScoringRequestError(f"the body must be a JSON object with exactly one of "
                                  f"{_names(FORMATS)}; got {kind_of(document)}")
    found = [key for key in FORMATS if key in document]
    if len(found) != 1:
        given = _names(found) if found else f"none (its fields: {_names(list(document)[:8])})"
        raise ScoringRequestError(f"the body must hold exactly one of {_names(FORMATS)}; it "
                                  f"holds {given}")
    params = read_params(document.get("params"))
    key = found[0]
    value = document[key]
    if key == "dataframe_split":
        return _from_split(value, schema, max_rows, params)
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise ScoringRequestError(f"dataframe_records must be a list of objects; got "
                                      f"{kind_of(value)}")
        return _from_records(value, schema, max_rows, params, key)
    return _from_tensor_input(value, schema, max_rows, params, key)


def _names(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f"'{str(name)[:40]}'" for name in names)


def read_params(params: Any) -> dict[str, Any]:
    """MLflow's `params`: an object of at most MAX_PARAMS names, each a JSON scalar, null or a
    flat list of at most MAX_PARAM_ITEMS scalars (MLflow's ParamSpec: a DataType or a 1-D
    array of one)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ScoringRequestError(f"params must be a JSON object; got {kind_of(params)}")
    if len(params) > MAX_PARAMS:
        raise ScoringRequestError(f"params holds {len(params)} names; at most {MAX_PARAMS}")
    for name, value in params.items():
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_PARAM_ITEMS or not all(isinstance(i, str | int | float | bool)
                                                   or i is None for i in items):
            raise ScoringRequestError(f"params: '{name[:40]}' must be a scalar or a list of at "
                                      f"most {MAX_PARAM_ITEMS} scalars")
    return params


def _from_split(split: Any, schema: list[Column], max_rows: int, params: dict[str, Any]
                ) -> ScoringInput:
    """pandas' split orientation: `columns`, `data` (one list per row), `index` (ignored)."""
    if not isinstance(split, dict) or not {"columns", "data"} <= split.keys() <= {
            "columns", "data", "index"}:
        raise ScoringRequestError("dataframe_split must be an object with 'columns' and 'data' "
                                  "(and optionally 'index')")
    columns, data = split["columns"], split["data"]
    if not isinstance(columns, list) or set(map(type, columns)) - {str}:
        raise ScoringRequestError("dataframe_split: 'columns' must be a list of names")
    if not isinstance(data, list):
        raise ScoringRequestError("dataframe_split: 'data' must be a list of rows")
    check_rows(len(data), max_rows)
    if data and (set(map(type, data)) != {list} or set(map(len, data)) != {len(columns)}):
        raise ScoringRequestError("dataframe_split: every row of 'data' must be a list of one "
                                  "value per column")
    where = {name: i for i, name in enumerate(columns)}  # a name given twice: its last value

    def values(name: str) -> list[Any] | None:
        return list(map(itemgetter(where[name]), data)) if name in where else None

    return build_input(schema, len(data), values, params)


def _from_records(records: list[Any], schema: list[Column], max_rows: int,
                  params: dict[str, Any], key: str) -> ScoringInput:
    """One object per row; a column absent from some rows is null there."""
    check_rows(len(records), max_rows)
    if set(map(type, records)) - {dict}:
        raise ScoringRequestError(f"{key} must be a list of objects, one per row")
    return build_input(schema, len(records), lambda name: record_values(records, name), params)


def _from_tensor_input(value: Any, schema: list[Column], max_rows: int,
                       params: dict[str, Any], key: str) -> ScoringInput:
    """TF-serving style `instances` / `inputs`: a list of records, an object of column → list
    of values, or, for a one-column schema, a plain list of values."""
    if isinstance(value, dict):
        return _from_columnar(value, schema, max_rows, params, key)
    if not isinstance(value, list):
        raise ScoringRequestError(f"{key} must be a list of records or an object of column → "
                                  f"values; got {kind_of(value)}")
    check_rows(len(value), max_rows)
    kinds = set(map(type, value))
    if kinds <= {dict}:
        return _from_records(value, schema, max_rows, params, key)
    if dict in kinds:
        raise ScoringRequestError(f"{key}: a list of records (objects) or of values, not both")
    if len(schema) != 1:
        raise ScoringRequestError(
            f"{key}: a list of plain values fits a one-column schema; this model takes "
            f"{len(schema)} columns: send a list of records or an object of column → values")
    return build_input(schema, len(value), lambda name: value, params)


def _from_columnar(mapping: dict[str, Any], schema: list[Column], max_rows: int,
                   params: dict[str, Any], key: str) -> ScoringInput:
    given = {col.name: mapping[col.name] for col in schema if col.name in mapping}
    for name, values in given.items():
        if not isinstance(values, list):
            raise ScoringRequestError(f"{key}: column '{name}' must be a list of values; got "
                                      f"{kind_of(values)}", name)
    lengths = {name: len(values) for name, values in given.items()}
    check_rows(max(lengths.values(), default=0), max_rows)
    if len(set(lengths.values())) > 1:
        (first, n), *rest = lengths.items()
        other, m = next((name, length) for name, length in rest if length != n)
        raise ScoringRequestError(f"{key}: column '{other}' has {m} values; column '{first}' "
                                  f"has {n}", other)
    # no schema column given at all: any row count lets build_input name the first one missing
    return build_input(schema, next(iter(lengths.values()), 1), given.get, params)


# ---- CSV (MLflow's text/csv) ------------------------------------------------------------------

def _csv_input(body: bytes, schema: list[Column], max_rows: int) -> ScoringInput:
    try:
        header, records = _csv_table(body, max_rows)
    except ValueError as exc:
        raise ScoringRequestError(str(exc)) from None
    where = {col.name: _csv_index(header, col) for col in schema}
    columns = {col.name: col for col in schema}

    def values(name: str) -> list[Any]:
        return _csv_values(list(map(itemgetter(where[name]), records)), columns[name])

    return build_input(schema, len(records), values, {})


def _csv_table(body: bytes, max_rows: int) -> tuple[list[str], list[list[str]]]:
    """The header and the records, each as long as the header; more than `max_rows` records
    are refused before the rest is read."""
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))
        lines = list(itertools.islice(reader, max_rows + 2))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not CSV: {exc}") from exc
    if not lines:
        raise ValueError("CSV body is empty; send a header line and rows")
    header, records = lines[0], lines[1:]
    check_rows(len(records), max_rows, at_least=True)
    widths = set(map(len, records))
    if widths - {len(header)}:
        number, record = next((n, r) for n, r in enumerate(records, start=2)
                              if len(r) != len(header))
        raise ValueError(f"CSV line {number} has {len(record)} fields; the header has "
                         f"{len(header)}")
    return header, records


def _csv_values(texts: list[str], col: Column) -> list[Any]:
    """Each field read as the column's dtype, an empty one as null: all at once when every
    field is plain, else one by one to name the line at fault."""
    try:
        return _CSV_PLAIN[col.dtype](texts)
    except (ValueError, OverflowError):
        return [_csv_value(text, col, line) for line, text in enumerate(texts, start=2)]


def _plain_floats(texts: list[str]) -> list[float]:
    if "" in texts or max(map(len, texts)) > MAX_DIGITS:
        raise ValueError("not plain")
    values = list(map(float, texts))
    if not all(map(math.isfinite, values)):
        raise ValueError("not finite")
    return values


def _plain_ints(texts: list[str]) -> list[int]:
    if max(map(len, texts)) > MAX_DIGITS:
        raise ValueError("not plain")
    return list(map(int, texts))


def _plain_bools(texts: list[str]) -> list[bool]:
    lowered = [text.lower() for text in texts]
    if set(lowered) - {"true", "false"}:
        raise ValueError("not plain")
    return [text == "true" for text in lowered]


def _plain_strings(texts: list[str]) -> list[str]:
    if "" in texts:
        raise ValueError("not plain")
    return texts


_CSV_PLAIN: dict[str, Callable[[list[str]], list[Any]]] = {
    "float": _plain_floats, "int": _plain_ints, "bool": _plain_bools, "str": _plain_strings}


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
            raise SchemaMismatchError(col.name, f"{where}: expects bool, got {describe(text)}")
        return text.lower() == "true"
    try:
        value = bounded_int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        raise SchemaMismatchError(col.name, f"{where}: expects {col.dtype}, got "
                                            f"{describe(text)}") from None
    except ScoringRequestError as exc:
        raise ScoringRequestError(f"{where}: {exc}", col.name) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ScoringRequestError(f"{where}: {describe(text)} is not a finite number", col.name)
    return value


# ---- MLflow's answers -------------------------------------------------------------------------

def mlflow_predictions(predictions: np.ndarray | list[Any]) -> bytes:
    """`{"predictions": [...]}` as MLflow's server answers (NaN and infinities as null, where
    MLflow writes JSON that is not JSON)."""
    try:
        return orjson.dumps({"predictions": predictions}, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # arrays of strings or objects, arrays that are not contiguous
        return orjson.dumps({"predictions": np.asarray(predictions).tolist()},
                            option=orjson.OPT_SERIALIZE_NUMPY)


def mlflow_error(exc: Exception) -> tuple[int, dict[str, str]]:
    """The status and body MLflow's server would answer. MLflow's codes: INVALID_PARAMETER_VALUE
    when the data does not fit the model's schema (mlflow/pyfunc/__init__.py,
    _validate_prediction_input), BAD_REQUEST for a request it cannot read (scoring_server,
    proto_json_utils.MlflowInvalidInputException); 413, 415, 404 and 500 in the same shape."""
    status = error_status(exc)
    code = _MLFLOW_CODES[status]
    if isinstance(exc, SchemaMismatchError):
        code = "INVALID_PARAMETER_VALUE"
    return status, {"error_code": code, "message": error_message(exc)}


# ---- rows (batch scoring, evaluation, package samples) ------------------------------------------

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


