"""MLflow model folders (real ones, made by MLflow 3.17.2: tests/data/mlflow/README.md) become
packages; pickles, escapes, links, oversized files and types we cannot serve are refused."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import skops.io as sio
import yaml
from sklearn.pipeline import Pipeline

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import InvalidInputError, InvalidPackageError, UnsafeArtifactError
from mlc_tasks.mlflow_import import (
    fields_like,
    import_mlflow,
    package_spec,
    requirements,
    write_package,
)
from mlc_tasks.mlflow_models import MAX_COLUMNS, read_mlflow_model
from mlc_tasks.packages import ModelType, load_package
from mlc_tasks.registry import Registry
from mlc_tasks.scoring import Column, frame_from_rows
from mlc_tasks.serialization import inspect_artifact, load_artifact
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from tests.mlc_tasks.custom_estimator import HomeMadeEstimator

DATA = Path(__file__).parents[1] / "data" / "mlflow"
GIVEN = {"name": "credit-risk", "owner": "ana.lopez@bank.example", "risk_tier": "high",
         "label": "default"}
SCHEMA = [Column(name="income", dtype="float"), Column(name="debt_ratio", dtype="float"),
          Column(name="age", dtype="int"), Column(name="employment_years", dtype="int"),
          Column(name="region", dtype="str")]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A private copy of the real skops-format MLflow folder, for a test to change."""
    return Path(shutil.copytree(DATA / "credit-risk-skops", tmp_path / "mlflow-model"))


def mlmodel(folder: Path) -> dict[str, Any]:
    return yaml.safe_load((folder / "MLmodel").read_text())


def rewrite(folder: Path, **changes: Any) -> None:
    """The MLmodel with top-level fields replaced (None: removed)."""
    raw = mlmodel(folder)
    for key, value in changes.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    (folder / "MLmodel").write_text(yaml.safe_dump(raw))


def set_flavor(folder: Path, flavor: str, **values: Any) -> None:
    raw = mlmodel(folder)
    raw["flavors"][flavor].update(values)
    (folder / "MLmodel").write_text(yaml.safe_dump(raw))


def set_inputs(folder: Path, specs: list[dict[str, Any]]) -> None:
    raw = mlmodel(folder)
    raw["signature"]["inputs"] = json.dumps(specs)
    (folder / "MLmodel").write_text(yaml.safe_dump(raw))


def refused(folder: Path, match: str, tmp_path: Path) -> None:
    target = tmp_path / "package"
    with pytest.raises(InvalidInputError, match=match):
        import_mlflow(folder, GIVEN, target)
    assert not target.exists()
    assert not list(tmp_path.glob(".mlflow-import-*"))


def test_real_skops_folder_becomes_a_servable_package(tmp_path: Path) -> None:
    source = DATA / "credit-risk-skops"
    done = import_mlflow(source, GIVEN, tmp_path / "package")
    package = load_package(done.folder)
    assert package.spec.input_schema == SCHEMA
    assert package.spec.type == ModelType.CLASSIFICATION  # int64 predictions
    assert package.spec.requirements == {"sklearn": ">=1.9.1,<1.10"}
    assert package.sample_rows[1] == {"income": 60377.4, "debt_ratio": 0.254, "age": 33,
                                      "employment_years": 3, "region": "north"}
    data = package.artifact_path.read_bytes()
    assert data == (source / "model.skops").read_bytes()
    assert done.artifact_sha256 == hashlib.sha256(data).hexdigest()
    assert (done.folder / "mlflow" / "MLmodel").read_bytes() == (source / "MLmodel").read_bytes()
    assert done.model.source.run_id == "3c1a1d9772aa4a909e2cbd7467a31def"
    assert done.model.source.model_id == "m-bd78843988f3406b8183f5bf7d18ce0b"
    assert (done.model.source.mlflow_version, done.model.source.sklearn_version) == (
        "3.17.2", "1.9.1")
    types = inspect_artifact(data, "model.skops", list(REVIEWED_TYPES))
    model = load_artifact(data, "model.skops", types.needs_review, list(REVIEWED_TYPES))
    assert isinstance(model, Pipeline)
    assert len(model.predict(frame_from_rows(package.sample_rows, SCHEMA))) == 3


