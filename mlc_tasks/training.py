"""Training jobs: a scikit-learn pipeline built from a package's training spec."""

from __future__ import annotations

import hashlib
import io
import logging
from typing import Any

import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from mlc_tasks import locations
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import InvalidInputError, InvalidPackageError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.packages import ModelType, TrainingSpec, check_parameters, is_url
from mlc_tasks.registry import VersionRecord
from mlc_tasks.scoring import Column
from mlc_tasks.serialization import inspect_artifact
from mlc_tasks.submission import package_member

log = logging.getLogger(__name__)

ESTIMATORS: dict[tuple[ModelType, str], Any] = {
    (ModelType.CLASSIFICATION, "logistic_regression"): LogisticRegression,
    (ModelType.CLASSIFICATION, "random_forest"): RandomForestClassifier,
    (ModelType.CLASSIFICATION, "gradient_boosting"): GradientBoostingClassifier,
    (ModelType.REGRESSION, "ridge"): Ridge,
    (ModelType.REGRESSION, "random_forest"): RandomForestRegressor,
    (ModelType.REGRESSION, "gradient_boosting"): GradientBoostingRegressor,
}
SEEDED = {"random_state"}


def build_pipeline(model_type: ModelType, spec: TrainingSpec, schema: list[Column]) -> Pipeline:
    """Preprocessing from the input schema (scale numbers, one-hot strings) + the estimator.
    The parameters are checked against their bounds here too: a recipe may come from a
    version registered before the bounds existed."""
    check_parameters(model_type, spec.estimator, spec.params, "training.params")
    estimator_class = ESTIMATORS[(model_type, spec.estimator)]
    params = dict(spec.params)
    if SEEDED & set(estimator_class().get_params()):
        params["random_state"] = spec.seed
    try:
        estimator = estimator_class(**params)
    except TypeError as exc:
        raise InvalidPackageError(f"field 'training.params': {exc}") from exc
    numeric = [c.name for c in schema if c.dtype in ("float", "int")]
    categorical = [c.name for c in schema if c.dtype in ("str", "bool")]
    features = ColumnTransformer(
        [("numeric", StandardScaler(), numeric),
         ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical)]
    )
    return Pipeline([("features", features), ("model", estimator)])


def fit(
    model_type: ModelType, spec: TrainingSpec, schema: list[Column], data: pd.DataFrame, label: str
) -> Pipeline:
    """Fit on labelled data; a missing column is named."""
    missing = [name for name in [c.name for c in schema] + [label] if name not in data.columns]
    if missing:
        raise InvalidPackageError(f"training data is missing column(s): {', '.join(missing)}")
    pipeline = build_pipeline(model_type, spec, schema)
    pipeline.fit(data[[c.name for c in schema]], data[label])
    log.info("trained %s on %d rows", spec.estimator, len(data))
    return pipeline


def read_training_data(location: str, package_uri: str, policy: LocationPolicy) -> bytes:
    """The training data: a file in the stored package, or a URL under an allowed root
    (checked again here: the version may have been registered before the roots were)."""
    if not is_url(location):
        return package_member(package_uri, location)
    checked = locations.check(location, policy, "training.data")
    try:
        return locations.read_bytes(checked)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"training data {location}: cannot be read: {exc}") from exc


def train_artifact(version: VersionRecord, model_type: ModelType, reviewed_types: list[str],
                   store: ArtifactStore, policy: LocationPolicy | None = None
                   ) -> dict[str, Any]:
    """Run the training job of a version submitted with a training spec: fit, save as skops,
    check its types, store it. Returns the fields `Registry.attach_artifact` records. `policy`:
    where training data may be read (default: the installation's settings)."""
    if version.training is None or version.package_uri is None:
        raise InvalidPackageError(f"{version.ref}: no training spec to train from")
    spec = TrainingSpec.model_validate(version.training)
    raw = read_training_data(spec.data, version.package_uri,
                             policy or locations.installation_policy())
    try:
        data = pd.read_csv(io.BytesIO(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"training data {spec.data}: not a CSV file: {exc}") from exc
    pipeline = fit(model_type, spec, version.input_schema, data, version.label)
    return stored_artifact(pipeline, f"{version.ref} (trained)", reviewed_types, store,
                           hashlib.sha256(raw).hexdigest())


def stored_artifact(pipeline: Pipeline, name: str, reviewed_types: list[str],
                    store: ArtifactStore, data_sha256: str) -> dict[str, Any]:
    """Save a fitted pipeline as skops, check its types, store it; the artifact's fields."""
    artifact = sio.dumps(pipeline)
    types = inspect_artifact(artifact, name, reviewed_types)
    uri, sha = store.put(artifact)
    return {"artifact_uri": uri, "artifact_sha256": sha, "format": "skops",
            "artifact_types": types.all_types, "trusted_types": types.needs_review,
            "training_data_sha256": data_sha256}
