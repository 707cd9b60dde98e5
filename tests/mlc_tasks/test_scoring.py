"""Scoring input against the input schema: every bad column is named."""

import pytest

from mlc_tasks.errors import SchemaMismatchError
from mlc_tasks.scoring import Column, frame_from_rows, rows_from_request

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