def test_imported_package_is_registered_like_any_other(tmp_path: Path, registry: Registry,
                                                       store: ArtifactStore) -> None:
    done = import_mlflow(DATA / "credit-risk-skops", GIVEN, tmp_path / "package")
    version, created = submit_package(done.folder, registry, store, list(REVIEWED_TYPES), "ana")
    assert created and version.artifact_sha256 == done.artifact_sha256
    assert version.sample_rows == load_package(done.folder).sample_rows


@pytest.mark.parametrize("name", ["credit-risk-pickle", "credit-risk-cloudpickle"])
def test_pickled_mlflow_models_are_refused_with_how_to_relog(name: str, tmp_path: Path) -> None:
    fmt = name.removeprefix("credit-risk-")
    with pytest.raises(UnsafeArtifactError) as caught:
        import_mlflow(DATA / name, GIVEN, tmp_path / "package")
    message = str(caught.value)
    assert f"serialization_format '{fmt}'" in message and "is refused" in message
    assert f"mlflow.sklearn.load_model('{(DATA / name).absolute()}')" in message
    assert "mlflow.sklearn.log_model(model, name='model', serialization_format='skops'" in message
    assert "input_example=X.head(3)" in message
    assert not (tmp_path / "package").exists()


def test_mlmodel_without_serialization_format_is_a_pickle(tmp_path: Path) -> None:
    folder = Path(shutil.copytree(DATA / "credit-risk-pickle", tmp_path / "old"))
    raw = mlmodel(folder)
    del raw["flavors"]["sklearn"]["serialization_format"]  # as MLflow before 3.9 wrote it
    (folder / "MLmodel").write_text(yaml.safe_dump(raw))
    refused(folder, r"no serialization_format \(MLflow before 3.9: a pickle\)", tmp_path)


def test_pickle_disguised_as_skops_is_refused_by_its_bytes(folder: Path, tmp_path: Path
                                                           ) -> None:
    shutil.copy(DATA / "credit-risk-pickle" / "model.pkl", folder / "model.skops")
    refused(folder, "model.skops: a pickle, although the MLmodel says skops", tmp_path)


def test_a_file_that_is_neither_is_not_a_skops_file(folder: Path, tmp_path: Path) -> None:
    (folder / "model.skops").write_bytes(b"PK\x03\x04 but no zip")
    refused(folder, "not a skops file", tmp_path)


def test_skops_file_named_model_pkl_as_mlflow_3_9_wrote_it(folder: Path, tmp_path: Path) -> None:
    (folder / "model.skops").rename(folder / "model.pkl")
    set_flavor(folder, "sklearn", pickled_model="model.pkl")
    set_flavor(folder, "python_function", model_path="model.pkl")
    done = import_mlflow(folder, GIVEN, tmp_path / "package")
    assert done.spec.artifact == "model.skops" and (done.folder / "model.skops").is_file()


@pytest.mark.parametrize(("flavor", "key", "path"), [
    ("sklearn", "pickled_model", "../../etc/passwd"),
    ("python_function", "model_path", "../../etc/passwd"),
    ("sklearn", "pickled_model", "/etc/passwd"),
    ("sklearn", "pickled_model", "sub/../../model.skops"),
    ("sklearn", "pickled_model", "C:\\model.skops"),
])
def test_model_path_must_stay_in_the_folder(folder: Path, tmp_path: Path, flavor: str,
                                            key: str, path: str) -> None:
    set_flavor(folder, flavor, **{key: path})
    refused(folder, f"flavors.{flavor}.{key} .* must stay inside the model folder", tmp_path)


