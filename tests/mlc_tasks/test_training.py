"""The training job: a version submitted with a training spec gets its artifact, with the
lineage of the data it was trained on."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from mlc_tasks.errors import InvalidInputError, InvalidPackageError, UnsafeLocationError
from mlc_tasks.lifecycle import State
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.packages import PARAMETERS, ModelType, TrainingSpec
from mlc_tasks.scoring import Column
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from mlc_tasks.training import ESTIMATORS, build_pipeline, train_artifact


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


def test_the_parameter_bounds_cover_exactly_the_estimators_trained() -> None:
    assert set(PARAMETERS) == set(ESTIMATORS)
    for key, accepted in PARAMETERS.items():
        known = set(ESTIMATORS[key]().get_params())
        assert set(accepted) <= known - {"n_jobs", "random_state", "verbose", "warm_start"}, key


def test_out_of_bounds_parameters_are_refused_when_the_job_runs() -> None:
    """A recipe registered before the bounds (or read from an old lineage) is checked again."""
    spec = TrainingSpec(estimator="gradient_boosting", params={"n_estimators": 10**8},
                        data="data/train.csv", seed=1)
    with pytest.raises(InvalidPackageError, match="'training.params.n_estimators': 100000000"):
        build_pipeline(ModelType.CLASSIFICATION, spec, [Column(name="x", dtype="float")])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_training_data_outside_the_roots_is_never_read(package, registry, store, settings,
                                                       tmp_path: Path) -> None:
    """A version registered before there were roots, its training data the admin token."""
    settings.resolved_admin_token()
    secret = settings.home / "admin-token"
    before = LocationPolicy(roots=[str(tmp_path)])  # as open as it was: MLC_HOME unguarded
    version, _ = submit_package(to_train(package, f"file://{secret}"), registry, store,
                                list(REVIEWED_TYPES), "ana", before)
    with pytest.raises(UnsafeLocationError, match=f"training.data: file://{secret} is refused: "
                                                  "inside the installation's own files"):
        train_artifact(version, ModelType.CLASSIFICATION, list(REVIEWED_TYPES), store,
                       LocationPolicy.from_settings(settings))  # tmp_path is a root, home not
