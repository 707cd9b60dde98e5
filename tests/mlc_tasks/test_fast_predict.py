"""The lean predict path computes exactly what the model computes, or is not handed out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from mlc_tasks.errors import SchemaMismatchError
from mlc_tasks.fast_predict import FastPredictor, compile_predictor
from mlc_tasks.fast_proof import frame_of
from mlc_tasks.fast_steps import Boosted, LinearRegressor
from mlc_tasks.packages import parse_model_yaml, read_sample
from mlc_tasks.scoring import Column, frame_from_rows
from mlc_tasks.serialization import inspect_artifact, load_artifact
from mlc_tasks.settings import REVIEWED_TYPES

SCHEMA = [Column(name="income", dtype="float"), Column(name="debt_ratio", dtype="float"),
          Column(name="age", dtype="int"), Column(name="kids", dtype="int"),
          Column(name="region", dtype="str"), Column(name="owner", dtype="bool")]
NUMERIC, CATEGORICAL = ["income", "debt_ratio", "age", "kids"], ["region", "owner"]
REGIONS = ["north", "south", "east", "west"]
UNSEEN = ["mars", "", "North", "x" * 300]
ROWS = 1000


def training_frame(rows: int = 400, seed: int = 3) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Inputs, a binary label and a price, with the dtypes the runtime builds."""
    rng = np.random.default_rng(seed)
    columns = {"income": rng.normal(50_000, 15_000, rows), "debt_ratio": rng.uniform(0, 1, rows),
               "age": rng.integers(18, 80, rows), "kids": rng.integers(0, 5, rows),
               "region": np.array(REGIONS, dtype=object)[rng.integers(0, 4, rows)],
               "owner": rng.integers(0, 2, rows).astype(bool)}
    frame = frame_of(columns, SCHEMA)
    score = (frame.income / 20_000 - 3 * frame.debt_ratio + frame.kids * 0.3
             + (frame.region == "north") - frame.owner + rng.normal(0, 0.5, rows))
    price = frame.income * 3 + frame.kids * 1e4 + (frame.region == "west") * 5e4 + frame.age
    return frame, (score > 0).astype(int), price


def random_columns(rows: int, seed: int, unseen: bool = True) -> dict[str, np.ndarray]:
    """Rows wider than training: other magnitudes, negative numbers, unseen categories."""
    rng = np.random.default_rng(seed)
    regions = np.array(REGIONS + (UNSEEN if unseen else []), dtype=object)
    return {"income": rng.normal(50_000, 60_000, rows), "debt_ratio": rng.normal(0.5, 2, rows),
            "age": rng.integers(-5, 150, rows), "kids": rng.integers(0, 12, rows),
            "region": regions[rng.integers(0, len(regions), rows)],
            "owner": rng.integers(0, 2, rows).astype(bool)}


def features(numeric: Any = None, categorical: Any = None, **options: Any) -> ColumnTransformer:
    return ColumnTransformer(
        [("numeric", numeric or StandardScaler(), NUMERIC),
         ("categorical", categorical or OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)],
        **options)


def fitted(model: Any, label: str = "default") -> Any:
    frame, default, price = training_frame()
    return model.fit(frame, {"default": default, "price": price,
                             "grade": default.map({0: "low", 1: "high"}).where(
                                 frame.kids < 3, "mid")}[label])


def sample() -> pd.DataFrame:
    return training_frame(rows=3, seed=9)[0]


def assert_same(model: Any, predictor: FastPredictor, columns: dict[str, np.ndarray],
                schema: list[Column] = SCHEMA) -> None:
    expected = np.asarray(model.predict(frame_of(columns, schema)))
    found = predictor.predict(columns)
    assert found.dtype == expected.dtype
    assert np.array_equal(found, expected)