def test_flavors_naming_two_files_are_refused(folder: Path, tmp_path: Path) -> None:
    shutil.copy(folder / "model.skops", folder / "other.skops")
    set_flavor(folder, "python_function", model_path="other.skops")
    refused(folder, "name different model files", tmp_path)


def test_example_path_must_stay_in_the_folder(folder: Path, tmp_path: Path) -> None:
    rewrite(folder, saved_input_example_info={"artifact_path": "../../etc/passwd",
                                              "type": "dataframe", "pandas_orient": "split"})
    refused(folder, "saved_input_example_info.artifact_path .* must stay inside", tmp_path)


def test_symlinked_artifact_out_of_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.skops"
    (folder / "model.skops").rename(outside)
    (folder / "model.skops").symlink_to(outside)
    refused(folder, "leads out of the model folder", tmp_path)


def test_symlinked_artifact_inside_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    (folder / "model.skops").rename(folder / "real.skops")
    (folder / "model.skops").symlink_to(folder / "real.skops")
    refused(folder, "model.skops: not read as a file of its own", tmp_path)


def test_symlinked_folder_out_of_the_model_folder_is_refused(folder: Path, tmp_path: Path
                                                             ) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (folder / "model.skops").rename(outside / "model.skops")
    (folder / "sub").symlink_to(outside)
    set_flavor(folder, "sklearn", pickled_model="sub/model.skops")
    set_flavor(folder, "python_function", model_path="sub/model.skops")
    refused(folder, "leads out of the model folder", tmp_path)


def test_symlinked_mlmodel_is_refused(folder: Path, tmp_path: Path) -> None:
    (folder / "MLmodel").rename(tmp_path / "MLmodel")
    (folder / "MLmodel").symlink_to(tmp_path / "MLmodel")
    refused(folder, "a symbolic link", tmp_path)


def test_a_fifo_is_refused_without_waiting_for_a_writer(folder: Path, tmp_path: Path) -> None:
    (folder / "input_example.json").unlink()
    os.mkfifo(folder / "input_example.json")
    refused(folder, "input_example.json: not a regular file", tmp_path)
    (folder / "MLmodel").unlink()
    (folder / "MLmodel").mkdir()
    refused(folder, "MLmodel: not a regular file", tmp_path)


def test_huge_mlmodel_is_refused_before_it_is_parsed(folder: Path, tmp_path: Path) -> None:
    with (folder / "MLmodel").open("a") as file:
        file.write("# padding\n" * 200_000)  # 2 MB
    refused(folder, "MLmodel: more than 1024 KiB", tmp_path)


def test_signature_of_a_hundred_thousand_columns_is_refused(folder: Path, tmp_path: Path
                                                            ) -> None:
    set_inputs(folder, [{"type": "double", "name": f"c{i}"} for i in range(100_000)])
    refused(folder, "MLmodel: more than 1024 KiB", tmp_path)
    set_inputs(folder, [{"type": "double", "name": f"c{i}"} for i in range(MAX_COLUMNS + 1)])
    refused(folder, f"signature.inputs has {MAX_COLUMNS + 1} columns; at most {MAX_COLUMNS}",
            tmp_path)


def test_mlmodel_that_is_not_yaml_or_not_safe_yaml(folder: Path, tmp_path: Path) -> None:
    (folder / "MLmodel").write_text("flavors: !!python/object/apply:os.system ['true']\n")
    refused(folder, "not valid YAML", tmp_path)
    (folder / "MLmodel").write_text("[" * 100_000)
    refused(folder, "not valid YAML", tmp_path)


