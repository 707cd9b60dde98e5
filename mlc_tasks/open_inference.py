"""The Open Inference Protocol (KServe V2, also spoken by MLServer and Triton), REST part:
an inference request with one named input tensor per schema column, read within limits into a
`ScoringInput`, and the protocol's answers (inference response, model metadata, errors).

Follows kserve/open-inference-protocol, specification/protocol/inference_rest.md and
open_inference_rest.yaml. A tensor is one column: shape [n] or [n, 1], its data flat or nested
([[v], [v], …]), its datatype one that holds the column's dtype. Binary tensor data (Triton's
`binary_data_size` extension) is not read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np

from mlc_tasks.errors import (
    RequestTooLargeError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsupportedMediaTypeError,
)
from mlc_tasks.scoring import check_charset, media_type
from mlc_tasks.scoring_input import (
    Column,
    RequestLimits,
    ScoringInput,
    build_input,
    check_rows,
    error_message,
    error_status,
    parse_json,
    too_large,
)

OUTPUT = "predict"  # the one output tensor: the model's predict()
MAX_PARAMETERS, MAX_ID = 64, 1024
_INTS = ("INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16", "UINT8")
DATATYPES: dict[str, tuple[str, ...]] = {  # what a column of each dtype takes
    "float": ("FP64", "FP32", "FP16", *_INTS), "int": _INTS, "bool": ("BOOL",),
    "str": ("BYTES",)}
COLUMN_DATATYPE = {"float": "FP64", "int": "INT64", "bool": "BOOL", "str": "BYTES"}
RANGES: dict[str, tuple[float, float]] = {  # narrower than the column's float64 / int64
    "FP32": (-3.4028234663852886e38, 3.4028234663852886e38), "FP16": (-65504.0, 65504.0),
    "INT32": (-(2**31), 2**31 - 1), "INT16": (-(2**15), 2**15 - 1), "INT8": (-128, 127),
    "UINT64": (0, 2**64 - 1), "UINT32": (0, 2**32 - 1), "UINT16": (0, 2**16 - 1),
    "UINT8": (0, 255)}
REQUEST_FIELDS = {"id", "parameters", "inputs", "outputs"}
TENSOR_FIELDS = {"name", "shape", "datatype", "data"}


@dataclass(frozen=True, eq=False)
class V2Infer:
    """An inference request, read: its input, its id (echoed in the answer), the outputs it
    asks for (None: all) and its parameters (also `input.params`)."""

    input: ScoringInput
    id: str | None
    outputs: list[str] | None
    parameters: dict[str, Any]


def check_media_type(content_type: str | None) -> None:
    """The protocol's REST API reads JSON only (415 before the body is read, as for MLflow's
    route: a web page may post text/plain or forms cross-site without asking)."""
    if media_type(content_type) != "application/json":
        raise UnsupportedMediaTypeError("an inference request is application/json")
    check_charset(content_type)


def read_v2_infer(body: bytes, schema: list[Column], limits: RequestLimits) -> V2Infer:
    """An inference request validated against `schema`: RequestTooLargeError (bytes or rows over
    `limits`), ScoringRequestError (malformed, a shape that does not hold its data, an output the
    model does not produce), SchemaMismatchError (a tensor that is no column, given twice, of a
    datatype the column does not take, or a column with no tensor: each named)."""
    if len(body) > limits.max_bytes:
        raise RequestTooLargeError(too_large(len(body), limits.max_bytes))
    try:
        document = parse_json(body)
    except ValueError as exc:
        raise ScoringRequestError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or "inputs" not in document:
        raise ScoringRequestError("an inference request is a JSON object with 'inputs'")
    if unknown := document.keys() - REQUEST_FIELDS:
        raise ScoringRequestError(f"an inference request holds {_listed(REQUEST_FIELDS)}; not "
                                  f"{_listed(unknown)}")
    request_id = _request_id(document.get("id"))
    parameters = read_parameters(document.get("parameters"), "parameters")
    outputs = _requested_outputs(document.get("outputs"))
    tensors, rows = _tensors(document["inputs"], schema, limits.max_rows)
    scoring = build_input(schema, rows, lambda name: tensors[name][1], parameters)
    for name, (datatype, _) in tensors.items():
        _check_range(scoring.columns[name], datatype, name)
    return V2Infer(scoring, request_id, outputs, parameters)


def _request_id(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_ID):
        raise ScoringRequestError(f"'id' must be a string of at most {MAX_ID} characters")
    return value


def read_parameters(value: Any, where: str, column: str | None = None) -> dict[str, Any]:
    """The spec's $parameters: an object of at most MAX_PARAMETERS names, each a string,
    number or boolean."""
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_PARAMETERS:
        raise ScoringRequestError(f"{where} must be an object of at most {MAX_PARAMETERS} names",
                                  column)
    bad = next((k for k, v in value.items() if not isinstance(v, str | int | float)), None)
    if bad is not None:
        raise ScoringRequestError(f"{where}: '{bad[:40]}' must be a string, number or boolean",
                                  column)
    return value


def _requested_outputs(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not 1 <= len(outputs) <= MAX_PARAMETERS:
        raise ScoringRequestError("'outputs' must be a list of one or more requested outputs, "
                                  "each {\"name\": …}")
    names = []
    for output in outputs:
        if (not isinstance(output, dict) or not isinstance(output.get("name"), str)
                or output.keys() - {"name", "parameters"}):
            raise ScoringRequestError("each requested output is an object with 'name' (and "
                                      "optionally 'parameters')")
        read_parameters(output.get("parameters"), f"output '{output['name'][:40]}': parameters")
        names.append(output["name"])
    check_outputs(names)
    return names


def check_outputs(names: list[str]) -> None:
    """Refuses an output the model does not produce (it produces OUTPUT only)."""
    unknown = [name for name in names if name != OUTPUT]
    if unknown:
        raise ScoringRequestError(f"output '{unknown[0][:40]}' is not one this model produces; "
                                  f"it produces '{OUTPUT}'")


def _tensors(inputs: Any, schema: list[Column], max_rows: int
             ) -> tuple[dict[str, tuple[str, list[Any]]], int]:
    """Each column's (datatype, values) and the row count all tensors share."""
    columns = {col.name: col for col in schema}
    if not isinstance(inputs, list) or not inputs:
        raise ScoringRequestError("'inputs' must be a list of input tensors, one per column")
    if len(inputs) > len(columns):
        raise ScoringRequestError(f"{len(inputs)} input tensors; this model takes "
                                  f"{len(columns)}, one per column")
    tensors: dict[str, tuple[str, list[Any]]] = {}
    for tensor in inputs:
        name, datatype, values = _tensor(tensor, columns, max_rows)
        if name in tensors:
            raise SchemaMismatchError(name, f"input tensor '{name}' is given twice")
        tensors[name] = datatype, values
    for col in schema:
        if col.name not in tensors:
            raise SchemaMismatchError(col.name, f"column '{col.name}' is missing: send an input "
                                                f"tensor named '{col.name}'")
    lengths = {name: len(values) for name, (_, values) in tensors.items()}
    rows = Counter(lengths.values()).most_common(1)[0][0]
    if odd := next((name for name, n in lengths.items() if n != rows), None):
        usual = next(name for name, n in lengths.items() if n == rows)
        raise ScoringRequestError(f"input tensor '{odd}' has {lengths[odd]} rows; tensor "
                                  f"'{usual}' has {rows}", odd)
    return tensors, rows


