"""An MLflow model folder (mlc_tasks/mlflow_models.py) made into one of our model packages: the
fields MLflow does not record (name, type, owner, risk tier, label...) come from the caller or
another package's model.yaml; the input schema and sample come from the model's signature and
input example.

The skops artifact is copied byte for byte and never loaded here: the installation's scan
decides at submission which of its types may load (MLflow's own `skops_trusted_types` is not
carried over). The MLmodel is kept in the package as mlflow/MLmodel, the version's record of the
MLflow run and model it came from.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.mlflow_models import (
    MAX_MLMODEL_BYTES,
    MlflowModel,
    MlflowSource,
    check_skops_bytes,
    copy_bounded,
    read_bounded,
    read_mlflow_model,
)
from mlc_tasks.packages import (
    METRICS,
    ModelSpec,
    ModelType,
    describe_errors,
    parse_model_yaml,
    read_sample,
)

log = logging.getLogger(__name__)

ARTIFACT = "model.skops"
OWN_FILES = {ARTIFACT, "model.yaml", "sample.json", "mlflow/MLmodel"}
# the package's fields an MLflow model states itself; --like never supplies these
FROM_MLFLOW = {"artifact", "training", "lineage", "input_schema", "sample"}


class ImportedPackage(BaseModel):
    """A package folder written from an MLflow model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    folder: Path
    spec: ModelSpec
    artifact_sha256: str
    model: MlflowModel


class LikeFields(BaseModel):
    """The fields a model.yaml gives an import, and the files it names (package-relative name
    → the file in that model.yaml's folder) to copy along."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fields: dict[str, Any]
    files: dict[str, Path]


def package_spec(model: MlflowModel, given: dict[str, Any]) -> ModelSpec:
    """model.yaml from what MLflow records and the fields it does not (`given`: --like's,
    then the command line's)."""
    raw = {k: v for k, v in given.items() if v is not None and k not in FROM_MLFLOW}
    raw.setdefault("name", model.registered_name)
    raw.setdefault("type", model.inferred_type)
    missing = [f for f in ("name", "type", "owner", "risk_tier", "label") if raw.get(f) is None]
    if missing:
        options = ", ".join(f"--{f.replace('_', '-')}" for f in missing)
        raise InvalidPackageError(f"{model.root}: MLflow does not record {', '.join(missing)}; "
                                  f"give {options} (or --like model.yaml)")
    if raw["type"] in {t.value for t in ModelType}:
        raw.setdefault("metrics", sorted(METRICS[ModelType(raw["type"])]))
    extra = raw.get("requirements", {})
    raw["requirements"] = {**requirements(model.source), **extra} if isinstance(
        extra, dict) else extra
    raw.update(artifact=ARTIFACT, sample="sample.json",
               input_schema=[c.model_dump(exclude_defaults=True) for c in model.input_schema])
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPackageError(f"{model.root}: {describe_errors(exc)}") from None


def requirements(source: MlflowSource) -> dict[str, str]:
    """The scikit-learn the model was saved with, to its minor release (what scikit-learn
    keeps loadable)."""
    parts = (source.sklearn_version or "").split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts[:2]):
        return {}
    major, minor = int(parts[0]), int(parts[1])
    return {"sklearn": f">={source.sklearn_version},<{major}.{minor + 1}"}


def write_package(model: MlflowModel, spec: ModelSpec, target: Path,
                  files: dict[str, Path] | None = None) -> ImportedPackage:
    """Write the package folder `target` (which must not exist) all at once: built beside it
    and renamed into place, so a failure leaves nothing behind."""
    if target.exists() or target.is_symlink():
        raise InvalidPackageError(f"{target}: already exists; give a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".mlflow-import-", dir=target.parent))
    try:
        sha256 = _fill(building, model, spec, files or {})
        os.rename(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    log.info("wrote %s from MLflow model %s", target, model.source.model_id or model.root)
    return ImportedPackage(folder=target, spec=spec, artifact_sha256=sha256, model=model)


def _fill(folder: Path, model: MlflowModel, spec: ModelSpec, files: dict[str, Path]) -> str:
    sha256 = copy_bounded(model.artifact, folder / ARTIFACT)
    check_skops_bytes(folder / ARTIFACT, model.root)  # the copy, not the source
    (folder / "mlflow").mkdir()
    (folder / "mlflow" / "MLmodel").write_bytes(model.mlmodel)
    (folder / "sample.json").write_text(sample_json(model))
    for relative, source in files.items():
        if relative in OWN_FILES:
            raise InvalidPackageError(f"{source}: would be the package's own {relative}")
        destination = folder / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        copy_bounded(source, destination)
    spec_text = yaml.safe_dump(spec.model_dump(mode="json", exclude_defaults=True),
                               sort_keys=False)
    (folder / "model.yaml").write_text(spec_text)
    parse_model_yaml(folder / "model.yaml")  # what the installation will read, read back
    read_sample(folder / "sample.json")
    return sha256


def sample_json(model: MlflowModel) -> str:
    """The input example as a scoring request in the schema's column order, a row a line."""
    names = [c.name for c in model.input_schema]
    rows = ",\n".join(f"   {json.dumps([r.get(n) for n in names])}" for r in model.sample_rows)
    return (f'{{"dataframe_split": {{\n  "columns": {json.dumps(names)},\n'
            f'  "data": [\n{rows}\n  ]\n}}}}\n')


def import_mlflow(root: Path, given: dict[str, Any], target: Path,
                  files: dict[str, Path] | None = None) -> ImportedPackage:
    """An MLflow model folder as a new package folder `target`."""
    model = read_mlflow_model(root)
    return write_package(model, package_spec(model, given), target, files)


# ---- fields from another package's model.yaml ------------------------------------------------

def fields_like(model_yaml: Path) -> LikeFields:
    """The fields of a model.yaml that MLflow does not record, with the files it names (test
    data, metrics function) to copy and a relative data location made absolute."""
    data = read_bounded(model_yaml, MAX_MLMODEL_BYTES)
    try:
        raw = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise InvalidPackageError(f"{model_yaml}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidPackageError(f"{model_yaml}: expected a mapping of fields")
    fields = {k: v for k, v in raw.items() if k not in FROM_MLFLOW}
    folder, files = model_yaml.parent, {}
    for key in ("test_data", "metrics_function"):
        relative = fields.get(key)
        if isinstance(relative, str) and "://" not in relative:
            relative = relative.partition(":")[0] if key == "metrics_function" else relative
            files[relative] = _like_file(model_yaml, key, relative)
    location = fields.get("data_location")
    if isinstance(location, str) and "://" not in location and not os.path.isabs(location):
        fields["data_location"] = os.path.normpath(folder.absolute() / location)
    return LikeFields(fields=fields, files=files)


def _like_file(model_yaml: Path, key: str, relative: str) -> Path:
    folder = model_yaml.parent
    parts = PurePosixPath(relative).parts
    path = (folder / relative).resolve()
    if os.path.isabs(relative) or ".." in parts or not path.is_relative_to(folder.resolve()):
        raise InvalidPackageError(f"{model_yaml}: {key} '{relative:.100}' must stay inside "
                                  f"{folder}")
    return folder / relative
