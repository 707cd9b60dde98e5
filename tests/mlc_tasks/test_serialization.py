"""Only skops artifacts with reviewed types are registered or loaded; altered bytes are refused."""

import pickle
from pathlib import Path

import joblib
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from mlc_tasks.artifacts import ArtifactStore, fetch_verified
from mlc_tasks.errors import UnsafeArtifactError
from mlc_tasks.serialization import inspect_artifact, load_artifact
from mlc_tasks.settings import REVIEWED_TYPES
from tests.mlc_tasks.custom_estimator import HomeMadeEstimator

MODEL = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def test_skops_artifact_lists_its_types() -> None:
    types = inspect_artifact(sio.dumps(MODEL), "m.skops", list(REVIEWED_TYPES))
    assert "sklearn.linear_model._logistic.LogisticRegression" in types.all_types
    assert types.needs_review == []


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "model.skops"])
def test_pickle_is_refused_whatever_its_name(name: str) -> None:
    with pytest.raises(UnsafeArtifactError, match="pickle/joblib artifacts are refused"):
        inspect_artifact(pickle.dumps(MODEL), name, [])


def test_joblib_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(MODEL, path)
    with pytest.raises(UnsafeArtifactError, match="runs arbitrary code"):
        inspect_artifact(path.read_bytes(), str(path), [])


def test_unreviewed_types_are_refused_by_name() -> None:
    data = sio.dumps(HomeMadeEstimator())
    with pytest.raises(UnsafeArtifactError, match="custom_estimator.HomeMadeEstimator"):
        inspect_artifact(data, "m.skops", list(REVIEWED_TYPES))


def test_reviewed_types_are_recorded_and_trusted_on_load() -> None:
    data = sio.dumps(HomeMadeEstimator(factor=3.0))
    name = "tests.mlc_tasks.custom_estimator.HomeMadeEstimator"
    types = inspect_artifact(data, "m.skops", [name])
    assert types.needs_review == [name]
    assert load_artifact(data, "m.skops", types.needs_review, [name]).factor == 3.0
    with pytest.raises(UnsafeArtifactError, match="cannot be loaded safely"):
        load_artifact(data, "m.skops", [], [name])  # recorded as needing nothing: skops refuses


def test_the_loader_decides_what_is_trusted_not_the_version_record() -> None:
    """A submitter whose own environment trusted a type gets it recorded on the version; every
    loader trusts only what its installation reviewed, so nothing of it runs."""
    payload = sio.dumps({"call": exec})  # needs builtins.exec
    recorded = inspect_artifact(payload, "m.skops", ["builtins.exec"]).needs_review
    assert recorded == ["builtins.exec"]
    with pytest.raises(UnsafeArtifactError, match="not reviewed on this installation: "
                       "builtins.exec; it is not loaded"):
        load_artifact(payload, "m.skops", recorded, list(REVIEWED_TYPES))
    with pytest.raises(UnsafeArtifactError, match="types not reviewed: builtins.exec"):
        inspect_artifact(payload, "m.skops", list(REVIEWED_TYPES))  # the scan's view


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(UnsafeArtifactError, match="not a skops file"):
        inspect_artifact(b"hello", "m.skops", [])


def test_store_is_content_addressed(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    first = store.put(b"bytes")
    assert store.put(b"bytes") == first
    assert fetch_verified(*first) == b"bytes"
    assert len(list((tmp_path / "store").rglob("*.tmp"))) == 0


def test_altered_artifact_is_refused(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    uri, digest = store.put(b"original")
    Path(uri).write_bytes(b"tampered")
    with pytest.raises(UnsafeArtifactError, match="altered after registration"):
        fetch_verified(uri, digest)
