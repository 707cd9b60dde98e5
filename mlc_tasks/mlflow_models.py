"""An MLflow model folder read and checked, as MLflow writes it, without MLflow installed and
without loading the model: the sklearn flavor in skops format (MLflow 3.9 or later).

What is read (mlflow/sklearn/__init__.py, mlflow/models/, mlflow/types/schema.py): the `MLmodel`
YAML file; its `flavors.sklearn` (`pickled_model`, `serialization_format` one of skops / pickle /
cloudpickle, `sklearn_version`); `signature.inputs`, a JSON string of column specs (`{"type":
"double", "name": "income", "required": true}`); `saved_input_example_info` (`artifact_path` of
input_example.json, `type` dataframe in pandas' split orient, or json_object); and the run id,
model id, model uuid and MLflow version it records.

The folder comes from someone else: every file read is a regular file of its own inside it (no
link, no '..', no absolute path) and bounded in size; a pickle is refused by the MLmodel's word
and by its bytes, whatever the file is called (MLflow 3.9 named its skops files model.pkl).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from mlc_tasks.errors import (
    InvalidPackageError,
    SchemaMismatchError,
    ScoringRequestError,
    UnsafeArtifactError,
)
from mlc_tasks.packages import NAME_PATTERN, ModelType
from mlc_tasks.scoring import Column, frame_from_rows, rows_from_request

MAX_MLMODEL_BYTES = 1024 * 1024  # MLflow writes a few KB; 10 000 columns fit in ~600 KB
MAX_EXAMPLE_BYTES = 1024 * 1024
MAX_COLUMNS = 10_000
MAX_NAME_CHARS = 256
MAX_COPIED_BYTES = 512 * 1024 * 1024  # what one upload may carry (deployments/api_upload.py)
DTYPES = {"double": "float", "float": "float", "long": "int", "integer": "int",
          "string": "str", "boolean": "bool"}
# output types a scikit-learn regressor never predicts (its predictions are floats)
CLASS_OUTPUTS = {"long", "integer", "string", "boolean", "int8", "int16", "int32", "int64",
                 "uint8", "uint16", "uint32", "uint64", "bool", "str", "object"}
PICKLE_FORMATS = {"pickle", "cloudpickle"}
SOURCE_KEYS = ("run_id", "model_id", "model_uuid", "mlflow_version", "utc_time_created")
ZIP_MAGIC = b"PK\x03\x04"


class MlflowSource(BaseModel):
    """Where the model came from, as its MLmodel says."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str | None = None
    model_id: str | None = None
    model_uuid: str | None = None
    mlflow_version: str | None = None
    utc_time_created: str | None = None
    sklearn_version: str | None = None
    serialization_format: str | None


