"""Training jobs: a scikit-learn pipeline built from a package's training spec."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
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

from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.packages import ModelType, TrainingSpec
from mlc_tasks.scoring import Column

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
    """Preprocessing from the input schema (scale numbers, one-hot strings) + the estimator."""
    estimator_class = ESTIMATORS.get((model_type, spec.estimator))
    if estimator_class is None:
        known = sorted(name for kind, name in ESTIMATORS if kind == model_type)
        raise InvalidPackageError(
            f"field 'training.estimator': '{spec.estimator}' unknown for {model_type}; "
            f"known: {', '.join(known)}"
        )
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
