"""model.yaml and package validation: each bad input names its field or file."""

from pathlib import Path

import pytest
import yaml

from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.packages import load_package


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
