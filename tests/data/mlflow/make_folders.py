"""Make the MLflow model folders under tests/data/mlflow/ with real MLflow (not run by the suite).

Run it in a throwaway environment, from the repository root:

    python3.11 -m venv /tmp/mlflowenv
    /tmp/mlflowenv/bin/pip install mlflow-skinny==3.17.2 scikit-learn==1.9.1 skops==0.16.0 pandas
    /tmp/mlflowenv/bin/python tests/data/mlflow/make_folders.py

It fits a small credit-risk pipeline (the columns of examples/credit-risk, scaled numbers and
one-hot strings into a logistic regression, on seeded synthetic rows) and logs it three times
with `mlflow.sklearn.log_model` into a file tracking store in a temporary folder: in skops
format, pickled and cloudpickled, each with its signature and a three-row input example. The
logged model folders are copied here; the tracking store is thrown away.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import mlflow
import mlflow.sklearn
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

HERE = Path(__file__).resolve().parent
NUMERIC = ["income", "debt_ratio", "age", "employment_years"]
FORMATS = {"credit-risk-skops": "skops", "credit-risk-pickle": "pickle",
           "credit-risk-cloudpickle": "cloudpickle"}


def rows(n: int = 400, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(55_000, 18_000, n).round(1).clip(8_000),
        "debt_ratio": rng.uniform(0.0, 0.9, n).round(3),
        "age": rng.integers(18, 75, n),
        "employment_years": rng.integers(0, 30, n),
        "region": rng.choice(["north", "south", "east", "west"], n),
    })
    risk = 2.5 * frame["debt_ratio"] - frame["income"] / 60_000 - frame["employment_years"] / 20
    return frame, (risk + rng.normal(0, 0.5, n) > 0.2).astype(int).rename("default")


def pipeline() -> Pipeline:
    features = ColumnTransformer([("numeric", StandardScaler(), NUMERIC),
                                  ("categorical", OneHotEncoder(handle_unknown="ignore"),
                                   ["region"])])
    return Pipeline([("features", features), ("model", LogisticRegression(C=1.0))])


def main() -> None:
    features, label = rows()
    model = pipeline().fit(features, label)
    example = features.head(3)
    signature = infer_signature(example, model.predict(example))
    # MLflow 3.17 keeps the file store only on request; a database store needs SQLAlchemy
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    with tempfile.TemporaryDirectory() as store:
        mlflow.set_tracking_uri(Path(store).as_uri())
        mlflow.set_experiment("credit-risk")
        for folder, serialization in FORMATS.items():
            with mlflow.start_run(run_name=folder):
                info = mlflow.sklearn.log_model(
                    model, name="model", serialization_format=serialization,
                    signature=signature, input_example=example)
            local = mlflow.artifacts.download_artifacts(info.model_uri, dst_path=store + "/out")
            target = HERE / folder
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(local, target)
            shutil.rmtree(local)
            print(f"{target.relative_to(HERE.parents[2])}: {serialization}, "  # noqa: T201
                  f"{info.model_uri}")
    print(f"mlflow {mlflow.__version__}, python {sys.version.split()[0]}")  # noqa: T201


if __name__ == "__main__":
    main()