def _tensor(tensor: Any, columns: dict[str, Column], max_rows: int
            ) -> tuple[str, str, list[Any]]:
    if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
        raise ScoringRequestError("each input tensor is an object with 'name', 'shape', "
                                  "'datatype' and 'data'")
    name = tensor["name"]
    col = columns.get(name)
    if col is None:
        raise SchemaMismatchError(name[:40], f"input tensor '{name[:40]}' is not a column of "
                                             f"this model; its columns: {_listed(columns)}")
    if not TENSOR_FIELDS <= tensor.keys():
        raise ScoringRequestError(f"input tensor '{name}' lacks "
                                  f"{_listed(TENSOR_FIELDS - tensor.keys())}", name)
    if not tensor.keys() <= TENSOR_FIELDS | {"parameters"}:
        unknown = tensor.keys() - TENSOR_FIELDS - {"parameters"}
        raise ScoringRequestError(f"input tensor '{name}' holds unknown {_listed(unknown)}", name)
    if "parameters" in tensor:
        _tensor_parameters(tensor["parameters"], name)
    datatype = tensor["datatype"]
    if datatype not in DATATYPES[col.dtype]:
        raise SchemaMismatchError(name, f"input tensor '{name}' is {_short(datatype)}; column "
                                        f"'{name}' ({col.dtype}) takes "
                                        f"{', '.join(DATATYPES[col.dtype])}")
    return name, datatype, _values(tensor["data"], tensor["shape"], name, max_rows)


def _tensor_parameters(value: Any, name: str) -> None:
    parameters = read_parameters(value, f"input tensor '{name}': parameters", name)
    if "binary_data_size" in parameters:
        raise ScoringRequestError(f"input tensor '{name}': binary tensor data is not read here; "
                                  "send 'data' as JSON", name)


