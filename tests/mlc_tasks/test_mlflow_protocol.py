"""MLflow's scoring protocol, whole: every input format and content type, `params`, MLflow's
error shape, and the requests MLflow documents, replayed."""

import json

import numpy as np
import pandas as pd
import pytest

from mlc_tasks.errors import (
    InvalidPackageError,
    NotFoundError,
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)
from mlc_tasks.scoring import (
    Column,
    RequestLimits,
    ScoringInput,
    mlflow_error,
    mlflow_predictions,
    read_mlflow,
)

SCHEMA = [Column(name="income", dtype="float"), Column(name="age", dtype="int"),
          Column(name="region", dtype="str")]
ROWS = [{"income": 1000.0, "age": 40, "region": "north"},
        {"income": 2.5, "age": 23, "region": "south"}]
LIMITS = RequestLimits(max_rows=100)
JSON = "application/json"


def read(body: object, schema: list[Column] = SCHEMA, content_type: str = JSON,
         limits: RequestLimits = LIMITS) -> ScoringInput:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_mlflow(raw, content_type, schema, limits)


def table(scoring: ScoringInput) -> dict[str, list]:
    return {name: values.tolist() for name, values in scoring.columns.items()}


EXPECTED = {"income": [1000.0, 2.5], "age": [40, 23], "region": ["north", "south"]}
FRAME = pd.DataFrame(ROWS)


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["region", "income", "age"],
                         "data": [[r["region"], r["income"], r["age"]] for r in ROWS]}},
    {"dataframe_split": {"index": [7, 8], "columns": list(ROWS[0]),
                         "data": [list(r.values()) for r in ROWS]}},
    {"dataframe_records": ROWS},
    {"instances": ROWS},
    {"inputs": ROWS},
    {"inputs": {"income": [1000, 2.5], "age": [40, 23], "region": ["north", "south"],
                "other": "ignored"}},
    {"instances": {"income": [1000.0, 2.5], "age": [40, 23], "region": ["north", "south"]}},
    # what MLflow's docs say to send: {"dataframe_split": pandas_df.to_dict(orient="split")}
    # (docs/docs/classic-ml/deployment/deploy-model-locally/index.mdx, "Wrapped Payload Dict")
    {"dataframe_split": FRAME.to_dict(orient="split")},
    {"dataframe_records": FRAME.to_dict(orient="records")},
    {"dataframe_records": ROWS, "params": {"threshold": 0.5}, "other": 1},
])
def test_every_json_format_gives_the_same_columns(body: dict) -> None:
    assert table(read(body)) == EXPECTED


def test_csv_with_a_header_and_charset_gives_the_same_columns() -> None:
    csv = b"region,age,income\nnorth,40,1000\nsouth,23,2.5\n"
    assert table(read(csv, content_type="text/csv; charset=UTF-8")) == EXPECTED
    assert read(csv, content_type="text/csv").frame().equals(read({"dataframe_records": ROWS})
                                                             .frame())


@pytest.mark.parametrize("content_type", [
    "application/json", "application/json; charset=utf-8", 'Application/JSON; charset="UTF-8"',
    "application/json;",  # as MLflow 2.11's docs write it: curl -H "Content-Type:application/json;"
    "application/json; format=pandas-split"])  # MLflow 1's parameter: the body's key decides
def test_json_content_types(content_type: str) -> None:
    assert table(read({"dataframe_records": ROWS}, content_type=content_type)) == EXPECTED


@pytest.mark.parametrize(("content_type", "message"), [
    ("application/json; charset=latin-1", "charset 'latin-1' is not read here"),
    ("text/csv; charset=utf-16", "charset 'utf-16'"),
    # MLflow's docs show 'Content-Type: application/csv'; its server answers 415 (CONTENT_TYPES
    # in mlflow/pyfunc/scoring_server/__init__.py), and so do we
    ("application/csv", "content type 'application/csv' is not read here"),
    ("text/plain", "send application/json or text/csv"), (None, "content type 'none'")])
def test_other_content_types_and_charsets_are_415(content_type: str | None, message: str
                                                  ) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=message) as info:
        read_mlflow(b"{}", content_type, SCHEMA, LIMITS)
    assert mlflow_error(info.value) == (415, {"error_code": "BAD_REQUEST",
                                              "message": str(info.value)})


# ---- MLflow's documented requests, replayed -----------------------------------------------------
# mlflow/models/cli.py, `mlflow models serve` docstring ("Example:")