@pytest.mark.parametrize(("spec", "match"), [
    ({"type": "binary", "name": "photo"}, "column 'photo' has type 'binary'"),
    ({"type": "datetime", "name": "opened"}, "column 'opened' has type 'datetime'"),
    ({"type": "array", "items": {"type": "double"}, "name": "history"},
     "column 'history' has type 'array'"),
    ({"type": "object", "properties": {}, "name": "address"}, "column 'address' has type"),
    ({"type": "map", "values": {"type": "string"}, "name": "extra"}, "column 'extra' has type"),
    ({"type": "any", "name": "whatever"}, "column 'whatever' has type 'any'"),
    ({"type": "sparkml_vector", "name": "features"}, "column 'features' has type"),
    ({"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 5]}},
     "a tensor signature"),
    ({"type": "double"}, "needs a name"),
    ({"type": "double", "name": "x" * 300}, "needs a name of 1 to 256"),
    ("double", "not a column spec"),
])
def test_signature_types_we_cannot_serve_name_the_column(folder: Path, tmp_path: Path,
                                                         spec: Any, match: str) -> None:
    set_inputs(folder, [{"type": "double", "name": "income"}, spec])
    refused(folder, match, tmp_path)


def test_signature_that_names_a_column_twice(folder: Path, tmp_path: Path) -> None:
    set_inputs(folder, [{"type": "double", "name": "income"}, {"type": "long", "name": "income"}])
    refused(folder, "names column 'income' twice", tmp_path)


def test_signature_types_map_to_ours_and_optional_becomes_nullable(folder: Path) -> None:
    set_inputs(folder, [{"type": "float", "name": "income"},
                        {"type": "double", "name": "debt_ratio", "required": False},
                        {"type": "integer", "name": "age"},
                        {"type": "long", "name": "employment_years"},
                        {"type": "string", "name": "region"},
                        {"type": "boolean", "name": "homeowner", "required": False}])
    schema = read_mlflow_model(folder).input_schema
    assert [(c.name, c.dtype, c.nullable) for c in schema] == [
        ("income", "float", False), ("debt_ratio", "float", True), ("age", "int", False),
        ("employment_years", "int", False), ("region", "str", False),
        ("homeowner", "bool", True)]


def test_missing_signature_input_example_or_mlmodel(folder: Path, tmp_path: Path) -> None:
    rewrite(folder, saved_input_example_info=None)
    refused(folder, r"no input example; log the model with input_example=X.head\(3\)", tmp_path)
    rewrite(folder, signature=None)
    refused(folder, "no input signature; log the model with signature=", tmp_path)
    (folder / "MLmodel").unlink()
    refused(folder, "no MLmodel file", tmp_path)
    refused(folder / "missing", "not a folder", tmp_path)


def test_a_model_of_another_flavor_is_refused(folder: Path, tmp_path: Path) -> None:
    raw = mlmodel(folder)
    raw["flavors"] = {"python_function": raw["flavors"]["python_function"],
                      "xgboost": {"xgb_version": "2.1.0"}}
    (folder / "MLmodel").write_text(yaml.safe_dump(raw))
    refused(folder, r"not a scikit-learn model \(flavors: python_function, xgboost\)", tmp_path)


def test_input_example_that_does_not_fit_the_signature_names_the_column(
        folder: Path, tmp_path: Path) -> None:
    example = json.loads((folder / "input_example.json").read_text())
    example["data"][0][4] = 3
    (folder / "input_example.json").write_text(json.dumps(example))
    refused(folder, "input_example.json: .*column 'region' expects str, got 3", tmp_path)
    del example["columns"][4]
    (folder / "input_example.json").write_text(json.dumps(example))
    refused(folder, "input_example.json: .*one value per column", tmp_path)


@pytest.mark.parametrize(("info", "body"), [
    ({"type": "dataframe", "pandas_orient": "values"}, {"data": [[1.0, 0.2, 30, 2, "east"]]}),
    ({"type": "json_object"}, [{"income": 1.0, "debt_ratio": 0.2, "age": 30,
                                "employment_years": 2, "region": "east"}]),
    ({"type": "json_object"}, {"income": [1.0], "debt_ratio": [0.2], "age": [30],
                               "employment_years": [2], "region": ["east"]}),
    ({"type": "dataframe", "pandas_orient": "split", "params": "true"},
     {"inputs": {"columns": ["income", "debt_ratio", "age", "employment_years", "region"],
                 "data": [[1.0, 0.2, 30, 2, "east"]]}, "params": {"threshold": 0.5}}),
])
def test_each_input_example_layout_mlflow_writes(folder: Path, info: dict[str, Any],
                                                 body: Any) -> None:
    (folder / "input_example.json").write_text(json.dumps(body))
    rewrite(folder, saved_input_example_info={"artifact_path": "input_example.json", **info})
    assert read_mlflow_model(folder).sample_rows == [
        {"income": 1.0, "debt_ratio": 0.2, "age": 30, "employment_years": 2, "region": "east"}]


def test_an_array_example_is_not_a_table(folder: Path, tmp_path: Path) -> None:
    rewrite(folder, saved_input_example_info={"artifact_path": "input_example.json",
                                              "type": "ndarray"})
    refused(folder, "an example of type 'ndarray' is not a table of named columns", tmp_path)


@pytest.mark.parametrize(("flavor_values", "outputs", "expected"), [
    ({}, [{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}],
     ModelType.CLASSIFICATION),
    ({}, [{"type": "string"}], ModelType.CLASSIFICATION),
    ({}, [{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1]}}], None),
    ({}, [{"type": "double"}], None),
    ({"predict_fn": "predict_proba"}, [{"type": "double"}], ModelType.CLASSIFICATION),
])
def test_type_is_inferred_only_when_the_mlmodel_shows_it(
        folder: Path, flavor_values: dict[str, str], outputs: list[dict[str, Any]],
        expected: ModelType | None) -> None:
    set_flavor(folder, "python_function", **flavor_values)
    rewrite(folder, signature={**mlmodel(folder)["signature"], "outputs": json.dumps(outputs)})
    model = read_mlflow_model(folder)
    assert model.inferred_type == expected
    if expected is None:
        with pytest.raises(InvalidPackageError, match="does not record type; give --type"):
            package_spec(model, GIVEN)
        assert package_spec(model, {**GIVEN, "type": "regression"}).metrics == [
            "mae", "r2", "rmse"]