def _values(data: Any, shape: Any, name: str, max_rows: int) -> list[Any]:
    """The tensor's elements, flat, after its shape is found to hold exactly them."""
    if not isinstance(data, list):
        raise ScoringRequestError(f"input tensor '{name}': 'data' must be a list", name)
    check_rows(len(data), max_rows)
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
            or any(type(d) is not int or d < 0 for d in shape) or shape[1:] not in ([], [1])):
        raise ScoringRequestError(f"input tensor '{name}': shape must be [n] or [n, 1] (one "
                                  f"column); got {_short(shape)}", name)
    if len(shape) == 2 and data and type(data[0]) is list:  # the natural form: [[v], [v], …]
        if set(map(type, data)) != {list} or set(map(len, data)) != {1}:
            raise ScoringRequestError(f"input tensor '{name}': data of shape [n, 1] is n values "
                                      "or n lists of one value", name)
        data = list(map(itemgetter(0), data))
    if len(data) != shape[0]:
        raise ScoringRequestError(f"input tensor '{name}': shape {shape} holds {shape[0]} "
                                  f"values; its data has {len(data)}", name)
    return data


def _check_range(values: np.ndarray, datatype: str, name: str) -> None:
    """A tensor declared narrower than its column (INT8, FP32, UINT…, or an integer type for a
    float column) holds only values of that type: one that is not is a client's mistake, not
    something to round."""
    integral = datatype in _INTS and values.dtype.kind == "f"
    if values.dtype == object or not (integral or datatype in RANGES):
        return
    if values.dtype.kind == "f":
        values = values[~np.isnan(values)]  # a nullable column's nulls
    low, high = RANGES.get(datatype, (-np.inf, np.inf))
    if len(values) and (values.min() < low or values.max() > high or (
            integral and not np.array_equal(values, np.floor(values)))):
        bad = next(v for v in values.tolist() if not low <= v <= high or (
            integral and not float(v).is_integer()))
        raise ScoringRequestError(f"input tensor '{name}' is {datatype} but holds "
                                  f"{_short(bad)}", name)


# ---- answers ----------------------------------------------------------------------------------

def v2_infer_response(model: str, version: str, request_id: str | None,
                      predictions: np.ndarray | list[Any], outputs: list[str] | None
                      ) -> dict[str, Any]:
    """The inference response: one output tensor, OUTPUT, of the predictions' shape and
    datatype, data flat in row-major order; the request's id when it gave one."""
    check_outputs(outputs or [])
    array = _prediction_array(predictions)
    datatype = v2_datatype(array.dtype)
    data = array.ravel().tolist()
    if datatype == "BYTES":
        data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data]
    answer: dict[str, Any] = {
        "model_name": model, "model_version": version,
        "outputs": [{"name": OUTPUT, "shape": list(array.shape), "datatype": datatype,
                     "data": data}]}
    if request_id is not None:
        answer["id"] = request_id
    return answer


def _prediction_array(predictions: np.ndarray | list[Any]) -> np.ndarray:
    array = np.atleast_1d(np.asarray(predictions))
    if array.dtype == object:  # e.g. class labels kept as Python objects: find their type
        inferred = np.asarray(array.tolist())
        if inferred.dtype.kind in "biufU" and inferred.shape == array.shape:
            return inferred
    return array


def v2_datatype(dtype: np.dtype) -> str:
    """The protocol's datatype for a numpy dtype (strings, bytes, objects: BYTES)."""
    if dtype.kind == "b":
        return "BOOL"
    if dtype.kind in "iu":
        return f"{'U' if dtype.kind == 'u' else ''}INT{dtype.itemsize * 8}"
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return f"FP{dtype.itemsize * 8}"
    return "BYTES"


def v2_model_metadata(name: str, versions: list[str], schema: list[Column],
                      output_datatype: str | None = None, platform: str = "sklearn"
                      ) -> dict[str, Any]:
    """The model metadata response: one input tensor per column (shape [-1]); the output when
    its datatype is known (e.g. `v2_datatype` of a prediction made at deploy time)."""
    answer: dict[str, Any] = {
        "name": name, "versions": versions, "platform": platform,
        "inputs": [{"name": col.name, "datatype": COLUMN_DATATYPE[col.dtype], "shape": [-1]}
                   for col in schema]}
    if output_datatype is not None:
        answer["outputs"] = [{"name": OUTPUT, "datatype": output_datatype, "shape": [-1]}]
    return answer


def v2_error(exc: Exception) -> tuple[int, dict[str, str]]:
    """The status and the spec's error object, `{"error": …}`: 400 bad input (the column or
    tensor named), 404 a model not served, 413 over a limit, 415 not JSON, 500 a failure."""
    return error_status(exc), {"error": error_message(exc)}


def _listed(names: Any) -> str:
    return ", ".join(f"'{str(n)[:40]}'" for n in sorted(names)[:8])


def _short(value: Any) -> str:
    """A value named in a message: short, and never a nested one (it may be deep)."""
    if isinstance(value, list | dict) and not (
            isinstance(value, list) and len(value) <= 4
            and all(type(v) in (int, float) for v in value)):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:20]}…({len(text)} characters)"
