"""The Open Inference Protocol (KServe V2): named input tensors read into columns, every lie a
client can tell refused by name, and our answers checked against the spec's own JSON schemas."""

import json

import jsonschema
import numpy as np
import pytest
import yaml

from mlc_tasks.errors import (
    NotFoundError,
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)
from mlc_tasks.open_inference import (
    V2Infer,
    check_media_type,
    read_v2_infer,
    v2_datatype,
    v2_error,
    v2_infer_response,
    v2_model_metadata,
)
from mlc_tasks.scoring_input import Column, RequestLimits

# kserve/open-inference-protocol, specification/protocol/open_inference_rest.yaml
# (components.schemas, as published; the parts our answers use)
SPEC = yaml.safe_load("""
metadata_model_response:
  title: metadata_model_response
  type: object
  properties:
    name:
      type: string
    versions:
      type: array
      items:
        type: string
    platform:
      type: string
    inputs:
      type: array
      items:
        $ref: '#/components/schemas/metadata_tensor'
    outputs:
      type: array
      items:
        $ref: '#/components/schemas/metadata_tensor'
  required:
    - name
    - platform
metadata_tensor:
  title: metadata_tensor
  type: object
  properties:
    name:
      type: string
    datatype:
      type: string
    shape:
      type: array
      items:
        type: integer
  required:
    - name
    - datatype
    - shape
parameters:
  title: parameters
  x-examples: {}
  type: object
tensor_data:
  title: tensor_data
  type: array
  items:
    anyOf:
      - $ref: '#/components/schemas/tensor_data'
      - type: number
      - type: string
      - type: boolean
response_output:
  title: response_output
  type: object
  properties:
    name:
      type: string
    shape:
      type: array
      items:
        type: integer
    datatype:
      type: string
    parameters:
      $ref: '#/components/schemas/parameters'
    data:
      $ref: '#/components/schemas/tensor_data'
  required:
    - name
    - shape
    - datatype
    - data
inference_response:
  title: inference_response
  type: object
  properties:
    model_name:
      type: string
    model_version:
      type: string
    id:
      type: string
    parameters:
      $ref: '#/components/schemas/parameters'
    outputs:
      type: array
      items:
        $ref: '#/components/schemas/response_output'
  required:
    - model_name
    - outputs
inference_error_response:
  title: inference_error_response
  type: object
  properties:
    error:
      type: string
""")


def check_against_spec(document: dict, name: str) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": SPEC}}
    jsonschema.Draft202012Validator(schema).validate(json.loads(json.dumps(document)))


SCHEMA = [Column(name="income", dtype="float"), Column(name="age", dtype="int"),
          Column(name="region", dtype="str"), Column(name="member", dtype="bool")]
LIMITS = RequestLimits(max_rows=100)


def tensor(name: str, datatype: str, data: list, shape: list | None = None) -> dict:
    return {"name": name, "shape": [len(data)] if shape is None else shape,
            "datatype": datatype, "data": data}


GOOD = [tensor("income", "FP64", [1000.0, 2.5]), tensor("age", "INT64", [40, 23]),
        tensor("region", "BYTES", ["north", "south"]), tensor("member", "BOOL", [True, False])]


def infer(body: object, limits: RequestLimits = LIMITS) -> V2Infer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return read_v2_infer(raw, SCHEMA, limits)


def with_tensor(replacement: dict) -> dict:
    return {"inputs": [replacement if t["name"] == replacement["name"] else t for t in GOOD]}


def test_named_tensors_become_the_schema_columns() -> None:
    read = infer({"id": "42", "inputs": list(reversed(GOOD)), "outputs": [{"name": "predict"}],
                  "parameters": {"content_type": "pd", "threshold": 0.5}})
    assert {n: a.tolist() for n, a in read.input.columns.items()} == {
        "income": [1000.0, 2.5], "age": [40, 23], "region": ["north", "south"],
        "member": [True, False]}
    assert list(read.input.columns) == [c.name for c in SCHEMA] and read.input.rows == 2
    assert (read.id, read.outputs) == ("42", ["predict"])
    assert read.parameters == read.input.params == {"content_type": "pd", "threshold": 0.5}
    assert str(read.input.frame()["age"].dtype) == "int64"


