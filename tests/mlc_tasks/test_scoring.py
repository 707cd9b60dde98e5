"""Scoring input against the input schema: every bad column is named."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from mlc_tasks.errors import (
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)
from mlc_tasks.scoring import (
    Column,
    RequestLimits,
    ScoringInput,
    frame_from_rows,
    media_type,
    parse_json,
    read_mlflow,
    rows_from_request,
)
from mlc_tasks.scoring_input import build_input, validate_column

SCHEMA = [Column(name="income", dtype="float"), Column(name="age", dtype="int"),
          Column(name="region", dtype="str"), Column(name="member", dtype="bool"),
          Column(name="note", dtype="str", nullable=True)]
GOOD = {"income": 100.5, "age": 30, "region": "eu", "member": True, "note": None}


def test_good_rows_get_schema_order_and_dtypes() -> None:
    frame = frame_from_rows([{**GOOD, "extra": 1, "income": 100}], SCHEMA)
    assert list(frame.columns) == [c.name for c in SCHEMA]
    assert str(frame["income"].dtype) == "float64" and str(frame["age"].dtype) == "int64"


@pytest.mark.parametrize(
    ("change", "column", "message"),
    [
        ({"income": None}, "income", "has empty values"),
        ({"income": "100"}, "income", "expects float, got '100'"),
        ({"age": 30.5}, "age", "expects int, got 30.5"),
        ({"age": True}, "age", "expects int, got True"),
        ({"region": 7}, "region", "expects str, got 7"),
        ({"member": 1}, "member", "expects bool, got 1"),
    ],
)
def test_wrong_values_name_the_column(change: dict, column: str, message: str) -> None:
    with pytest.raises(SchemaMismatchError, match=message) as info:
        frame_from_rows([GOOD, {**GOOD, **change}], SCHEMA)
    assert info.value.column == column


def test_missing_column_is_named() -> None:
    row = {k: v for k, v in GOOD.items() if k != "age"}
    with pytest.raises(SchemaMismatchError, match="column 'age' is missing"):
        frame_from_rows([row], SCHEMA)


def test_split_and_records_give_the_same_rows() -> None:
    split = {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}}
    records = {"dataframe_records": [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]}
    assert rows_from_request(split) == rows_from_request(records)


@pytest.mark.parametrize(
    "body",
    [[], {"instances": []}, {"dataframe_split": {"columns": ["a"]}},
     {"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}},
     {"dataframe_records": [1, 2]}],
)
def test_malformed_requests(body: object) -> None:
    with pytest.raises(ValueError):
        rows_from_request(body)


# ---- what a request may hold ------------------------------------------------------------------

LIMITS = RequestLimits(max_bytes=1000, max_rows=3)


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "text/plain; charset=utf-8",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml"])
def test_media_types_other_than_json_and_csv_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match="application/json or text/csv"):
        media_type(content_type)


@pytest.mark.parametrize(("content_type", "media"), [
    ("application/json", "application/json"), ("Application/JSON; charset=utf-8",
                                                "application/json"),
    ("application/json; format=pandas-split", "application/json"), ("text/csv", "text/csv")])
def test_json_and_csv_are_read(content_type: str, media: str) -> None:
    assert media_type(content_type) == media


def json_body(rows: int) -> bytes:
    return json.dumps({"dataframe_records": [GOOD] * rows}).encode()


def read_body(body: bytes, media: str = "text/csv") -> ScoringInput:
    return read_mlflow(body, media, SCHEMA, LIMITS)


def test_more_rows_than_the_limit_are_413() -> None:
    assert read_body(json_body(3), "application/json").rows == 3
    with pytest.raises(RequestTooLargeError, match="4 rows; .* at most 3 rows"):
        read_body(json_body(4), "application/json")
    csv_body = "income\n" + "1\n" * 4
    with pytest.raises(RequestTooLargeError, match="4 rows"):
        read_body(csv_body.encode())


@pytest.mark.parametrize(("body", "message"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested too deep"),
    (b'{"dataframe_records": [{"income": NaN}]}', "NaN is not a number JSON has"),
    (b'{"dataframe_records": [{"income": -Infinity}]}', "-Infinity is not a number"),
    (b'{"dataframe_records": [{"income": 1e999}]}', "1e999 is out of range for a float"),
    (b'{"dataframe_records": [{"income": ' + b"9" * 400 + b"}]}",
     "a number of 400 digits is out of range"),
    (b'{"dataframe_records": [{"income": -' + b"9" * 5000 + b"}]}",
     "a number of 5000 digits"),
])
def test_too_deep_or_out_of_range_json_is_refused_naming_it(body: bytes, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        parse_json(body)
    assert not isinstance(info.value, RequestTooLargeError)


@pytest.mark.parametrize(("change", "column", "message"), [
    ({"age": 2**63}, "age", "out of range for int"),
    ({"age": -(2**63) - 1}, "age", "out of range for int"),
    ({"age": 1e300}, "age", "out of range for int"),
    ({"income": 2 * 10**308}, "income", "out of range for float"),
    ({"income": float("inf")}, "income", "out of range for float"),
])
def test_numbers_out_of_range_of_the_column_dtype_are_named(change: dict, column: str,
                                                            message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        frame_from_rows([GOOD, {**GOOD, **change}], SCHEMA)
    assert info.value.column == column
    assert len(str(info.value)) < 120  # a 300-digit number is not echoed whole


def test_int64_bounds_themselves_fit() -> None:
    frame = frame_from_rows([{**GOOD, "age": 2**63 - 1}, {**GOOD, "age": -(2**63)}], SCHEMA)
    assert frame["age"].tolist() == [2**63 - 1, -(2**63)]


# ---- CSV (MLflow's text/csv) ------------------------------------------------------------------

CSV_GOOD = "region,income,age,member,note,extra\neu,100.5,30,true,,x\n\"n,orth\",7,-2,False,hi,y\n"


def test_csv_gives_the_rows_json_gives() -> None:
    frame = read_body(CSV_GOOD.encode()).frame()
    rows = [GOOD, {"income": 7, "age": -2, "region": "n,orth", "member": False, "note": "hi"}]
    assert frame.equals(frame_from_rows(rows, SCHEMA))
    assert str(frame["income"].dtype) == "float64" and str(frame["age"].dtype) == "int64"


@pytest.mark.parametrize(("replace", "column", "error", "message"), [
    (("100.5", "lots"), "income", SchemaMismatchError, "column 'income', CSV line 2: expects "
                                                       "float, got 'lots'"),
    (("true", "yes"), "member", SchemaMismatchError, "expects bool, got 'yes'"),
    (("100.5", "inf"), "income", ScoringRequestError, "'income', CSV line 2: 'inf' is not a "
                                                      "finite number"),
    (("100.5", "nan"), "income", ScoringRequestError, "not a finite number"),
    (("100.5", "1e999"), "income", ScoringRequestError, "not a finite number"),
    (("30", "9" * 400), "age", ScoringRequestError, "'age', CSV line 2: a number of 400 digits"),
    (("region,", "place,"), "region", SchemaMismatchError, "column 'region' is missing"),
])
def test_bad_csv_names_the_column(replace: tuple[str, str], column: str, error: type,
                                  message: str) -> None:
    body = CSV_GOOD.replace(*replace, 1).encode()
    with pytest.raises(error, match=message) as info:
        read_body(body)
    assert info.value.column == column


@pytest.mark.parametrize(("body", "message"), [
    (b"", "CSV body is empty"), (b"income,age\n1\n", "line 2 has 1 fields; the header has 2"),
    (b"income\n\xff\n", "not CSV")])
def test_malformed_csv(body: bytes, message: str) -> None:
    with pytest.raises((ValueError, ScoringRequestError), match=message):
        read_body(body)


# ---- ScoringInput: columns validated one by one, the frame built once ------------------------

def reference_frame(rows: list[dict], schema: list[Column]) -> pd.DataFrame:
    """The frame as frame_from_rows built it before columns were validated as arrays: one pandas
    Series per column through the public constructor."""
    def series(col: Column) -> pd.Series:
        values = [row.get(col.name) for row in rows]
        values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                  for v in values]
        nulls = None in values
        if col.dtype == "float":
            return pd.Series(values, dtype="float64")
        if col.dtype == "int":
            return pd.Series([None if v is None else int(v) for v in values],
                             dtype="Int64" if nulls else "int64")
        if col.dtype == "bool":
            return pd.Series(values, dtype="boolean" if nulls else "bool")
        return pd.Series(values, dtype=object)
    return pd.DataFrame({col.name: series(col) for col in schema})


NULLABLE = [Column(name=c.name, dtype=c.dtype, nullable=True) for c in SCHEMA]


@pytest.mark.parametrize(("rows", "schema"), [
    ([GOOD], SCHEMA),
    ([GOOD, {**GOOD, "income": 7, "age": 30.0, "extra": [1]}] * 50, SCHEMA),
    ([{**GOOD, "income": np.float32(1.5), "age": np.int16(3), "member": np.bool_(False)}],
     SCHEMA),
    ([GOOD, {"income": None, "age": None, "region": None, "member": None, "note": "x"}], NULLABLE),
    ([GOOD, {"income": float("nan"), "age": 2, "region": "x", "member": True}], NULLABLE),
])
def test_the_frame_is_the_one_the_public_constructor_builds(rows: list[dict],
                                                            schema: list[Column]) -> None:
    pd.testing.assert_frame_equal(frame_from_rows(rows, schema), reference_frame(rows, schema),
                                  check_index_type=True, check_column_type=True, check_exact=True)


def test_columns_are_the_schema_columns_as_arrays_and_the_frame_is_built_once() -> None:
    body = json.dumps({"dataframe_split": {"columns": ["extra", *GOOD], "data": [
        [1, *GOOD.values()], [2, 7, 40, "us", False, "hi"]]}}).encode()
    scoring = read_mlflow(body, "application/json", SCHEMA, LIMITS)
    assert list(scoring.columns) == [c.name for c in SCHEMA]
    assert {n: a.dtype.str for n, a in scoring.columns.items()} == {
        "income": "<f8", "age": "<i8", "region": "|O", "member": "|b1", "note": "|O"}
    assert scoring.columns["income"].tolist() == [100.5, 7.0] and scoring.rows == 2
    assert scoring.columns["note"].tolist() == [None, "hi"] and scoring.has_nulls
    assert scoring.frame() is scoring.frame()
    assert str(scoring.frame()["note"].dtype) == "object"


def test_a_column_without_nulls_holds_plain_arrays_the_predictor_can_use() -> None:
    rows = [{"income": 1, "age": 2, "region": "eu", "member": True, "note": "n"}]
    scoring = build_input(SCHEMA, 1, lambda name: [rows[0][name]], {})
    assert not scoring.has_nulls
    assert [a.dtype.kind for a in scoring.columns.values()] == ["f", "i", "O", "b", "O"]


@pytest.mark.parametrize(("values", "col", "error", "message"), [
    ([1.0, "2"], Column(name="x", dtype="float"), SchemaMismatchError, "expects float, got '2'"),
    ([1, True], Column(name="x", dtype="int"), SchemaMismatchError, "expects int, got True"),
    ([1, 2**63], Column(name="x", dtype="int"), ScoringRequestError, "out of range for int"),
    ([1.0, 10**400], Column(name="x", dtype="float"), ScoringRequestError, "out of range"),
    ([1.0, None], Column(name="x", dtype="float"), SchemaMismatchError, "has empty values"),
    (["a", [[["deep"]]]], Column(name="x", dtype="str"), SchemaMismatchError,
     r"expects str, got a list \(1 items\)"),
])
def test_the_fast_way_refuses_what_the_slow_way_does(values: list, col: Column, error: type,
                                                     message: str) -> None:
    with pytest.raises(error, match=message) as info:
        validate_column(values, col)
    assert info.value.column == "x"


def test_json_reads_every_integer_exactly() -> None:
    """orjson turns integers past 64 bits into floats; -(2**63)-1 would round to -(2**63), an
    int64, and slip through: such bodies are read again exactly."""
    body = b'{"inputs": {"age": [-9223372036854775809]}}'
    with pytest.raises(ScoringRequestError, match="out of range for int"):
        read_mlflow(body, "application/json", [Column(name="age", dtype="int")], LIMITS)
    assert parse_json(b"[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert parse_json(b'{"a": [1.5, "x"]}') == {"a": [1.5, "x"]}


@pytest.mark.parametrize(("body", "message"), [
    (b'{"a": "\\ud800"}', "surrogate"),  # orjson refuses, json reads: refused
    (b"\xef\xbb\xbf{}", "BOM|unexpected character"), (b"{not json", "Expecting property name"),
    ('{"a": 1}'.encode("utf-16"), "UTF-8|unexpected"),
])
def test_what_is_not_json_is_a_value_error(body: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_json(body)


def test_a_csv_of_a_million_lines_is_refused_before_it_is_read_whole() -> None:
    body = b"income\n" + b"1\n" * 1_000_000
    with pytest.raises(RequestTooLargeError, match="at least 4 rows"):
        read_mlflow(body, "text/csv", SCHEMA, RequestLimits(max_rows=3))


def test_csv_with_a_byte_order_mark_reads_its_header() -> None:
    scoring = read_body(b"\xef\xbb\xbf" + CSV_GOOD.encode())
    assert scoring.columns["region"][0] == "eu"
