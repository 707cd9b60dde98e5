"""Model packages: a folder with model.yaml and either an artifact or a training spec."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.scoring import Column, rows_from_request

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ModelType(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class RiskTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


METRICS: dict[ModelType, frozenset[str]] = {
    ModelType.CLASSIFICATION: frozenset(
        {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"}
    ),
    ModelType.REGRESSION: frozenset({"mae", "rmse", "r2"}),
}


class TrainingSpec(BaseModel):
    """How to train the artifact when the package does not bring one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    data: str = Field(min_length=1, description="labelled training data: a path in the package, "
                      "or an fsspec URL read when the training job runs")
    seed: int


class Lineage(BaseModel):
    """Where a ready-made artifact came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    estimator: str | None = None
    training_data: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None


class ModelSpec(BaseModel):
    """The contents of model.yaml."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    type: ModelType
    owner: str = Field(min_length=1)
    risk_tier: RiskTier
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    artifact: str | None = None
    training: TrainingSpec | None = None
    lineage: Lineage = Field(default_factory=Lineage)
    input_schema: list[Column] = Field(min_length=1)
    label: str = Field(min_length=1)
    metrics: list[str] = Field(min_length=1)
    sensitive_attributes: list[str] = Field(default_factory=list)
    test_data: str | None = None
    sample: str = "sample.json"
    data_location: str | None = Field(
        default=None, description="where labelled data arrives, a folder per day (YYYY-MM-DD) "
        "or a URL with {date}: a path relative to the package, or any fsspec URL")
    metrics_function: str | None = Field(
        default=None, pattern=r"^[\w./-]+\.py:[A-Za-z_]\w*$",
        description="the package's own metrics: file.py:function(y_true, y_pred, y_score)")
    requirements: dict[str, str] = Field(
        default_factory=dict,
        description="runtime capability → version specifier, e.g. sklearn: '>=1.9,<2'")

    @field_validator("requirements")
    @classmethod
    def _specifiers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, spec in value.items():
            try:
                SpecifierSet(spec)
            except InvalidSpecifier as exc:
                raise ValueError(f"requirements.{name}: '{spec}' is not a version specifier "
                                 "such as '>=1.9,<2'") from exc
        return value

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if (self.artifact is None) == (self.training is None):
            raise ValueError("give exactly one of 'artifact' and 'training'")
        unknown = sorted(set(self.metrics) - METRICS[self.type])
        if unknown:
            allowed = ", ".join(sorted(METRICS[self.type]))
            raise ValueError(f"metrics {unknown} unknown for {self.type}; allowed: {allowed}")
        names = [c.name for c in self.input_schema]
        if len(set(names)) != len(names):
            raise ValueError("input_schema names a column twice")
        if self.label in names:
            raise ValueError(f"label '{self.label}' is also an input column")
        return self


class ModelPackage(BaseModel):
    """A validated package on disk, with its files resolved."""

    model_config = ConfigDict(frozen=True)

    root: Path
    spec: ModelSpec
    artifact_path: Path | None
    sample_rows: list[dict[str, Any]]

    def resolve(self, relative: str) -> Path:
        return _existing_file(self.root, relative)


def load_package(root: Path | str) -> ModelPackage:
    """Read and validate a package folder; raise InvalidPackageError naming the field or file."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidPackageError(f"{root}: not a folder")
    spec = parse_model_yaml(root / "model.yaml")
    artifact = _existing_file(root, spec.artifact) if spec.artifact else None
    if spec.training and not is_url(spec.training.data):
        _existing_file(root, spec.training.data)
    if spec.lineage.training_data:
        _existing_file(root, spec.lineage.training_data)
    if spec.test_data:
        _existing_file(root, spec.test_data)
    if spec.metrics_function:
        _existing_file(root, spec.metrics_function.partition(":")[0])
    sample_rows = read_sample(_existing_file(root, spec.sample))
    if spec.data_location and not is_url(spec.data_location):  # relative to the package folder
        spec = spec.model_copy(update={
            "data_location": (root / spec.data_location).resolve().as_uri()})
    return ModelPackage(root=root, spec=spec, artifact_path=artifact, sample_rows=sample_rows)


def parse_model_yaml(path: Path) -> ModelSpec:
    if not path.is_file():
        raise InvalidPackageError(f"{path}: model.yaml is missing")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InvalidPackageError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidPackageError(f"{path}: expected a mapping of fields")
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise InvalidPackageError(f"{path}: {describe_errors(exc)}") from exc


def is_url(location: str) -> bool:
    """A location outside the package (any fsspec URL), read when a job runs."""
    return "://" in location


def describe_errors(exc: ValidationError) -> str:
    """One line per error, each naming the field by its dotted path."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"field '{field}': {err['msg']}")
    return "; ".join(parts)


def read_sample(path: Path) -> list[dict[str, Any]]:
    """Rows of an MLflow-style request file (dataframe_split or dataframe_records)."""
    try:
        body = json.loads(path.read_text())
        return rows_from_request(body)
    except (json.JSONDecodeError, ValueError) as exc:
        raise InvalidPackageError(f"{path}: not a scoring request: {exc}") from exc


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _existing_file(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InvalidPackageError(f"{relative}: must stay inside the package folder {root}")
    if not path.is_file():
        raise InvalidPackageError(f"{root / relative}: file not found")
    return path