PIPELINES: dict[str, tuple[Callable[[], Any], str]] = {  # case: (model, label it learns)
    "scaler + one-hot + logistic regression": (lambda: Pipeline(
        [("features", features()), ("model", LogisticRegression(max_iter=500))]), "default"),
    "min-max (clipped) + one-hot drop first, dense + ridge": (lambda: Pipeline(
        [("features", features(MinMaxScaler(clip=True),
                               OneHotEncoder(drop="first", sparse_output=False,
                                             handle_unknown="ignore"))),
         ("model", Ridge())]), "price"),
    "imputers in nested pipelines + random forest": (lambda: Pipeline(
        [("features", ColumnTransformer(
            [("numeric", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())]),
              NUMERIC),
             ("text", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                                ("encode", OneHotEncoder(handle_unknown="ignore"))]),
              ["region"]),
             ("flag", OneHotEncoder(), ["owner"])])),
         ("model", RandomForestClassifier(n_estimators=20, random_state=0))]), "default"),
    "drop, passthrough remainder + gradient boosting regressor": (lambda: Pipeline(
        [("features", ColumnTransformer(
            [("scale", StandardScaler(), ["income", "debt_ratio"]), ("skip", "drop", ["age"]),
             ("encode", OneHotEncoder(handle_unknown="ignore"), ["region"])],
            remainder="passthrough")),
         ("model", GradientBoostingRegressor(n_estimators=30, random_state=0))]), "price"),
    "passthrough by name + scaler after the columns + linear regression": (lambda: Pipeline(
        [("features", ColumnTransformer(
            [("keep", "passthrough", ["income", "kids"]),
             ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
              ["region", "owner"])])),
         ("scale", StandardScaler()), ("model", LinearRegression())]), "price"),
    "sparse output + logistic regression": (lambda: Pipeline(
        [("features", features(StandardScaler(), OneHotEncoder(handle_unknown="ignore"),
                               sparse_threshold=1.0)),
         ("model", LogisticRegression(max_iter=500))]), "default"),
    "one-hot drop if binary + logistic regression": (lambda: Pipeline(
        [("features", features(categorical=OneHotEncoder(drop="if_binary",
                                                         handle_unknown="ignore"))),
         ("model", LogisticRegression(max_iter=500))]), "default"),
    "sparse output + lasso": (lambda: Pipeline(
        [("features", features(MinMaxScaler(), OneHotEncoder(handle_unknown="ignore"),
                               sparse_threshold=1.0)),
         ("model", Lasso(alpha=10.0))]), "price"),
    "columns by position + elastic net": (lambda: Pipeline(
        [("features", ColumnTransformer(
            [("scale", StandardScaler(), [0, 1, 2, 3]),
             ("encode", OneHotEncoder(handle_unknown="ignore"), [4])])),
         ("model", ElasticNet(alpha=0.5))]), "price"),
    "histogram gradient boosting, three classes": (lambda: Pipeline(
        [("features", features(sparse_threshold=0.0)),
         ("model", HistGradientBoostingClassifier(max_iter=20, random_state=0))]), "grade"),
    "logistic regression, three classes": (lambda: Pipeline(
        [("features", features()), ("model", LogisticRegression(max_iter=1000))]), "grade"),
    "one-hot error + gradient boosting classifier": (lambda: Pipeline(
        [("features", features(categorical=OneHotEncoder(handle_unknown="error"))),
         ("model", GradientBoostingClassifier(n_estimators=20, random_state=0))]), "default"),
    "scaler alone, the rest dropped + ridge": (lambda: Pipeline(
        [("features", ColumnTransformer([("scale", StandardScaler(), NUMERIC)])),
         ("model", Ridge())]), "price"),
    "gradient boosting, three classes": (lambda: Pipeline(
        [("features", features()),
         ("model", GradientBoostingClassifier(n_estimators=15, random_state=0))]), "grade"),
    "gradient boosting from its own init model": (lambda: Pipeline(
        [("features", features()),
         ("model", GradientBoostingRegressor(init=LinearRegression(), n_estimators=15,
                                             random_state=0))]), "price"),
    "extra trees regressor": (lambda: Pipeline(
        [("features", features()),
         ("model", ExtraTreesRegressor(n_estimators=10, random_state=0))]), "price"),
}


def built(case: str) -> Any:
    factory, label = PIPELINES[case]
    return fitted(factory(), label)


@pytest.mark.parametrize("case", list(PIPELINES))
def test_each_supported_pipeline_is_exact_on_1000_random_rows(case: str) -> None:
    model = built(case)
    predictor = compile_predictor(model, SCHEMA, sample())
    assert predictor is not None
    unseen = "error" not in case
    assert_same(model, predictor, random_columns(ROWS, seed=21, unseen=unseen))
    for row in range(5):  # one row a request, the common case
        assert_same(model, predictor, random_columns(1, seed=100 + row, unseen=unseen))


@pytest.mark.parametrize("model", [
    Pipeline([("scale", StandardScaler()), ("model", LinearRegression())]),
    Pipeline([("scale", MinMaxScaler()), ("model", DecisionTreeRegressor(random_state=0))]),
    LinearRegression(),
], ids=["scaler without column transformer", "min-max + tree", "bare estimator"])
def test_numeric_models_without_a_column_transformer(model: Any) -> None:
    schema = [c for c in SCHEMA if c.name in NUMERIC]
    frame, _, price = training_frame()
    model.fit(frame[NUMERIC], price)
    predictor = compile_predictor(model, schema, sample()[NUMERIC])
    assert predictor is not None
    columns = {k: v for k, v in random_columns(ROWS, seed=4).items() if k in NUMERIC}
    assert_same(model, predictor, columns, schema)