class MlflowModel(BaseModel):
    """An MLflow model folder, checked, with what a package needs from it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path
    artifact: Path
    source: MlflowSource
    input_schema: list[Column]
    sample_rows: list[dict[str, Any]]
    inferred_type: ModelType | None
    type_evidence: str | None
    registered_name: str | None
    mlmodel: bytes


def relog_advice(folder: Path) -> str:
    """The MLflow calls that make a skops model of a pickled one."""
    return (f"Re-log it in skops format (MLflow 3.9 or later), where it was trained and only if "
            f"you trust this file: model = mlflow.sklearn.load_model('{folder.absolute()}'); "
            "info = mlflow.sklearn.log_model(model, name='model', serialization_format='skops', "
            "signature=mlflow.models.infer_signature(X, model.predict(X)), "
            "input_example=X.head(3)), X a DataFrame of training rows; then import the folder "
            "of mlflow.artifacts.download_artifacts(info.model_uri)")


# ---- reading files of an untrusted folder ---------------------------------------------------

def inside(root: Path, relative: Any, field: str) -> Path:
    """`relative`, a path MLflow wrote into the MLmodel, as a file under `root`."""
    where = root / "MLmodel"
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise InvalidPackageError(f"{where}: {field} must name a file in the model folder")
    parts = PurePosixPath(relative).parts
    if relative.startswith(("/", "\\")) or ".." in parts or "\\" in relative or (
            parts and ":" in parts[0]):
        raise InvalidPackageError(f"{where}: {field} '{relative:.100}' must stay inside the "
                                  "model folder")
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InvalidPackageError(f"{where}: {field} '{relative:.100}' leads out of the model "
                                  "folder (through a link)")
    return root / relative


def open_own(path: Path) -> int:
    """A descriptor of `path`, a regular file and not a link (a link is refused even when it
    points inside the folder: what is imported is the folder's own files). O_NONBLOCK: a fifo
    is refused instead of waiting for a writer."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise InvalidPackageError(f"{path}: file not found") from None
    except OSError as exc:
        raise InvalidPackageError(f"{path}: not read as a file of its own (a symbolic link?): "
                                  f"{exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidPackageError(f"{path}: not a regular file")
    return fd


def read_bounded(path: Path, limit: int) -> bytes:
    with os.fdopen(open_own(path), "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise InvalidPackageError(f"{path}: more than {limit >> 10} KiB, more than is read "
                                  f"for a {path.name} file")
    return data


def copy_bounded(source: Path, target: Path, limit: int = MAX_COPIED_BYTES) -> str:
    """Copy a regular file (never through a link) and return its sha256."""
    digest, size = hashlib.sha256(), 0
    with os.fdopen(open_own(source), "rb") as src, target.open("xb") as dst:
        while block := src.read(1 << 20):
            size += len(block)
            if size > limit:
                raise InvalidPackageError(f"{source}: more than {limit >> 20} MB")
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()


# ---- the MLmodel ----------------------------------------------------------------------------

def read_mlmodel(root: Path) -> tuple[dict[str, Any], bytes]:
    if not root.is_dir():
        raise InvalidPackageError(f"{root}: not a folder")
    path = root / "MLmodel"
    if not path.exists() and not path.is_symlink():
        raise InvalidPackageError(f"{root}: no MLmodel file; give the folder MLflow logged "
                                  "the model to (the one holding MLmodel)")
    data = read_bounded(path, MAX_MLMODEL_BYTES)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw = yaml.load(data, Loader=loader)  # a safe loader: plain data, no objects
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise InvalidPackageError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidPackageError(f"{path}: expected MLflow's mapping of fields")
    return raw, data


def sklearn_flavor(root: Path, mlmodel: dict[str, Any]) -> dict[str, Any]:
    flavors = mlmodel.get("flavors")
    if not isinstance(flavors, dict) or not isinstance(flavors.get("sklearn"), dict):
        found = ", ".join(sorted(map(str, flavors)))[:200] if isinstance(flavors, dict) else ""
        raise InvalidPackageError(f"{root / 'MLmodel'}: not a scikit-learn model (flavors: "
                                  f"{found or 'none'}); only the sklearn flavor is imported")
    return flavors["sklearn"]


def read_source(mlmodel: dict[str, Any], flavor: dict[str, Any]) -> MlflowSource:
    values = {key: _text(mlmodel.get(key)) for key in SOURCE_KEYS}
    return MlflowSource(**values, sklearn_version=_text(flavor.get("sklearn_version")),
                        serialization_format=_text(flavor.get("serialization_format")))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


def artifact_file(root: Path, mlmodel: dict[str, Any], flavor: dict[str, Any],
                  source: MlflowSource) -> Path:
    """The serialized model: skops only, by the MLmodel's word and by its first bytes."""
    if source.serialization_format in PICKLE_FORMATS or source.serialization_format is None:
        # before 3.9 MLflow wrote no serialization_format, and its loader then reads a pickle
        said = (f"saved with serialization_format '{source.serialization_format}'"
                if source.serialization_format else "saved with no serialization_format (MLflow "
                "before 3.9: a pickle)")
        raise UnsafeArtifactError(
            f"{root}: the model is {said}; loading a pickle runs whatever code it holds, so it "
            f"is refused. {relog_advice(root)}")
    if source.serialization_format != "skops":
        raise InvalidPackageError(f"{root / 'MLmodel'}: serialization_format "
                                  f"'{source.serialization_format:.40}' is unknown; only skops")
    path = inside(root, flavor.get("pickled_model"), "flavors.sklearn.pickled_model")
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function")
    given = pyfunc.get("model_path") if isinstance(pyfunc, dict) else None
    if given is not None and inside(root, given, "flavors.python_function.model_path"
                                    ).resolve() != path.resolve():
        raise InvalidPackageError(f"{root / 'MLmodel'}: the sklearn and python_function "
                                  "flavors name different model files")
    check_skops_bytes(path, root)
    return path


def check_skops_bytes(path: Path, root: Path) -> None:
    """A skops file is a zip archive with schema.json; a pickle starts with its protocol
    opcode (0x80) whatever the file is called."""
    with os.fdopen(open_own(path), "rb") as file:
        head = file.read(4)
        if head[:1] == b"\x80":
            raise UnsafeArtifactError(f"{path}: a pickle, although the MLmodel says skops; it "
                                      f"is refused. {relog_advice(root)}")
        if head != ZIP_MAGIC:
            raise InvalidPackageError(f"{path}: not a skops file (expected a zip archive)")
        try:
            with zipfile.ZipFile(file) as archive:
                archive.getinfo("schema.json")
        except (zipfile.BadZipFile, KeyError, OSError) as exc:
            raise InvalidPackageError(f"{path}: not a skops file ({exc})") from None


# ---- the signature --------------------------------------------------------------------------

def input_schema(root: Path, mlmodel: dict[str, Any]) -> list[Column]:
    """MLflow's column-based input signature as our input schema; a type we cannot serve is
    refused naming its column. An optional column (required: false) becomes nullable."""
    specs = _signature_part(root, mlmodel, "inputs")
    if specs is None:
        raise InvalidPackageError(
            f"{root / 'MLmodel'}: no input signature; log the model with "
            "signature=mlflow.models.infer_signature(X, model.predict(X))")
    if len(specs) > MAX_COLUMNS:
        raise InvalidPackageError(f"{root / 'MLmodel'}: signature.inputs has {len(specs)} "
                                  f"columns; at most {MAX_COLUMNS}")
    columns = [_column(root, number, spec) for number, spec in enumerate(specs, start=1)]
    seen: set[str] = set()
    for column in columns:
        if column.name in seen:
            raise InvalidPackageError(f"{root / 'MLmodel'}: signature.inputs names column "
                                      f"'{column.name}' twice")
        seen.add(column.name)
    return columns


def _signature_part(root: Path, mlmodel: dict[str, Any], part: str) -> list[Any] | None:
    signature = mlmodel.get("signature")
    text = signature.get(part) if isinstance(signature, dict) else None
    if text is None:
        return None
    try:
        specs = json.loads(text) if isinstance(text, str) else None
    except (json.JSONDecodeError, RecursionError):
        specs = None
    if not isinstance(specs, list) or not specs:
        raise InvalidPackageError(f"{root / 'MLmodel'}: signature.{part} is not MLflow's JSON "
                                  "list of columns")
    return specs


def _column(root: Path, number: int, spec: Any) -> Column:
    where = f"{root / 'MLmodel'}: signature.inputs column {number}"
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise InvalidPackageError(f"{where}: not a column spec with a type")
    name, kind = spec.get("name"), spec["type"]
    if kind == "tensor":
        raise InvalidPackageError(f"{where}: a tensor signature; only column-based signatures "
                                  "(a DataFrame's named columns) are imported")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
        raise InvalidPackageError(f"{where}: a column needs a name of 1 to {MAX_NAME_CHARS} "
                                  "characters (log a DataFrame, not an array)")
    if kind not in DTYPES:
        raise InvalidPackageError(
            f"{where}: column '{name}' has type '{kind:.40}', which is not served here; "
            f"columns may be {', '.join(sorted(DTYPES))}")
    return Column(name=name, dtype=DTYPES[kind], nullable=spec.get("required") is False)


def inferred_type(root: Path, mlmodel: dict[str, Any]) -> tuple[ModelType | None, str | None]:
    """Classification when the MLmodel shows it: predictions of a type no scikit-learn
    regressor returns, or a probability predict function; otherwise unknown."""
    pyfunc = (mlmodel.get("flavors") or {}).get("python_function")
    predict_fn = pyfunc.get("predict_fn") if isinstance(pyfunc, dict) else None
    if predict_fn in ("predict_proba", "predict_log_proba"):
        return ModelType.CLASSIFICATION, f"its predict function is {predict_fn}"
    outputs = _signature_part(root, mlmodel, "outputs") or []
    first = outputs[0] if len(outputs) == 1 and isinstance(outputs[0], dict) else {}
    tensor = first.get("tensor-spec")
    kind = tensor.get("dtype") if isinstance(tensor, dict) else first.get("type")
    if isinstance(kind, str) and kind in CLASS_OUTPUTS:
        return ModelType.CLASSIFICATION, f"its signature's output is {kind}"
    return None, None


# ---- the input example ----------------------------------------------------------------------

def example_rows(root: Path, mlmodel: dict[str, Any], schema: list[Column]
                 ) -> list[dict[str, Any]]:
    """The input example's rows, checked against the schema as a runtime would check them."""
    info = mlmodel.get("saved_input_example_info")
    if not isinstance(info, dict):
        raise InvalidPackageError(f"{root / 'MLmodel'}: no input example; log the model with "
                                  "input_example=X.head(3)")
    path = inside(root, info.get("artifact_path"), "saved_input_example_info.artifact_path")
    try:
        body = json.loads(read_bounded(path, MAX_EXAMPLE_BYTES))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidPackageError(f"{path}: not JSON: {exc}") from None
    if info.get("params") == "true" and isinstance(body, dict):
        body = body.get("inputs")  # an example logged with inference params
    try:
        optional = {c.name: None for c in schema if c.nullable}  # MLflow may leave them out
        rows = [{**optional, **row} for row in _rows(info.get("type"), body, schema)]
        frame_from_rows(rows, schema)
    except (ValueError, SchemaMismatchError, ScoringRequestError) as exc:
        raise InvalidPackageError(f"{path}: the input example does not fit the signature: "
                                  f"{exc}") from None
    return rows


def _rows(kind: Any, body: Any, schema: list[Column]) -> list[dict[str, Any]]:
    if kind == "dataframe" and isinstance(body, dict):
        columns = body.get("columns", [c.name for c in schema])  # orient "values": no names
        return rows_from_request({"dataframe_split": {"columns": columns,
                                                      "data": body.get("data")}})
    if kind == "json_object" and isinstance(body, list):
        return rows_from_request({"dataframe_records": body})
    if kind == "json_object" and isinstance(body, dict):
        lists = [v for v in body.values() if isinstance(v, list)]
        if not lists:
            return [body]
        if len(lists) == len(body) and len({len(v) for v in lists}) == 1:
            return [dict(zip(body, row, strict=True)) for row in zip(*lists, strict=True)]
    raise ValueError(f"an example of type '{kind}' is not a table of named columns")


# ---- the folder ---------------------------------------------------------------------------

def read_mlflow_model(root: Path) -> MlflowModel:
    """Check an MLflow model folder and read what a package needs from it; raise
    InvalidPackageError naming the file and field (and, for a pickle, how to re-log it)."""
    mlmodel, data = read_mlmodel(root)
    flavor = sklearn_flavor(root, mlmodel)
    source = read_source(mlmodel, flavor)
    artifact = artifact_file(root, mlmodel, flavor, source)
    schema = input_schema(root, mlmodel)
    kind, evidence = inferred_type(root, mlmodel)
    return MlflowModel(root=root, artifact=artifact, source=source, input_schema=schema,
                       sample_rows=example_rows(root, mlmodel, schema), inferred_type=kind,
                       type_evidence=evidence, registered_name=registered_name(root),
                       mlmodel=data)


def registered_name(root: Path) -> str | None:
    """The registry name MLflow wrote beside a registered model, when it is a name here."""
    path = root / "registered_model_meta"
    if not path.is_file() or path.is_symlink():
        return None
    try:
        meta = yaml.safe_load(read_bounded(path, 64 * 1024))
    except yaml.YAMLError:
        return None
    name = meta.get("model_name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and _is_name(name) else None


def _is_name(value: str) -> bool:
    return re.fullmatch(NAME_PATTERN, value) is not None
