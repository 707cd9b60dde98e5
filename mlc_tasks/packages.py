"""Model packages: a folder with model.yaml and either an artifact or a training spec."""

from __future__ import annotations

import hashlib
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

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

from mlc_tasks import locations
from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.locations import LocationPolicy
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


class Bound(NamedTuple):
    """One form an estimator parameter may take: a number in [low, high] (`kind` int: an
    integer; fraction: a float, not an int), or one of `choices`."""

    kind: str = "number"
    low: float = 0.0
    high: float = 0.0
    choices: tuple[Any, ...] = ()

    def admits(self, value: Any) -> bool:
        if self.kind == "choice":
            return any(type(value) is type(c) and value == c for c in self.choices)
        allowed = {"int": (int,), "fraction": (float,), "number": (int, float)}[self.kind]
        return (not isinstance(value, bool) and isinstance(value, allowed)
                and self.low <= value <= self.high)  # NaN and inf fail here

    def describe(self) -> str:
        if self.kind == "choice":
            return " or ".join("null" if c is None else repr(c) for c in self.choices)
        kind = {"int": "an integer", "fraction": "a fraction"}.get(self.kind, "a number")
        return f"{kind} from {self.low:g} to {self.high:g}"


def _int(low: int, high: int) -> Bound:
    return Bound("int", low, high)


def _num(low: float, high: float, kind: str = "number") -> Bound:
    return Bound(kind, low, high)


def _one_of(*choices: Any) -> Bound:
    return Bound("choice", choices=choices)


TINY = 1e-9  # "more than zero"
_NONE, _BOOL = _one_of(None), _one_of(True, False)
_TREE = {
    "max_depth": (_int(1, 64), _NONE),
    "min_samples_split": (_int(2, 100_000), _num(TINY, 1.0, "fraction")),
    "min_samples_leaf": (_int(1, 100_000), _num(TINY, 0.5, "fraction")),
    "min_weight_fraction_leaf": (_num(0, 0.5),),
    "max_features": (_int(1, 100_000), _num(TINY, 1.0, "fraction"), _one_of("sqrt", "log2"),
                     _NONE),
    "max_leaf_nodes": (_int(2, 100_000), _NONE),
    "min_impurity_decrease": (_num(0, 1e6),),
    "ccp_alpha": (_num(0, 1e6),),
}
_FOREST = {**_TREE, "n_estimators": (_int(1, 1000),), "bootstrap": (_BOOL,),
           "oob_score": (_BOOL,),
           "max_samples": (_int(1, 10_000_000), _num(TINY, 1.0, "fraction"), _NONE)}
_BOOSTING = {**_TREE, "n_estimators": (_int(1, 1000),), "learning_rate": (_num(TINY, 10),),
             "subsample": (_num(TINY, 1),), "n_iter_no_change": (_int(1, 1000), _NONE),
             "validation_fraction": (_num(TINY, 0.99),), "tol": (_num(0, 1),)}
# The parameters a training spec (or an artifact's lineage) may set, per estimator of
# mlc_tasks/training.py, and their bounds: nothing a package says can make a training job run
# for days or take every core (n_jobs, verbose, warm_start are not accepted; the seed sets
# random_state).
PARAMETERS: dict[tuple[ModelType, str], dict[str, tuple[Bound, ...]]] = {
    (ModelType.CLASSIFICATION, "logistic_regression"): {
        "C": (_num(TINY, 1e6),), "max_iter": (_int(1, 10_000),), "tol": (_num(0, 1),),
        "fit_intercept": (_BOOL,), "intercept_scaling": (_num(TINY, 1e6),),
        "l1_ratio": (_num(0, 1), _NONE), "class_weight": (_one_of("balanced", None),),
        "solver": (_one_of("lbfgs", "liblinear", "newton-cg", "newton-cholesky", "sag",
                           "saga"),)},
    (ModelType.CLASSIFICATION, "random_forest"): {
        **_FOREST, "criterion": (_one_of("gini", "entropy", "log_loss"),),
        "class_weight": (_one_of("balanced", "balanced_subsample", None),)},
    (ModelType.CLASSIFICATION, "gradient_boosting"): {
        **_BOOSTING, "loss": (_one_of("log_loss", "exponential"),)},
    (ModelType.REGRESSION, "ridge"): {
        "alpha": (_num(0, 1e6),), "fit_intercept": (_BOOL,), "positive": (_BOOL,),
        "max_iter": (_int(1, 100_000), _NONE), "tol": (_num(0, 1),),
        "solver": (_one_of("auto", "svd", "cholesky", "lsqr", "sparse_cg", "sag", "saga",
                           "lbfgs"),)},
    (ModelType.REGRESSION, "random_forest"): {
        **_FOREST, "criterion": (_one_of("squared_error", "absolute_error", "friedman_mse",
                                         "poisson"),)},
    (ModelType.REGRESSION, "gradient_boosting"): {
        **_BOOSTING, "alpha": (_num(TINY, 0.99),),
        "loss": (_one_of("squared_error", "absolute_error", "huber", "quantile"),)},
}