@pytest.fixture(scope="module")
def example_models(examples_dir: Path) -> dict[str, tuple[Any, list[Column], pd.DataFrame]]:
    """The example packages' artifacts, loaded as the runtime loads them."""
    found = {}
    for name in ("credit-risk", "house-prices"):
        spec = parse_model_yaml(examples_dir / name / "model.yaml")
        data = (examples_dir / name / "model.skops").read_bytes()
        types = inspect_artifact(data, name, list(REVIEWED_TYPES))
        model = load_artifact(data, name, types.needs_review, list(REVIEWED_TYPES))
        rows = read_sample(examples_dir / name / "sample.json")
        found[name] = (model, spec.input_schema, frame_from_rows(rows, spec.input_schema))
    return found


def example_columns(schema: list[Column], rows: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cities = np.array(["north", "south", "east", "west", "lyon", "paris", "lille", "nantes",
                       "atlantis", ""], dtype=object)
    makers = {"float": lambda: rng.normal(0, 1, rows) * 10.0 ** rng.integers(-1, 6, rows),
              "int": lambda: rng.integers(-10, 200, rows),
              "str": lambda: cities[rng.integers(0, len(cities), rows)]}
    return {c.name: makers[c.dtype]() for c in schema}


@pytest.mark.parametrize("name", ["credit-risk", "house-prices"])
def test_example_artifacts_compile_and_are_exact(
        name: str, example_models: dict[str, tuple[Any, list[Column], pd.DataFrame]]) -> None:
    model, schema, rows = example_models[name]
    predictor = compile_predictor(model, schema, rows)  # its time: fast_predict_bench.py
    assert predictor is not None
    # the lean steps, not the model's own predict (what makes them 10 to 40 times faster)
    assert type(predictor.estimator) is {"credit-risk": Boosted,
                                         "house-prices": LinearRegressor}[name]
    assert_same(model, predictor, example_columns(schema, ROWS, seed=5), schema)
    for seed in range(5):
        assert_same(model, predictor, example_columns(schema, 1, seed=seed), schema)


def test_unknown_category_is_ignored_or_refused_by_name() -> None:
    ignoring = built("scaler + one-hot + logistic regression")
    refusing = built("one-hot error + gradient boosting classifier")
    columns = random_columns(3, seed=1, unseen=False)
    columns["region"][1] = "atlantis"
    fast_ignoring = compile_predictor(ignoring, SCHEMA, sample())
    fast_refusing = compile_predictor(refusing, SCHEMA, sample())
    assert fast_ignoring is not None and fast_refusing is not None
    assert_same(ignoring, fast_ignoring, columns)
    with pytest.raises(ValueError, match="unknown categories"):
        refusing.predict(frame_of(columns, SCHEMA))
    with pytest.raises(SchemaMismatchError, match="column 'region': unknown category "
                                                  "'atlantis'; the model knows 'east'") as exc:
        fast_refusing.predict(columns)
    assert exc.value.column == "region"


def test_a_huge_unknown_value_gives_a_short_message() -> None:
    """A client's megabyte of text is not copied into the error (nor into logs)."""
    predictor = compile_predictor(
        built("one-hot error + gradient boosting classifier"), SCHEMA, sample())
    assert predictor is not None
    columns = random_columns(2, seed=1, unseen=False)
    columns["region"] = np.array(["y" * 1_000_000, "z" * 1_000_000], dtype=object)
    with pytest.raises(SchemaMismatchError) as exc:
        predictor.predict(columns)
    assert len(str(exc.value)) < 400 and "1000002 characters" in str(exc.value)


class HomeMadeScaler(StandardScaler):
    def transform(self, X, copy=None):  # noqa: N803 — scikit-learn's convention
        return super().transform(X, copy) * 2


@pytest.mark.parametrize("model, reason", [
    (Pipeline([("features", features()), ("model", KNeighborsRegressor())]),
     "KNeighborsRegressor is not an estimator it knows"),
    (Pipeline([("features", features(HomeMadeScaler())), ("model", Ridge())]),
     "HomeMadeScaler is not a step it computes"),
    (Pipeline([("features", features(FunctionTransformer(np.log1p))), ("model", Ridge())]),
     "FunctionTransformer with a function of its own"),
    (Pipeline([("features", features(categorical=OneHotEncoder(min_frequency=5))),
               ("model", Ridge())]), "infrequent categories"),
    (Pipeline([("features", features(categorical=OneHotEncoder(sparse_output=False))
                .set_output(transform="pandas")), ("model", Ridge())]), "outputs"),
], ids=["unknown estimator", "custom transformer", "function", "infrequent", "pandas output"])
def test_models_it_does_not_know_get_none(model: Any, reason: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    fitted(model, "price")
    with caplog.at_level(logging.INFO, logger="mlc_tasks.fast_predict"):
        assert compile_predictor(model, SCHEMA, sample()) is None
    assert reason in caplog.text


def test_a_method_replaced_on_the_object_gets_none(caplog: pytest.LogCaptureFixture) -> None:
    model = built("scaler + one-hot + logistic regression")
    scaler = model.named_steps["features"].named_transformers_["numeric"]
    scaler.transform = lambda X, copy=None: StandardScaler.transform(scaler, X) + 1.0  # noqa: N803
    with caplog.at_level(logging.INFO, logger="mlc_tasks.fast_predict"):
        assert compile_predictor(model, SCHEMA, sample()) is None
    assert "has its own ['transform']" in caplog.text


def test_a_tampered_artifact_the_fast_path_would_read_otherwise_gets_none(
        caplog: pytest.LogCaptureFixture) -> None:
    """Number categories out of order: scikit-learn's binary search then gives other codes
    than a lookup does. Nothing in the plan refuses it; the proof does. (Only the first two
    are swapped: with the largest not last, the search gives a code past the end, and
    scikit-learn writes out of bounds.)"""
    model = fitted(Pipeline([("features", ColumnTransformer(
        [("encode", OneHotEncoder(handle_unknown="ignore"), ["kids"]),
         ("scale", StandardScaler(), ["income"])])), ("model", Ridge(alpha=1e-6))]), "price")
    encoder = model.named_steps["features"].named_transformers_["encode"]
    swapped = encoder.categories_[0].copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    encoder.categories_ = [swapped]
    with caplog.at_level(logging.INFO, logger="mlc_tasks.fast_predict"):
        assert compile_predictor(model, SCHEMA, sample()) is None
    assert "predictions differ" in caplog.text


def test_a_model_that_fails_on_probe_rows_gets_none(caplog: pytest.LogCaptureFixture) -> None:
    model = built("one-hot error + gradient boosting classifier")
    odd = sample()
    odd.loc[0, "region"] = "atlantis"  # a sample row the model itself refuses
    with caplog.at_level(logging.INFO, logger="mlc_tasks.fast_predict"):
        assert compile_predictor(model, SCHEMA, odd) is None
    assert "the model itself fails" in caplog.text


@pytest.mark.parametrize("change, message", [
    (lambda c: c.pop("age"), "column 'age' is missing"),
    (lambda c: c.update(age=c["age"].astype(np.float64)), "column 'age': expected a 1-D int64"),
    (lambda c: c.update(kids=c["kids"][:1]), "column 'kids' has 1 values"),
    (lambda c: c["income"].__setitem__(0, np.nan), "column 'income' has empty values"),
    (lambda c: c.update(region=list(c["region"])), "column 'region': expected a 1-D object"),
])
def test_columns_that_do_not_fit_the_proof_are_refused(change: Callable[[dict], Any],
                                                       message: str) -> None:
    predictor = compile_predictor(
        built("scaler + one-hot + logistic regression"), SCHEMA, sample())
    assert predictor is not None
    columns = random_columns(3, seed=2)
    change(columns)
    with pytest.raises(SchemaMismatchError, match=message):
        predictor.predict(columns)


def test_predict_leaves_its_input_columns_alone() -> None:
    model = built("passthrough by name + scaler after the columns + linear regression")
    predictor = compile_predictor(model, SCHEMA, sample())
    assert predictor is not None
    columns = random_columns(20, seed=8)
    before = {name: values.copy() for name, values in columns.items()}
    predictor.predict(columns)
    assert all(np.array_equal(columns[name], before[name]) for name in columns)


def test_a_model_with_many_categories_is_proven_on_a_bounded_number_of_rows(
        caplog: pytest.LogCaptureFixture) -> None:
    """20,000 known cities: the probes take a few hundred of them, not a row each (a dense
    one-hot of every city for every one would be 3 GB)."""
    frame, _, price = training_frame(rows=20_000)
    frame["region"] = [f"city-{i}" for i in range(len(frame))]
    model = Pipeline([("features", features()), ("model", Ridge())]).fit(frame, price)
    with caplog.at_level(logging.INFO, logger="mlc_tasks.fast_predict"):
        predictor = compile_predictor(model, SCHEMA, sample())
    assert predictor is not None
    rows = int(caplog.text.rsplit("equal to the model on ", 1)[1].split()[0])
    assert rows < 600
    assert_same(model, predictor, random_columns(ROWS, seed=6))