def test_what_mlflow_does_not_record_must_be_given() -> None:
    model = read_mlflow_model(DATA / "credit-risk-skops")
    with pytest.raises(InvalidPackageError, match=r"does not record name, owner, risk_tier, "
                       r"label; give --name, --owner, --risk-tier, --label \(or --like"):
        package_spec(model, {})
    with pytest.raises(InvalidPackageError, match="field 'risk_tier'"):
        package_spec(model, {**GIVEN, "risk_tier": "extreme"})
    spec = package_spec(model, {**GIVEN, "input_schema": [{"name": "x", "dtype": "str"}],
                                "artifact": "../../etc/passwd", "type": "classification"})
    assert spec.input_schema == SCHEMA and spec.artifact == "model.skops"


def test_registered_name_is_the_default_name(folder: Path) -> None:
    (folder / "registered_model_meta").write_text("model_name: credit-risk\nmodel_version: 3\n")
    given = {k: v for k, v in GIVEN.items() if k != "name"}
    assert package_spec(read_mlflow_model(folder), given).name == "credit-risk"
    (folder / "registered_model_meta").write_text("model_name: Credit Risk!\n")
    assert read_mlflow_model(folder).registered_name is None


@pytest.mark.parametrize(("version", "expected"), [
    ("1.9.1", {"sklearn": ">=1.9.1,<1.10"}), ("1.10.0", {"sklearn": ">=1.10.0,<1.11"}),
    (None, {}), ("nightly", {}),
])
def test_requirements_pin_the_minor_release(version: str | None, expected: dict[str, str]
                                            ) -> None:
    from mlc_tasks.mlflow_models import MlflowSource

    source = MlflowSource(sklearn_version=version, serialization_format="skops")
    assert requirements(source) == expected