AB = [Column(name="a", dtype="int"), Column(name="b", dtype="int")]


def test_documented_records_and_split_requests() -> None:
    records = {"dataframe_records": [{"a": 1, "b": 2}, {"a": 3, "b": 4}, {"a": 5, "b": 6}]}
    split = {"dataframe_split": {"columns": ["a", "b"], "index": [0, 1, 2],
                                 "data": [[1, 2], [3, 4], [5, 6]]}}
    assert table(read(records, AB)) == table(read(split, AB)) == {"a": [1, 3, 5], "b": [2, 4, 6]}


def test_documented_instances_request_reads_its_named_column() -> None:
    """`b` holds tensors (lists), which no column of ours is: a model that takes only `a` reads
    it, one that takes `b` is told what `b` holds."""
    instances = {"instances": [{"a": "t1", "b": [1, 2, 3]}, {"a": "t2", "b": [4, 5, 6]},
                               {"a": "t3", "b": [7, 8, 9]}]}
    assert table(read(instances, [Column(name="a", dtype="str")])) == {"a": ["t1", "t2", "t3"]}
    with pytest.raises(SchemaMismatchError, match=r"column 'b' expects int, got a list \(3"):
        read(instances, [Column(name="a", dtype="str"), Column(name="b", dtype="int")])


def test_documented_inputs_tensor_request_needs_named_columns() -> None:
    """{"inputs": [[1, 2], [3, 4], [5, 6]]} is for unnamed tensor signatures; MLflow refuses it
    for named columns too (proto_json_utils.parse_tf_serving_input)."""
    with pytest.raises(ScoringRequestError, match="fits a one-column schema; this model takes 2"):
        read({"inputs": [[1, 2], [3, 4], [5, 6]]}, AB)


def test_documented_params_request() -> None:
    # docs/docs/classic-ml/deployment/deploy-model-locally/index.mdx ("params")
    body = {"inputs": {"question": ["What color is it?"],
                       "context": ["Some people said it was green but I know that it is pink."]},
            "params": {"max_answer_len": 10}}
    scoring = read(body, [Column(name="question", dtype="str"),
                          Column(name="context", dtype="str")])
    assert scoring.params == {"max_answer_len": 10} and scoring.rows == 1


def test_documented_plain_list_for_one_column() -> None:
    # the same page's table: {"instances": [1.0, 2.0, 5.0]}
    assert table(read({"instances": [1.0, 2.0, 5.0]}, [Column(name="x", dtype="float")])) == {
        "x": [1.0, 2.0, 5.0]}


