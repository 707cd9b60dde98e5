"""The training job: a version submitted with a training spec gets its artifact, with the
lineage of the data it was trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.lifecycle import State
from mlc_tasks.packages import ModelType
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.training import train_artifact


def to_train(package: Path, data: str) -> Path:
    spec = yaml.safe_load((package / "model.yaml").read_text())
    spec.pop("artifact")
    spec.pop("lineage")
    spec["training"] = {"estimator": "logistic_regression", "params": {"C": 0.5},
                        "data": data, "seed": 5}
    (package / "model.yaml").write_text(yaml.safe_dump(spec))
    (package / "model.skops").unlink()
    return package


def test_training_attaches_an_artifact_with_lineage(package, registry, store) -> None:
    version, _ = submit_package(to_train(package, "data/train.csv"), registry, store,
                                list(REVIEWED_TYPES), "ana")
    assert version.artifact_uri is None and version.state == State.SUBMITTED
    artifact = train_artifact(version, ModelType.CLASSIFICATION, list(REVIEWED_TYPES), store)
    trained = registry.attach_artifact(version.id, artifact, "on-model-changed", "training job")
    assert trained.state == State.TRAINED and trained.format == "skops"
    expected = hashlib.sha256((package / "data" / "train.csv").read_bytes()).hexdigest()
    assert trained.training_data_sha256 == expected
    assert (trained.parameters, trained.seed) == ({"C": 0.5}, 5)
    again = registry.attach_artifact(version.id, {**artifact, "artifact_uri": "elsewhere"},
                                     "on-model-changed", "rerun")
    assert again.artifact_uri == trained.artifact_uri  # a rerun keeps the first artifact


def test_training_data_at_a_url_is_read_when_the_job_runs(package, registry, store,
                                                          tmp_path: Path) -> None:
    url = f"file://{tmp_path}/lake/train.csv"
    version, _ = submit_package(to_train(package, url), registry, store,
                                list(REVIEWED_TYPES), "ana")
    with pytest.raises(InvalidInputError, match=f"training data {url}: cannot be read"):
        train_artifact(version, ModelType.CLASSIFICATION, list(REVIEWED_TYPES), store)