@pytest.mark.parametrize("replacement", [
    tensor("income", "FP64", [[1000.0], [2.5]], [2, 1]),  # natural [n, 1]
    tensor("income", "FP64", [1000.0, 2.5], [2, 1]),  # flattened [n, 1]
    tensor("income", "FP32", [1000, 2.5]),
    tensor("income", "INT32", [1000, 2]),
    tensor("income", "UINT8", [[255], [0]], [2, 1]),
])
def test_shapes_and_datatypes_a_float_column_takes(replacement: dict) -> None:
    assert infer(with_tensor(replacement)).input.columns["income"].dtype == np.float64


def test_the_spec_example_is_refused_for_what_it_is() -> None:
    """inference_rest.md's example request: tensors our schema does not have."""
    example = {"id": "42", "inputs": [
        {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
        {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]}],
        "outputs": [{"name": "output0"}]}
    with pytest.raises(ScoringRequestError, match="output 'output0' is not one this model "
                                                  "produces; it produces 'predict'"):
        infer(example)
    example.pop("outputs")
    with pytest.raises(SchemaMismatchError, match="input tensor 'input0' is not a column"):
        infer(example)


# ---- lies and attacks ---------------------------------------------------------------------------

@pytest.mark.parametrize(("replacement", "message"), [
    (tensor("income", "FP64", [1.0, 2.0], [3]), "shape \\[3\\] holds 3 values; its data has 2"),
    (tensor("income", "FP64", [1.0, 2.0], [10**30]), "holds 10000000000000000000000000000"),
    (tensor("income", "FP64", [[1.0, 2.0], [3.0, 4.0]], [2, 1]), "n lists of one value"),
    (tensor("income", "FP64", [1.0, 2.0], [1, 2]), "shape must be \\[n\\] or \\[n, 1\\]"),
    (tensor("income", "FP64", [1.0, 2.0], [2, 1, 1]), "shape must be"),
    (tensor("income", "FP64", [1.0, 2.0], [-2]), "shape must be"),
    (tensor("income", "FP64", [1.0, 2.0], [True]), "shape must be"),
    (tensor("income", "FP64", [1.0, 2.0], "2"), "shape must be .*got '2'"),
    (tensor("income", "FP64", [1.0]), "input tensor 'income' has 1 rows; tensor 'age' has 2"),
    ({**tensor("income", "FP64", [1.0, 2.0]), "data": {"a": 1}}, "'data' must be a list"),
    (tensor("age", "INT8", [40, 300]), "input tensor 'age' is INT8 but holds 300"),
    (tensor("age", "UINT8", [40, -1]), "is UINT8 but holds -1"),
    (tensor("income", "FP32", [1.0, 1e300]), "is FP32 but holds 1e\\+300"),
    (tensor("income", "INT32", [1.0, 2.5]), "is INT32 but holds 2.5"),
    ({**tensor("age", "INT64", [1, 2]), "parameters": {"binary_data_size": 16}},
     "binary tensor data is not read here"),
    ({**tensor("age", "INT64", [1, 2]), "parameters": {"nested": {"a": 1}}},
     "'nested' must be a string, number or boolean"),
    ({**tensor("age", "INT64", [1, 2]), "extra": 1}, "holds unknown 'extra'"),
    ({"name": "age", "shape": [2], "data": [1, 2]}, "input tensor 'age' lacks 'datatype'"),
])
def test_tensor_lies_are_400_naming_the_tensor(replacement: dict, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        infer(with_tensor(replacement))
    assert info.value.column == replacement["name"]
    assert v2_error(info.value) == (400, {"error": str(info.value)})


@pytest.mark.parametrize(("inputs", "column", "message"), [
    ([*GOOD, tensor("age", "INT64", [1, 2])], "age", "5 input tensors; this model takes 4"),
    ([*GOOD[:3], tensor("age", "INT64", [1, 2])], "age", "input tensor 'age' is given twice"),
    ([*GOOD[:3], tensor("color", "BYTES", ["a", "b"])], "color", "'color' is not a column"),
    (GOOD[:3], "member", "column 'member' is missing: send an input tensor named 'member'"),
    ([*GOOD[:3], tensor("member", "INT64", [1, 0])], "member",
     "input tensor 'member' is 'INT64'; column 'member' \\(bool\\) takes BOOL"),
    ([*GOOD[1:], tensor("income", "BYTES", ["1.0", "2"])], "income", "takes FP64, FP32"),
    ([*GOOD[:2], tensor("region", "FP64", [1.0, 2.0]), GOOD[3]], "region", "takes BYTES"),
    ([*GOOD[1:], tensor("income", "FP64", ["1.0", 2.0])], "income",
     "column 'income' expects float, got '1.0'"),
    ([*GOOD[:3], tensor("member", "BOOL", [1, 0])], "member", "expects bool, got 1"),
])
def test_tensors_that_do_not_fit_the_schema_name_the_column(inputs: list, column: str,
                                                            message: str) -> None:
    with pytest.raises((SchemaMismatchError, ScoringRequestError), match=message) as info:
        infer({"inputs": inputs})
    if isinstance(info.value, SchemaMismatchError):
        assert info.value.column == column
    assert v2_error(info.value)[0] == 400


@pytest.mark.parametrize(("body", "message"), [
    ([GOOD], "a JSON object with 'inputs'"), ({"id": "1"}, "a JSON object with 'inputs'"),
    ({"inputs": GOOD, "model_name": "x"}, "not 'model_name'"),
    ({"inputs": []}, "'inputs' must be a list of input tensors"),
    ({"inputs": [5]}, "each input tensor is an object"),
    ({"inputs": GOOD, "id": 42}, "'id' must be a string"),
    ({"inputs": GOOD, "id": "x" * 1025}, "at most 1024 characters"),
    ({"inputs": GOOD, "parameters": [1]}, "parameters must be an object"),
    ({"inputs": GOOD, "parameters": {f"p{i}": i for i in range(65)}}, "at most 64 names"),
    ({"inputs": GOOD, "outputs": [{"name": "predict"}, {"name": "proba"}]}, "output 'proba'"),
    ({"inputs": GOOD, "outputs": ["predict"]}, "each requested output is an object"),
    ({"inputs": GOOD, "outputs": []}, "'outputs' must be a list"),
    (b"{not json", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deep"),
    (json.dumps(with_tensor(tensor("age", "INT64", [1, 2]))).replace("[1, 2]", "[1, 1e999]")
     .encode(), "1e999 is out of range"),
])
def test_malformed_requests_are_400(body: object, message: str) -> None:
    with pytest.raises(ScoringRequestError, match=message) as info:
        infer(body)
    assert v2_error(info.value)[0] == 400


@pytest.mark.parametrize("replacement", [
    tensor("income", "FP64", [1.0] * 1_000_000),
    tensor("income", "FP64", [[1.0]] * 1_000_000, [1_000_000, 1]),
    tensor("income", "FP64", [1.0] * 1_000_000, [2]),  # a shape lie does not hide the size
])
def test_a_million_elements_are_413_before_they_are_read(replacement: dict) -> None:
    limits = RequestLimits(max_rows=100, max_bytes=50 * 1024 * 1024)
    with pytest.raises(RequestTooLargeError, match="1000000 rows; a request takes at most 100"
                       ) as info:
        infer(with_tensor(replacement), limits)
    assert v2_error(info.value) == (413, {"error": str(info.value)})


def test_a_body_over_the_byte_limit_is_413() -> None:
    with pytest.raises(RequestTooLargeError):
        infer(b" " * 2000, RequestLimits(max_bytes=1000))


@pytest.mark.parametrize(("content_type", "accepted"), [
    ("application/json", True), ("application/json; charset=utf-8", True),
    ("text/csv", False), ("text/plain", False), (None, False),
    ("application/json; charset=latin-1", False)])
def test_only_json_is_read(content_type: str | None, accepted: bool) -> None:
    if accepted:
        check_media_type(content_type)
        return
    with pytest.raises(UnsupportedMediaTypeError) as info:
        check_media_type(content_type)
    assert v2_error(info.value)[0] == 415


# ---- answers, against the spec ------------------------------------------------------------------

@pytest.mark.parametrize(("predictions", "datatype", "shape", "data"), [
    (np.array([0.25, 0.75]), "FP64", [2], [0.25, 0.75]),
    (np.array([0.5], dtype=np.float32), "FP32", [1], [0.5]),
    (np.array([1, 0]), "INT64", [2], [1, 0]),
    (np.array([1, 0], dtype=np.int32), "INT32", [2], [1, 0]),
    (np.array([7], dtype=np.uint8), "UINT8", [1], [7]),
    (np.array([True, False]), "BOOL", [2], [True, False]),
    (np.array(["yes", "no"]), "BYTES", [2], ["yes", "no"]),
    (np.array(["yes", "no"], dtype=object), "BYTES", [2], ["yes", "no"]),
    (np.array([1, 0], dtype=object), "INT64", [2], [1, 0]),
    (np.array([b"a"]), "BYTES", [1], ["a"]),
    (np.array([[0.1, 0.9], [0.8, 0.2]]), "FP64", [2, 2], [0.1, 0.9, 0.8, 0.2]),
    ([1.5, 2.5], "FP64", [2], [1.5, 2.5]),
    (np.float64(3.0), "FP64", [1], [3.0]),
])
def test_infer_response_against_its_json_schema(predictions: object, datatype: str,
                                                shape: list, data: list) -> None:
    answer = v2_infer_response("credit-risk", "3", "42", predictions, ["predict"])
    check_against_spec(answer, "inference_response")
    assert answer["outputs"] == [{"name": "predict", "shape": shape, "datatype": datatype,
                                  "data": data}]
    assert (answer["model_name"], answer["model_version"], answer["id"]) == (
        "credit-risk", "3", "42")


def test_an_answer_without_a_request_id_has_none() -> None:
    answer = v2_infer_response("m", "1", None, np.array([1.0]), None)
    check_against_spec(answer, "inference_response")
    assert "id" not in answer


def test_an_unknown_requested_output_is_refused_in_the_answer_too() -> None:
    with pytest.raises(ScoringRequestError, match="output 'proba' is not one this model"):
        v2_infer_response("m", "1", None, np.array([1.0]), ["predict", "proba"])


def test_model_metadata_against_its_json_schema() -> None:
    answer = v2_model_metadata("credit-risk", ["3"], SCHEMA, output_datatype="INT64")
    check_against_spec(answer, "metadata_model_response")
    assert answer["inputs"] == [
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "region", "datatype": "BYTES", "shape": [-1]},
        {"name": "member", "datatype": "BOOL", "shape": [-1]}]
    assert answer["outputs"] == [{"name": "predict", "datatype": "INT64", "shape": [-1]}]
    assert "outputs" not in v2_model_metadata("credit-risk", ["3"], SCHEMA)


def test_metadata_inputs_are_what_the_reader_takes() -> None:
    """A client that builds its request from our metadata is served."""
    samples = {"FP64": [1.5], "INT64": [2], "BYTES": ["x"], "BOOL": [True]}
    inputs = [tensor(t["name"], t["datatype"], samples[t["datatype"]])
              for t in v2_model_metadata("m", ["1"], SCHEMA)["inputs"]]
    assert infer({"inputs": inputs}).input.rows == 1


@pytest.mark.parametrize(("exc", "status"), [
    (SchemaMismatchError("age", "column 'age' is missing"), 400),
    (ValueError("X has 4 features"), 400), (NotFoundError("no model 'x' here"), 404),
    (RequestTooLargeError("too big"), 413), (UnsupportedMediaTypeError("not JSON"), 415),
    (RuntimeError("/secret/path broke"), 500)])
def test_errors_against_their_json_schema(exc: Exception, status: int) -> None:
    code, answer = v2_error(exc)
    check_against_spec(answer, "inference_error_response")
    assert code == status and list(answer) == ["error"]
    assert "secret" not in answer["error"] and answer["error"]


@pytest.mark.parametrize(("dtype", "datatype"), [
    (np.float16, "FP16"), (np.int8, "INT8"), (np.uint64, "UINT64"), (np.str_, "BYTES"),
    (np.object_, "BYTES"), (np.bool_, "BOOL")])
def test_datatypes_of_numpy_dtypes(dtype: type, datatype: str) -> None:
    assert v2_datatype(np.dtype(dtype)) == datatype
