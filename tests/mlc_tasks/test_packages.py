"""model.yaml and package validation: each bad input names its field or file."""

from pathlib import Path

import pytest
import yaml

from mlc_tasks.errors import InvalidPackageError, UnsafeLocationError
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.packages import load_package
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package


def edit_yaml(package: Path, **changes: object) -> None:
    path = package / "model.yaml"
    spec = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    path.write_text(yaml.safe_dump(spec))


def test_example_package_is_valid(package: Path) -> None:
    loaded = load_package(package)
    assert loaded.spec.name == "credit-risk"
    assert loaded.artifact_path and loaded.artifact_path.name == "model.skops"
    assert len(loaded.sample_rows) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"owner": None}, "field 'owner': Field required"),
        ({"risk_tier": "extreme"}, "field 'risk_tier'"),
        ({"type": "clustering"}, "field 'type'"),
        ({"input_schema": "income"}, "field 'input_schema'"),
        ({"input_schema": [{"name": "income", "dtype": "decimal"}]}, "input_schema.0.dtype"),
        ({"tags": ["eu"]}, "field 'tags'"),
        ({"name": "Credit Risk!"}, "field 'name'"),
        ({"metrics": ["accuracy", "mae"]}, "metrics ['mae'] unknown for classification"),
        ({"training": {"estimator": "ridge", "data": "data/train.csv", "seed": 1}},
         "exactly one of 'artifact' and 'training'"),
        ({"artifact": None}, "exactly one of 'artifact' and 'training'"),
        ({"label": "income"}, "label 'income' is also an input column"),
        ({"colour": "blue"}, "field 'colour': Extra inputs are not permitted"),
    ],
)
def test_bad_model_yaml_names_the_field(package: Path, changes: dict, message: str) -> None:
    edit_yaml(package, **changes)
    with pytest.raises(InvalidPackageError, match="model.yaml") as info:
        load_package(package)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("changes", "missing"),
    [({"artifact": "missing.skops"}, "missing.skops"),
     ({"test_data": "data/nope.csv"}, "data/nope.csv"),
     ({"sample": "../outside.json"}, "must stay inside the package folder")],
)
def test_missing_files_are_named(package: Path, changes: dict, missing: str) -> None:
    edit_yaml(package, **changes)
    with pytest.raises(InvalidPackageError, match=missing):
        load_package(package)


def test_missing_model_yaml(package: Path) -> None:
    (package / "model.yaml").unlink()
    with pytest.raises(InvalidPackageError, match="model.yaml is missing"):
        load_package(package)


