"""`mlc import-mlflow` as a person runs it, against a real control-plane API process: a real
MLflow folder is submitted as `mlc submit` submits a package; a pickled one is refused with
how to re-log it, and the installation's scan still decides which skops types may load."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import skops.io as sio
import yaml
from sklearn.pipeline import Pipeline

from mlc_tasks.settings import MlcSettings
from tests.conftest import ApiProcess
from tests.deployments.test_cli import mlc_as_ana, start_api
from tests.mlc_tasks.custom_estimator import HomeMadeEstimator

DATA = Path(__file__).parents[1] / "data" / "mlflow"
SKOPS = DATA / "credit-risk-skops"


def test_import_submits_as_submit_does(local_settings: MlcSettings, examples_dir: Path,
                                       tmp_path: Path) -> None:
    api: ApiProcess = start_api(local_settings)
    try:
        mlc = mlc_as_ana(local_settings, api)
        like = str(examples_dir / "credit-risk" / "model.yaml")
        done = mlc("import-mlflow", str(SKOPS), "--like", like)
        lines = done.stdout.strip().splitlines()
        assert lines[0].startswith("MLflow model m-bd78843988f3406b8183f5bf7d18ce0b (skops, "
                                   "run 3c1a1d9772aa4a909e2cbd7467a31def, MLflow 3.17.2, "
                                   "scikit-learn 1.9.1): 5 input columns, 3 sample rows")
        assert lines[1].startswith("registered credit-risk:1 (id ")  # --like gave the type
        version_id = lines[-1]
        [version] = json.loads(mlc("versions", "credit-risk", "--json").stdout)
        sha256 = hashlib.sha256((SKOPS / "model.skops").read_bytes()).hexdigest()
        assert (version["id"], version["artifact_sha256"]) == (version_id, sha256)

        out = tmp_path / "package"
        written = mlc("import-mlflow", str(SKOPS), "--like", like, "--out", str(out))
        assert f"wrote {out}; `mlc submit {out}` registers it" in written.stdout
        again = mlc("submit", str(out))  # the same package, submitted by hand
        assert "already registered credit-risk:1" in again.stdout
        assert again.stdout.strip().splitlines()[-1] == version_id

        pickled = mlc("import-mlflow", str(DATA / "credit-risk-pickle"), "--like", like,
                      ok=False)
        assert "serialization_format 'pickle'" in pickled.stderr
        assert "serialization_format='skops'" in pickled.stderr
        assert "Traceback" not in pickled.stderr
    finally:
        api.stop()


def test_skops_types_mlflow_trusted_are_still_the_installations_to_review(
        local_settings: MlcSettings, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(SKOPS, tmp_path / "mlflow-model"))
    sio.dump(Pipeline([("model", HomeMadeEstimator())]), folder / "model.skops")
    name = "tests.mlc_tasks.custom_estimator.HomeMadeEstimator"
    raw = yaml.safe_load((folder / "MLmodel").read_text())
    raw["flavors"]["sklearn"]["skops_trusted_types"] = [name]
    (folder / "MLmodel").write_text(yaml.safe_dump(raw))
    api: ApiProcess = start_api(local_settings)
    try:
        mlc = mlc_as_ana(local_settings, api)
        assert "--like" in mlc("import-mlflow", "--help").stdout
        done = mlc("import-mlflow", str(folder), "--name", "home-made", "--owner",
                   "ana.lopez@bank.example", "--risk-tier", "low", "--label", "y",
                   "--tags", "team=lending", ok=False)
        assert "type classification: its signature's output is int64" in done.stdout
        assert f"types not reviewed: {name}" in done.stderr
        assert json.loads(mlc("models", "--json").stdout) == []
    finally:
        api.stop()