def check_parameters(model_type: ModelType, estimator: str, params: dict[str, Any],
                     field: str) -> None:
    """Raise InvalidPackageError unless `estimator` is known for the type and every parameter
    is one it accepts, within its bounds; the message names the field."""
    accepted = PARAMETERS.get((model_type, estimator))
    if accepted is None:
        known = sorted(name for kind, name in PARAMETERS if kind == model_type)
        raise InvalidPackageError(f"field '{field.rsplit('.', 1)[0]}.estimator': '{estimator}' "
                                  f"unknown for {model_type}; known: {', '.join(known)}")
    for name, value in params.items():
        bounds = accepted.get(name)
        if bounds is None:
            raise InvalidPackageError(f"field '{field}.{name}': not a parameter accepted for "
                                      f"{estimator}; accepted: {', '.join(sorted(accepted))}")
        if not any(bound.admits(value) for bound in bounds):
            allowed = "; or ".join(bound.describe() for bound in bounds)
            raise InvalidPackageError(f"field '{field}.{name}': {value!r:.40} is out of "
                                      f"bounds for {estimator}: {allowed}")


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
        "or a URL with {date}: a path relative to the package, or a URL; it must lie under "
        "an allowed data root (MLC_DATA_ROOTS)")
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


def load_package(root: Path | str, policy: LocationPolicy | None = None) -> ModelPackage:
    """Read and validate a package folder; raise InvalidPackageError naming the field or file,
    UnsafeLocationError for a location outside `policy`'s roots (default: the installation's
    settings)."""
    root = Path(root)
    if not root.is_dir():
        raise InvalidPackageError(f"{root}: not a folder")
    refuse_links(root)
    spec = parse_model_yaml(root / "model.yaml")
    check_estimator(spec, root / "model.yaml")
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
    spec = confine_locations(spec, root, policy or locations.installation_policy())
    return ModelPackage(root=root, spec=spec, artifact_path=artifact, sample_rows=sample_rows)


def refuse_links(root: Path) -> None:
    """A package holds only its own regular files: a symbolic link (to the admin token, say)
    would be packed, stored and read by the jobs as if it were the package's."""
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            if path.is_symlink():
                raise InvalidPackageError(f"{path.relative_to(root)}: a symbolic link; a "
                                          "package holds only its own files (copy it in)")
            if not (path.is_dir() or path.is_file()):
                raise InvalidPackageError(f"{path.relative_to(root)}: not a regular file")


def confine_locations(spec: ModelSpec, root: Path, policy: LocationPolicy) -> ModelSpec:
    """The data location, resolved (relative: to the package folder) and under an allowed root;
    training data at a URL likewise (it is read when the training job runs)."""
    if spec.training and is_url(spec.training.data):
        locations.check(spec.training.data, policy, "training.data")
    if not spec.data_location:
        return spec
    given = spec.data_location
    if not is_url(given):
        given = str(root.absolute() / given)
    checked = locations.check(given, policy, "data_location")
    url = checked.url if is_url(checked.url) else f"file://{checked.url}"
    return spec.model_copy(update={"data_location": url})


def check_estimator(spec: ModelSpec, path: Path) -> None:
    """The training spec's estimator and parameters, and the lineage's when it names an
    estimator this installation trains (retraining uses it as the recipe)."""
    try:
        if spec.training:
            check_parameters(spec.type, spec.training.estimator, spec.training.params,
                             "training.params")
        if (spec.type, spec.lineage.estimator) in PARAMETERS:
            check_parameters(spec.type, str(spec.lineage.estimator), spec.lineage.parameters,
                             "lineage.parameters")
    except InvalidPackageError as exc:
        raise InvalidPackageError(f"{path}: {exc}") from None


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