def test_like_takes_another_packages_fields_and_files(examples_dir: Path, tmp_path: Path
                                                      ) -> None:
    like = fields_like(examples_dir / "credit-risk" / "model.yaml")
    assert not {"artifact", "input_schema", "lineage", "sample"} & set(like.fields)
    assert like.fields["data_location"] == str(examples_dir / "daily" / "credit-risk")
    assert set(like.files) == {"data/test.csv", "metrics.py"}
    done = import_mlflow(DATA / "credit-risk-skops", like.fields, tmp_path / "package",
                         like.files)
    package = load_package(done.folder)
    assert (package.spec.owner, package.spec.label, package.spec.test_data) == (
        "ana.lopez@bank.example", "default", "data/test.csv")
    assert package.spec.requirements["sklearn"] == ">=1.9,<2"  # the like file's word
    assert (done.folder / "data" / "test.csv").read_bytes() == (
        examples_dir / "credit-risk" / "data" / "test.csv").read_bytes()


def test_like_files_must_stay_in_their_folder(tmp_path: Path) -> None:
    (tmp_path / "like").mkdir()
    like = tmp_path / "like" / "model.yaml"
    like.write_text("owner: ana\ntest_data: ../../etc/passwd\n")
    with pytest.raises(InvalidPackageError, match="test_data '../../etc/passwd' must stay"):
        fields_like(like)
    like.write_text("owner: ana\nmetrics_function: /etc/passwd.py:f\n")
    with pytest.raises(InvalidPackageError, match="metrics_function '/etc/passwd.py' must stay"):
        fields_like(like)


@pytest.mark.parametrize("name", ["model.skops", "model.yaml", "sample.json", "mlflow/MLmodel"])
def test_like_files_cannot_replace_the_packages_own(tmp_path: Path, name: str) -> None:
    (tmp_path / "like" / "mlflow").mkdir(parents=True)
    (tmp_path / "like" / name).write_text("a,b\n1,2\n")
    like = tmp_path / "like" / "model.yaml"
    like.write_text(f"owner: ana\ntest_data: {name}\n")
    found = fields_like(like)
    with pytest.raises(InvalidPackageError, match=f"would be the package's own {name}"):
        import_mlflow(DATA / "credit-risk-skops", {**GIVEN, **found.fields},
                      tmp_path / "package", found.files)
    assert not (tmp_path / "package").exists()


def test_target_that_exists_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "package"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(InvalidPackageError, match="already exists"):
        import_mlflow(DATA / "credit-risk-skops", GIVEN, target)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_a_late_failure_leaves_nothing_behind(tmp_path: Path) -> None:
    model = read_mlflow_model(DATA / "credit-risk-skops")
    spec = package_spec(model, GIVEN)
    (tmp_path / "secret").write_text("token")
    (tmp_path / "link.csv").symlink_to(tmp_path / "secret")
    with pytest.raises(InvalidPackageError, match="link.csv: not read as a file of its own"):
        write_package(model, spec, tmp_path / "out" / "package",
                      {"data/test.csv": tmp_path / "link.csv"})
    assert list((tmp_path / "out").iterdir()) == []


def test_untrusted_skops_types_are_left_to_the_installations_scan(
        folder: Path, tmp_path: Path, registry: Registry, store: ArtifactStore) -> None:
    """The MLmodel's own skops_trusted_types counts for nothing: the artifact is copied as is
    and submission refuses the types nobody here reviewed."""
    sio.dump(Pipeline([("model", HomeMadeEstimator())]), folder / "model.skops")
    name = "tests.mlc_tasks.custom_estimator.HomeMadeEstimator"
    set_flavor(folder, "sklearn", skops_trusted_types=[name])
    done = import_mlflow(folder, GIVEN, tmp_path / "package")
    assert "skops_trusted_types" not in (done.folder / "model.yaml").read_text()
    with pytest.raises(UnsafeArtifactError, match=f"types not reviewed: {name}"):
        submit_package(done.folder, registry, store, list(REVIEWED_TYPES), "ana")
    assert registry.list_models() == []