# ---- format keys and params --------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    ({"dataframe_split": {"columns": [], "data": []}, "inputs": ROWS},
     "exactly one of .*; it holds 'dataframe_split', 'inputs'"),
    ({"dataframe_records": ROWS, "instances": ROWS, "inputs": ROWS},
     "it holds 'dataframe_records', 'instances', 'inputs'"),
    ({"columns": ["income"], "data": [[1]]},  # MLflow 1's body
     "it holds none \\(its fields: 'columns', 'data'\\)"),
    ({}, "it holds none"), ([ROWS], "JSON object with exactly one of .*; got a list"),
    ("text", "got a string"),
])
def test_exactly_one_format_key(body: object, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        read(body)
    status, answer = mlflow_error(info.value)
    assert (status, answer["error_code"]) == (400, "BAD_REQUEST")
    assert all(key in answer["message"] for key in ("dataframe_split", "inputs"))


@pytest.mark.parametrize(("params", "message"), [
    ([1], "params must be a JSON object; got a list"),
    ({"nested": {"a": 1}}, "'nested' must be a scalar or a list"),
    ({"deep": [[1]]}, "'deep' must be a scalar"),
    ({"long": list(range(1001))}, "at most 1000 scalars"),
    ({f"p{i}": i for i in range(65)}, "65 names; at most 64"),
])
def test_params_are_bounded(params: object, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message):
        read({"dataframe_records": ROWS, "params": params})


def test_params_pass_through() -> None:
    params = {"k": 3, "name": "x", "flag": True, "none": None, "list": [1, 2.5, "a"]}
    assert read({"dataframe_records": ROWS, "params": params}).params == params
    assert read({"dataframe_records": ROWS}).params == {}


# ---- bad input: 400, the column named ------------------------------------------------------------

@pytest.mark.parametrize(("body", "column", "message"), [
    ({"dataframe_records": [{"income": "lots", "age": 1, "region": "n"}]}, "income",
     "column 'income' expects float, got 'lots'"),
    ({"inputs": {"income": [1.0], "region": ["n"]}}, "age", "column 'age' is missing"),
    ({"dataframe_split": {"columns": ["income", "age"], "data": [[1.0, 2]]}}, "region",
     "column 'region' is missing"),
    ({"instances": [{"income": 1.0, "age": 2.5, "region": "n"}]}, "age",
     "column 'age' expects int, got 2.5"),
    ({"inputs": [{"income": 1.0, "age": 2, "region": None}]}, "region",
     "column 'region' has empty values"),
])
def test_bad_values_are_400_naming_the_column(body: dict, column: str, message: str) -> None:
    with pytest.raises(SchemaMismatchError, match=message) as info:
        read(body)
    assert info.value.column == column
    # MLflow answers a schema mismatch so (mlflow/pyfunc/__init__.py, _validate_prediction_input)
    assert mlflow_error(info.value) == (400, {"error_code": "INVALID_PARAMETER_VALUE",
                                              "message": str(info.value)})


@pytest.mark.parametrize(("body", "message"), [
    ({"dataframe_split": {"columns": ["income"], "data": [5]}}, "every row of 'data' must be"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "one value per column"),
    ({"dataframe_split": {"data": [[1]]}}, "must be an object with 'columns' and 'data'"),
    ({"dataframe_split": {"columns": ["a"], "data": [[1]], "x": 1}}, "optionally 'index'"),
    ({"dataframe_split": {"columns": [["a"]], "data": [[1]]}}, "'columns' must be a list of"),
    ({"dataframe_split": []}, "must be an object"),
    ({"dataframe_records": {"income": 1}}, "dataframe_records must be a list of objects"),
    ({"dataframe_records": [1, 2]}, "must be a list of objects, one per row"),
    ({"inputs": 5}, "inputs must be a list of records or an object"),
    ({"inputs": [ROWS[0], 1]}, "records \\(objects\\) or of values, not both"),
    ({"inputs": {"income": 1.0, "age": [1], "region": ["n"]}}, "column 'income' must be a list"),
    ({"inputs": {"income": [1.0, 2.0], "age": [1], "region": ["n", "s"]}},
     "column 'age' has 1 values; column 'income' has 2"),
    (b"{not json", "not JSON: Expecting property name"),
    (b'\xff\xfe{"inputs": []}', "not JSON"),
])
def test_malformed_requests_are_400(body: object, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        read(body)
    assert mlflow_error(info.value)[0] == 400


@pytest.mark.parametrize("body", [{"dataframe_records": []}, {"inputs": []},
                                  {"dataframe_split": {"columns": ["income"], "data": []}},
                                  b"income,age,region\n"])
def test_no_rows_is_refused(body: object) -> None:
    content_type = "text/csv" if isinstance(body, bytes) else JSON
    with pytest.raises(SchemaMismatchError, match="no rows to score"):
        read(body, content_type=content_type)


@pytest.mark.parametrize(("csv", "error", "message"), [
    (b"region,age\nn,1\n", SchemaMismatchError, "column 'income' is missing from the CSV header"),
    (b"region,age,income\nn,1,x\n", SchemaMismatchError, "'income', CSV line 2: expects float"),
    (b"region,age,income\nn,1\n", ScoringRequestError, "line 2 has 2 fields; the header has 3"),
    (b"region,age,income\nn,\xff,1\n", ScoringRequestError, "not CSV"),
    (b"", ScoringRequestError, "CSV body is empty"),
])
def test_bad_csv(csv: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        read(csv, content_type="text/csv")
    assert mlflow_error(info.value)[0] == 400


# ---- attacks ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "message"), [
    (b'{"inputs": {"income": [1e400], "age": [1], "region": ["n"]}}', "1e400 is out of range"),
    (b'{"inputs": {"income": [1], "age": [' + b"9" * 400 + b'], "region": ["n"]}}',
     "a number of 400 digits"),
    (b'{"inputs": {"income": [1], "age": [18446744073709551616], "region": ["n"]}}',
     "column 'age': 18446744073709551616 is out of range for int"),
    (b'{"inputs": {"income": [NaN], "age": [1], "region": ["n"]}}', "NaN is not a number"),
    (b'{"inputs": {"income": [Infinity], "age": [1], "region": ["n"]}}', "Infinity is not"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (b'{"inputs": ' + b"{\"a\": " * 5000 + b"1" + b"}" * 5001, "nested too deep"),
])
def test_huge_numbers_and_deep_nesting_are_400(body: bytes, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        read(body)
    assert mlflow_error(info.value)[0] == 400 and len(info.value.args[0]) < 200


def test_a_cell_nested_a_thousand_levels_deep_is_named_not_echoed() -> None:
    cell = b"[" * 1015 + b"1" + b"]" * 1015
    body = b'{"inputs": {"income": [' + cell + b'], "age": [1], "region": ["n"]}}'
    with pytest.raises(SchemaMismatchError, match=r"expects float, got a list \(1 items\)"):
        read(body)


def test_a_twenty_digit_integer_is_a_float_exactly() -> None:
    body = b'{"inputs": {"income": [123456789012345678901], "age": [1], "region": ["n"]}}'
    assert read(body).columns["income"].tolist() == [float(123456789012345678901)]


@pytest.mark.parametrize("body", [
    {"dataframe_split": {"columns": ["income"], "data": [[1]] * 1_000_000}},
    {"dataframe_records": [{}] * 1_000_000},
    {"inputs": {"income": [1] * 1_000_000, "age": [1], "region": ["n"]}},
    {"instances": [1] * 1_000_000},
])
def test_a_million_rows_is_413_before_a_value_is_read(body: dict) -> None:
    with pytest.raises(RequestTooLargeError, match="1000000 rows; a request takes at most 100"
                       ) as info:
        read(body, limits=RequestLimits(max_rows=100, max_bytes=50 * 1024 * 1024))
    assert mlflow_error(info.value) == (413, {"error_code": "REQUEST_LIMIT_EXCEEDED",
                                              "message": str(info.value)})


def test_a_csv_of_a_million_rows_is_413_before_it_is_read_whole() -> None:
    body = b"income,age,region\n" + b"1,2,n\n" * 1_000_000
    with pytest.raises(RequestTooLargeError, match="at least 101 rows"):
        read(body, content_type="text/csv",
             limits=RequestLimits(max_rows=100, max_bytes=50 * 1024 * 1024))


def test_a_body_over_the_byte_limit_is_413() -> None:
    with pytest.raises(RequestTooLargeError, match="request body of 1001 bytes"):
        read(b" " * 1001, limits=RequestLimits(max_bytes=1000))


# ---- answers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("predictions", "expected"), [
    (np.array([1, 0, 1]), [1, 0, 1]),
    (np.array([0.25, 0.5], dtype=np.float32), [0.25, 0.5]),
    (np.array([[0.1, 0.9], [0.8, 0.2]]), [[0.1, 0.9], [0.8, 0.2]]),
    (np.array(["yes", "no"]), ["yes", "no"]),
    (np.array(["yes", 1], dtype=object), ["yes", 1]),
    (np.array([True, False]), [True, False]),
    (np.array([[1, 2], [3, 4]])[:, 0], [1, 3]),  # not contiguous
    ([np.int64(3), np.float64(0.5), np.str_("a"), "b", 1], [3, 0.5, "a", "b", 1]),
    (np.array([np.nan, np.inf, 1.0]), [None, None, 1.0]),
])
def test_predictions_serialise_as_mlflow_answers(predictions: object, expected: list) -> None:
    assert json.loads(mlflow_predictions(predictions)) == {"predictions": expected}


@pytest.mark.parametrize(("exc", "status", "code"), [
    (ScoringRequestError("JSON nested too deep"), 400, "BAD_REQUEST"),
    (ValueError("X has 4 features, but the model expects 5"), 400, "BAD_REQUEST"),
    (InvalidPackageError("bad"), 400, "BAD_REQUEST"),
    (NotFoundError("this runtime serves no model 'x'"), 404, "RESOURCE_DOES_NOT_EXIST"),
])
def test_error_shape(exc: Exception, status: int, code: str) -> None:
    assert mlflow_error(exc) == (status, {"error_code": code, "message": str(exc)})


def test_a_failure_inside_is_500_and_says_nothing_of_it() -> None:
    status, answer = mlflow_error(RuntimeError("/secret/path/model.skops: corrupt"))
    assert (status, answer["error_code"]) == (500, "INTERNAL_ERROR")
    assert "secret" not in answer["message"]