def test_yaml_syntax_error(package: Path) -> None:
    (package / "model.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InvalidPackageError, match="not valid YAML"):
        load_package(package)


def test_sample_not_a_scoring_request(package: Path) -> None:
    (package / "sample.json").write_text('{"rows": []}')
    with pytest.raises(InvalidPackageError, match="sample.json: not a scoring request"):
        load_package(package)


# ---- containment: locations, links, estimator parameters --------------------------------------

@pytest.fixture
def roots(tmp_path: Path) -> LocationPolicy:
    """One data root beside the package; MLC_HOME (with its admin token) beside that."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "admin-token").write_text("t0ken\n")
    return LocationPolicy(roots=[str(tmp_path / "daily")], protected=[str(tmp_path / "home")])


def test_the_data_location_is_resolved_and_confined(package: Path, roots, tmp_path) -> None:
    assert load_package(package, roots).spec.data_location == f"file://{tmp_path}/daily/credit-risk"
    edit_yaml(package, data_location=str(tmp_path / "daily" / "x" / ".." / "credit"))
    assert load_package(package, roots).spec.data_location == f"file://{tmp_path}/daily/credit"


@pytest.mark.parametrize(("location", "reason"), [
    ("webhdfs://127.0.0.1:9998/x", "the webhdfs:// protocol is not allowed"),
    ("file:///proc/self/environ", "outside the allowed locations"),
    ("/", "outside the allowed locations"),
    ("../../etc", "outside the allowed locations"),
    ("../home", "inside the installation's own files"),
    ("memory://x", "the memory:// protocol is not allowed"),
    ("https://user:hunter2@host.example/x", "credentials in the URL"),
    ("../daily/credit-risk?sig=abc", "query strings"),
])
def test_a_data_location_outside_the_roots_is_refused(package: Path, roots, location: str,
                                                      reason: str) -> None:
    if location == "../home":
        roots = LocationPolicy(roots=[str(package.parent)], protected=roots.protected)
    edit_yaml(package, data_location=location)
    with pytest.raises(UnsafeLocationError, match="^data_location: ") as info:
        load_package(package, roots)
    assert reason in str(info.value) and "data may only lie under" in str(info.value)
    assert "hunter2" not in str(info.value)


def test_training_data_at_a_url_must_lie_under_a_root(package: Path, roots, tmp_path) -> None:
    spec = yaml.safe_load((package / "model.yaml").read_text())
    spec.pop("artifact")
    spec["training"] = {"estimator": "logistic_regression", "seed": 1,
                        "data": "file:///proc/self/environ"}
    (package / "model.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(UnsafeLocationError, match="^training.data: file:///proc/self/environ"):
        load_package(package, roots)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_package_with_a_symbolic_link_is_refused(package: Path, roots, tmp_path,
                                                   kind: str) -> None:
    if kind == "file":
        (package / "data" / "extra.csv").symlink_to(tmp_path / "home" / "admin-token")
    else:
        (package / "data" / "more").symlink_to(tmp_path / "home", target_is_directory=True)
    with pytest.raises(InvalidPackageError, match="a symbolic link; a package holds only"):
        load_package(package, roots)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refused_submission_writes_nothing(package: Path, roots, registry, store, settings,
                                             tmp_path) -> None:
    (package / "notes.txt").symlink_to(tmp_path / "home" / "admin-token")
    with pytest.raises(InvalidPackageError, match="notes.txt: a symbolic link"):
        submit_package(package, registry, store, list(REVIEWED_TYPES), "ana", roots)
    (package / "notes.txt").unlink()
    edit_yaml(package, data_location="webhdfs://127.0.0.1:9998/x")
    with pytest.raises(UnsafeLocationError):
        submit_package(package, registry, store, list(REVIEWED_TYPES), "ana", roots)
    assert registry.list_models() == [] and registry.audit_events() == []
    assert not Path(settings.artifact_url()).exists()


@pytest.mark.parametrize(("section", "params", "message"), [
    ("training", {"n_estimators": 10**8}, "field 'training.params.n_estimators': 100000000 is "
                                          "out of bounds for random_forest: an integer from 1 "
                                          "to 1000"),
    ("training", {"n_estimators": "10**8"}, "'10**8' is out of bounds"),
    ("training", {"n_estimators": True}, "True is out of bounds"),
    ("training", {"max_depth": 10**6}, "field 'training.params.max_depth'"),
    ("training", {"max_features": float("nan")}, "nan is out of bounds"),
    ("training", {"min_samples_split": 1}, "an integer from 2 to 100000; or a fraction"),
    ("training", {"n_jobs": -1}, "'training.params.n_jobs': not a parameter accepted for "
                                 "random_forest"),
    ("training", {"criterion": "gini", "class_weight": {"a": 1}}, "class_weight"),
    ("lineage", {"n_estimators": 10**8}, "field 'lineage.parameters.n_estimators'"),
    ("lineage", {"learning_rate": 1e9}, "field 'lineage.parameters.learning_rate'"),
])
def test_estimator_parameters_out_of_bounds_are_refused(package: Path, roots, section: str,
                                                        params: dict, message: str) -> None:
    if section == "training":
        edit_yaml(package, artifact=None, lineage=None, training={
            "estimator": "random_forest", "params": params, "data": "data/train.csv",
            "seed": 1})
    else:
        edit_yaml(package, lineage={"estimator": "gradient_boosting", "parameters": params,
                                    "training_data": "data/train.csv", "seed": 7})
    with pytest.raises(InvalidPackageError, match="model.yaml") as info:
        load_package(package, roots)
    assert message in str(info.value)


def test_parameters_within_bounds_and_unknown_lineage_estimators_pass(package: Path,
                                                                      roots) -> None:
    edit_yaml(package, lineage={"estimator": "xgboost", "parameters": {"n_estimators": 10**8}})
    assert load_package(package, roots).spec.lineage.estimator == "xgboost"  # only described
    edit_yaml(package, artifact=None, lineage=None, training={
        "estimator": "random_forest", "data": "data/train.csv", "seed": 1,
        "params": {"n_estimators": 1000, "max_depth": None, "max_features": "sqrt",
                   "min_samples_leaf": 0.1, "class_weight": "balanced"}})
    assert load_package(package, roots).spec.training.params["n_estimators"] == 1000
    edit_yaml(package, training={"estimator": "ridge", "data": "data/train.csv", "seed": 1})
    with pytest.raises(InvalidPackageError, match="'training.estimator': 'ridge' unknown for "
                                                  "classification"):
        load_package(package, roots)
