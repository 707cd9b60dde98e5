"""A crafted artifact whose arrays scikit-learn's compiled code would follow out of bounds is
refused by load_artifact, naming the artifact, the place and the problem; every model our own
training builds, and the usual scikit-learn models, still load."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    BaggingClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    IsolationForest,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import SVC, SVR, OneClassSVM
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.tree._tree import Tree

from mlc_tasks.artifact_checks import MAX_OBJECTS, check_loaded
from mlc_tasks.errors import UnsafeArtifactError
from mlc_tasks.packages import ModelType, TrainingSpec
from mlc_tasks.scoring_input import Column
from mlc_tasks.serialization import inspect_artifact, load_artifact
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.training import ESTIMATORS, build_pipeline

TREE = "sklearn.tree._tree.Tree"
CSR = "scipy.sparse._csr.csr_matrix"
DTYPE = "numpy.dtype"  # KBinsDiscretizer's one-hot encoder holds one: skops asks for a review
SCHEMA = [Column(name="income", dtype="float"), Column(name="kids", dtype="int"),
          Column(name="region", dtype="str"), Column(name="owner", dtype="bool")]
NAMES = [c.name for c in SCHEMA]


def training_frame(rows: int = 150, seed: int = 0) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, rows), "kids": rng.integers(0, 5, rows),
        "region": np.array(["north", "south", "east"], dtype=object)[rng.integers(0, 3, rows)],
        "owner": rng.integers(0, 2, rows).astype(bool)})
    score = frame.income / 15 - frame.kids + (frame.region == "north") + rng.normal(0, 1, rows)
    labels = {"binary": (score > score.median()).astype(int),
              "three": pd.cut(score, 3, labels=["low", "mid", "high"]).astype(str),
              "price": frame.income * 3 + frame.kids * 10}
    return frame, labels


def as_loaded(model: Any, name: str = "crafted.skops", reviewed: tuple[str, ...] = (TREE,)
              ) -> Any:
    """Dump with skops, then load as the test job and the runtimes do."""
    return load_bytes(sio.dumps(model), name, reviewed)


def load_bytes(data: bytes, name: str = "crafted.skops", reviewed: tuple[str, ...] = (TREE,)
               ) -> Any:
    types = inspect_artifact(data, name, list(reviewed))
    return load_artifact(data, name, types.needs_review, list(reviewed))


def refusal(model: Any, reviewed: tuple[str, ...] = (TREE,)) -> str:
    with pytest.raises(UnsafeArtifactError) as info:
        as_loaded(model, reviewed=reviewed)
    return str(info.value)


def rebuilt(tree: Tree, nodes: np.ndarray | None = None, values: np.ndarray | None = None,
            max_depth: int | None = None, n_features: int | None = None,
            n_classes: list[int] | None = None) -> Tree:
    """A Tree with another state, set the way skops sets it (constructor, then __setstate__)."""
    state = tree.__getstate__()
    classes = np.asarray(tree.n_classes if n_classes is None else n_classes, dtype=np.intp)
    new = Tree(tree.n_features if n_features is None else n_features, classes, tree.n_outputs)
    nodes = state["nodes"].copy() if nodes is None else nodes
    new.__setstate__({"max_depth": tree.max_depth if max_depth is None else max_depth,
                      "node_count": len(nodes), "nodes": nodes,
                      "values": state["values"].copy() if values is None else values})
    return new


@pytest.fixture(scope="module")
def boosted() -> Pipeline:
    """What our training builds for gradient boosting, 6 stages of depth 3."""
    spec = TrainingSpec(estimator="gradient_boosting", params={"n_estimators": 6}, data="d.csv",
                        seed=1)
    frame, labels = training_frame()
    return build_pipeline(ModelType.CLASSIFICATION, spec, SCHEMA).fit(frame, labels["binary"])


def edited_stage(model: Pipeline, edit: Callable[[Tree], Tree]) -> Pipeline:
    crafted = copy.deepcopy(model)
    member = crafted.named_steps["model"].estimators_[3, 0]
    member.tree_ = edit(member.tree_)
    return crafted


def with_nodes(change: Callable[[np.ndarray], None]) -> Callable[[Tree], Tree]:
    def edit(tree: Tree) -> Tree:
        nodes = tree.__getstate__()["nodes"].copy()
        change(nodes)
        return rebuilt(tree, nodes=nodes)
    return edit


def set_field(field: str, node: Callable[[np.ndarray], int], value: Any
              ) -> Callable[[np.ndarray], None]:
    def change(nodes: np.ndarray) -> None:
        nodes[field][node(nodes)] = value
    return change


def root(nodes: np.ndarray) -> int:
    return 0


def second(nodes: np.ndarray) -> int:
    """The root's left child, itself split (the trees here have depth 3)."""
    return int(nodes["left_child"][0])


def a_leaf(nodes: np.ndarray) -> int:
    return int(np.flatnonzero(nodes["left_child"] == -1)[0])


def twice(nodes: np.ndarray) -> None:
    nodes["right_child"][0] = nodes["left_child"][0]


TREE_ATTACKS: dict[str, tuple[Callable[[Tree], Tree], str]] = {
    "child out of range": (with_nodes(set_field("left_child", root, 900)),
                           "node 0's left child 900 is outside 1..14"),
    "child pointing back at the root (a cycle)": (with_nodes(set_field("right_child", second, 0)),
                                                  "right child 0 is outside"),
    "child pointing at itself": (with_nodes(set_field("left_child", second, 1)),
                                 "node 1's left child 1 is outside 2..14"),
    "negative child": (with_nodes(set_field("right_child", root, -7)), "right child -7"),
    "a leaf with one child": (with_nodes(set_field("right_child", a_leaf, 5)),
                              "a leaf has -1 on both sides"),
    "one node reached twice": (with_nodes(twice), "node 1 has 2 parents"),
    "feature out of range": (with_nodes(set_field("feature", root, 40)),
                             "node 0 splits on feature 40, outside 0..6"),
    "negative feature": (with_nodes(set_field("feature", second, -1)), "feature -1"),
    "NaN threshold": (with_nodes(set_field("threshold", root, np.nan)), "threshold is nan"),
    "max_depth below the real depth (decision_path's buffer)": (
        lambda tree: rebuilt(tree, max_depth=1), "max_depth 1 is not between its real depth 3"),
    "no nodes at all": (lambda tree: rebuilt(
        tree, nodes=tree.__getstate__()["nodes"][:0].copy(),
        values=tree.__getstate__()["values"][:0].copy(), max_depth=0), "claims 0 nodes"),
    "a tree wider than the ensemble's input": (
        lambda tree: rebuilt(tree, n_features=50), "reads 50 features, the ensemble is given 7"),
}


@pytest.mark.parametrize("attack", list(TREE_ATTACKS))
def test_a_crafted_tree_in_an_ensemble_is_refused_by_name(boosted: Pipeline, attack: str
                                                          ) -> None:
    edit, problem = TREE_ATTACKS[attack]
    message = refusal(edited_stage(boosted, edit))
    assert message.startswith("crafted.skops: model.steps['model']")
    assert "estimators_[3,0]" in message and problem in message


def test_boosting_stages_wider_than_the_raw_scores_are_refused(boosted: Pipeline) -> None:
    """predict_stages writes out[i, k] for every column of estimators_; the raw scores have one
    column for two classes."""
    crafted = copy.deepcopy(boosted)
    gb = crafted.named_steps["model"]
    gb.estimators_ = np.hstack([gb.estimators_, gb.estimators_])
    assert "estimators_ is not 6 stages of 1 trees" in refusal(crafted)


def test_a_boosting_init_whose_width_is_unknown_is_refused(boosted: Pipeline) -> None:
    crafted = copy.deepcopy(boosted)
    crafted.named_steps["model"].init_ = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    assert "init_ LogisticRegression does not give one prior per class" in refusal(crafted)


def test_a_dummy_prior_narrower_than_the_classes_is_refused() -> None:
    frame, labels = training_frame()
    gb = GradientBoostingClassifier(n_estimators=3).fit(frame[["income", "kids"]],
                                                        labels["three"])
    gb.init_.class_prior_ = gb.init_.class_prior_[:2]
    assert "model: init_ DummyClassifier does not give one prior per class of 3" in refusal(gb)


def test_a_tree_with_other_classes_than_its_classifier_is_refused() -> None:
    frame, labels = training_frame()
    clf = DecisionTreeClassifier(max_depth=2).fit(frame[["income"]], labels["binary"])
    values = clf.tree_.__getstate__()["values"]
    wider = np.ascontiguousarray(np.concatenate([values, values[:, :, :1]], axis=2))
    clf.tree_ = rebuilt(clf.tree_, values=wider, n_classes=[3])
    assert "its tree has classes [3], the estimator n_classes_ [2]" in refusal(clf)


def rewritten(data: bytes, change: Callable[[str, np.ndarray], np.ndarray | None]) -> bytes:
    """The skops file with the arrays of its first Tree's state replaced by `change`."""
    source = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(source.read("schema.json"))
    state = _first_tree(schema)["content"]["content"]
    files = {key: state[key]["file"] for key in ("nodes", "values")}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for member in source.namelist():
            payload = source.read(member)
            for key, file in files.items():
                if member == file:
                    replaced = change(key, np.load(io.BytesIO(payload)))
                    if replaced is not None:
                        buffer = io.BytesIO()
                        np.save(buffer, replaced, allow_pickle=False)
                        payload = buffer.getvalue()
            target.writestr(member, payload)
    return out.getvalue()


def _first_tree(node: Any) -> Any:
    if isinstance(node, dict):
        if node.get("__class__") == "Tree":
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _first_tree(child)
        if found is not None:
            return found
    return None


def float32_thresholds(key: str, array: np.ndarray) -> np.ndarray | None:
    if key != "nodes":
        return None
    dtype = [(name, "<f4" if name == "threshold" else array.dtype[name])
             for name in array.dtype.names]
    return array.astype(dtype)


def short_values(key: str, array: np.ndarray) -> np.ndarray | None:
    return array[:, :, :1].copy() if key == "values" else None


@pytest.mark.parametrize(("change", "problem"), [
    (float32_thresholds, "node array from the pickle has an incompatible dtype"),
    (short_values, "Wrong shape for value array"),
], ids=["wrong nodes dtype", "wrong values shape"])
def test_stored_tree_arrays_of_the_wrong_dtype_or_shape_are_refused(
        change: Callable[[str, np.ndarray], np.ndarray | None], problem: str) -> None:
    frame, labels = training_frame()
    data = sio.dumps(DecisionTreeClassifier(max_depth=3).fit(frame[["income"]],
                                                             labels["binary"]))
    with pytest.raises(UnsafeArtifactError, match="crafted.skops: cannot be loaded safely") as info:
        load_bytes(rewritten(data, change))
    assert problem in str(info.value)


def test_the_crash_is_real_outside_and_refused_inside(tmp_path: Path) -> None:
    """A child index far outside the node array kills the process that predicts (here a child
    process loading with skops alone); load_artifact refuses the same bytes."""
    frame, labels = training_frame()
    model = DecisionTreeRegressor(max_depth=3).fit(frame[["income"]], labels["price"])
    nodes = model.tree_.__getstate__()["nodes"].copy()
    nodes["left_child"][0] = 2**40
    model.tree_ = rebuilt(model.tree_, nodes=nodes)
    data = sio.dumps(model)
    path = tmp_path / "crafted.skops"
    path.write_bytes(data)
    script = ("import sys, numpy as np, skops.io as sio\n"
              "m = sio.loads(open(sys.argv[1], 'rb').read(), trusted=[sys.argv[2]])\n"
              "m.predict(np.zeros((1, 1)))\n")
    result = subprocess.run([sys.executable, "-c", script, str(path), TREE],
                            capture_output=True, timeout=120, check=False)
    assert result.returncode < 0, result.stderr.decode()[-500:]  # killed by a signal
    with pytest.raises(UnsafeArtifactError, match="node 0's left child 1099511627776"):
        load_bytes(data)


def encoded(encoder: Any, column: str = "kids") -> Pipeline:
    frame, labels = training_frame()
    return Pipeline([("features", ColumnTransformer([("encode", encoder, [column])])),
                     ("model", LinearRegression())]).fit(frame, labels["price"])


def the_encoder(model: Pipeline) -> Any:
    return model.named_steps["features"].named_transformers_["encode"]


def swap_first(values: np.ndarray) -> np.ndarray:
    swapped = values.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    return swapped


ENCODER_ATTACKS: dict[str, tuple[Callable[[], Any], Callable[[Any], None], str]] = {
    "unsorted numeric one-hot categories": (
        lambda: OneHotEncoder(handle_unknown="ignore"),
        lambda e: setattr(e, "categories_", [swap_first(e.categories_[0])]),
        "categories_[0] is not in increasing order: 1 at 0, then 0"),
    "largest numeric category not last": (
        lambda: OneHotEncoder(handle_unknown="ignore"),
        lambda e: setattr(e, "categories_", [e.categories_[0][::-1].copy()]),
        "categories_[0] is not in increasing order"),
    "NaN before the other categories": (
        lambda: OneHotEncoder(handle_unknown="ignore"),
        lambda e: setattr(e, "categories_", [np.r_[np.nan, e.categories_[0][1:].astype(float)]]),
        "categories_[0] has NaN other than once at its end"),
    "numbers in an object array, unsorted": (
        lambda: OneHotEncoder(handle_unknown="ignore"),
        lambda e: setattr(e, "categories_", [swap_first(e.categories_[0]).astype(object)]),
        "categories_[0] is not in increasing order"),
    "unsorted numeric ordinal categories": (
        lambda: OrdinalEncoder(),
        lambda e: setattr(e, "categories_", [swap_first(e.categories_[0])]),
        "categories_[0] is not in increasing order"),
    "fewer output columns than categories (sizes the sparse matrix)": (
        lambda: OneHotEncoder(handle_unknown="ignore"),
        lambda e: setattr(e, "_n_features_outs", [1]),
        "column 0 makes 1 output columns; its categories make 5"),
    "a dropped code outside the column": (
        lambda: OneHotEncoder(drop="first"),
        lambda e: setattr(e, "_drop_idx_after_grouping", np.array([-3], dtype=object)),
        "column 0 drops code -3 of 5"),
    "an infrequent mapping past the grouped codes": (
        lambda: OneHotEncoder(min_frequency=40, handle_unknown="infrequent_if_exist"),
        lambda e: e._default_to_infrequent_mappings[0].__setitem__(0, 99),
        "infrequent mapping is not 5 codes below"),
}


@pytest.mark.parametrize("attack", list(ENCODER_ATTACKS))
def test_a_crafted_encoder_is_refused_by_name(attack: str) -> None:
    make, change, problem = ENCODER_ATTACKS[attack]
    model = encoded(make())
    change(the_encoder(model))
    message = refusal(model)
    assert message.startswith("crafted.skops: model.steps['features'].transformers_['encode']: ")
    assert problem in message


def test_string_categories_in_a_persons_own_order_load() -> None:
    model = encoded(OrdinalEncoder(categories=[["south", "north", "east"]]), "region")
    loaded = as_loaded(model)
    frame, _ = training_frame(rows=10, seed=5)
    assert np.array_equal(loaded.predict(frame), model.predict(frame))


def scaled(step: Any) -> Pipeline:
    frame, labels = training_frame()
    return Pipeline([("scale", step), ("model", LogisticRegression())]).fit(
        frame[["income", "kids"]], labels["binary"])


MISMATCHES: dict[str, tuple[Callable[[], Any], Callable[[Any], None], str]] = {
    "scaler mean_ shorter than the input": (
        lambda: scaled(StandardScaler()),
        lambda m: setattr(m[0], "mean_", m[0].mean_[:1]),
        "model.steps['scale']: mean_ has shape (1,), not (2,) for its 2 input columns"),
    "min-max scale_ longer than the input": (
        lambda: scaled(MinMaxScaler()),
        lambda m: setattr(m[0], "scale_", np.r_[m[0].scale_, 1.0]),
        "scale_ has shape (3,), not (2,)"),
    "coef_ narrower than the input": (
        lambda: scaled(StandardScaler()),
        lambda m: setattr(m[1], "coef_", m[1].coef_[:, :1].copy()),
        "model.steps['model']: coef_ has shape (1, 1) for 2 input columns"),
    "coef_ rows for other classes": (
        lambda: scaled(StandardScaler()),
        lambda m: setattr(m[1], "coef_", np.vstack([m[1].coef_] * 3)),
        "coef_ has shape (3, 2); 2 classes make (1, 2)"),
    "classes_ out of order": (
        lambda: scaled(StandardScaler()),
        lambda m: setattr(m[1], "classes_", m[1].classes_[::-1].copy()),
        "classes_ is not in increasing order"),
    "bin edges out of order": (
        lambda: scaled(KBinsDiscretizer(n_bins=3)),
        lambda m: m[0].bin_edges_[0].__setitem__(slice(None), m[0].bin_edges_[0][::-1].copy()),
        "bin_edges_[0] is not in increasing order"),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_fitted_arrays_that_disagree_are_refused(case: str) -> None:
    make, change, problem = MISMATCHES[case]
    model = make()
    change(model)
    assert problem in refusal(model, reviewed=(TREE, DTYPE))


def svc() -> SVC:
    frame, labels = training_frame()
    return SVC().fit(frame[["income", "kids"]], labels["three"])


@pytest.mark.parametrize(("change", "problem"), [
    (lambda m: setattr(m, "_intercept_", m._intercept_[:0].copy()), "intercepts (0,)"),
    (lambda m: setattr(m, "_n_support", m._n_support * 2), "support vectors"),
    (lambda m: setattr(m, "_dual_coef_", m._dual_coef_[:1].copy()), "dual coefficients (1,"),
    (lambda m: setattr(m, "support_vectors_", m.support_vectors_[:, :1].copy()),
     "support_vectors_ has shape"),
], ids=["no intercepts", "more support vectors counted than held", "one row of coefficients",
        "support vectors narrower than the input"])
def test_an_svm_whose_arrays_libsvm_would_overread_is_refused(
        change: Callable[[SVC], None], problem: str) -> None:
    """SVC is trusted by skops' defaults: no reviewed type stands in front of it."""
    model = svc()
    change(model)
    assert problem in refusal(model, reviewed=())


def test_a_sparse_coef_with_indices_outside_it_is_refused() -> None:
    frame, labels = training_frame()
    model = LogisticRegression().fit(frame[["income", "kids"]], labels["binary"]).sparsify()
    model.coef_.indices[0] = 9
    assert "model.coef_: " in refusal(model, reviewed=(CSR,))


def test_an_isolation_forest_member_given_other_columns_is_refused() -> None:
    frame, _ = training_frame()
    model = IsolationForest(n_estimators=3, max_features=2, random_state=0).fit(
        frame[["income", "kids"]].assign(more=1.0))
    model.estimators_features_[1] = np.arange(3)
    assert "estimators_[1] was fitted on 2 columns, is given 3" in refusal(model)


# --- what must load -----------------------------------------------------------------------

VARIANTS = [(kind, name, {}, label) for (kind, name) in ESTIMATORS
            for label in (("binary", "three") if kind == ModelType.CLASSIFICATION
                          else ("price",))] + [
    (ModelType.CLASSIFICATION, "gradient_boosting", {"loss": "exponential"}, "binary"),
    (ModelType.CLASSIFICATION, "gradient_boosting", {"n_iter_no_change": 2,
                                                     "n_estimators": 200}, "binary"),
    (ModelType.CLASSIFICATION, "random_forest", {"ccp_alpha": 0.01, "max_samples": 0.5,
                                                 "n_estimators": 5}, "three"),
    (ModelType.CLASSIFICATION, "logistic_regression", {"solver": "liblinear"}, "binary"),
    (ModelType.REGRESSION, "gradient_boosting", {"loss": "quantile", "alpha": 0.3}, "price"),
    (ModelType.REGRESSION, "gradient_boosting", {"loss": "huber", "subsample": 0.5}, "price"),
    (ModelType.REGRESSION, "ridge", {"fit_intercept": False}, "price"),
]


@pytest.mark.parametrize(("kind", "estimator", "params", "label"), VARIANTS,
                         ids=[f"{v[1]}-{v[3]}-{'-'.join(v[2]) or 'defaults'}" for v in VARIANTS])
def test_every_model_our_training_builds_loads(kind: ModelType, estimator: str,
                                               params: dict[str, Any], label: str) -> None:
    spec = TrainingSpec(estimator=estimator, params=params, data="d.csv", seed=3)
    frame, labels = training_frame()
    model = build_pipeline(kind, spec, SCHEMA).fit(frame, labels[label])
    data = sio.dumps(model)
    loaded = load_bytes(data, "trained.skops", REVIEWED_TYPES)
    assert np.array_equal(loaded.predict(frame), model.predict(frame))


OTHER_MODELS: dict[str, tuple[Callable[[], Any], str | None, list[str]]] = {
    # case: (model, label it learns or None, the columns it reads)
    "svc with probabilities": (lambda: SVC(probability=True), "three", NAMES[:2]),
    "svr": (lambda: SVR(), "price", NAMES[:2]),
    "one-class svm": (lambda: OneClassSVM(), None, NAMES[:2]),
    "svc on a precomputed kernel": (lambda: SVC(kernel="precomputed"), "binary", NAMES[:1]),
    "isolation forest on column subsets": (
        lambda: IsolationForest(n_estimators=4, max_features=2, random_state=0), None,
        ["income", "kids", "owner"]),
    "bagged trees": (lambda: BaggingClassifier(DecisionTreeClassifier(), n_estimators=3,
                                               max_features=2, random_state=0), "three",
                     ["income", "kids", "owner"]),
    "extra trees, two outputs": (lambda: ExtraTreesRegressor(n_estimators=3), "two values",
                                 NAMES[:2]),
    "forest, two outputs of classes": (lambda: RandomForestClassifier(n_estimators=3),
                                       "two classes", NAMES[:2]),
    "boosting from a linear init": (lambda: GradientBoostingRegressor(
        init=LinearRegression(), n_estimators=3), "price", NAMES[:2]),
    "boosting from zero, three classes": (lambda: GradientBoostingClassifier(
        init="zero", n_estimators=3), "three", NAMES[:2]),
    "scalers, imputer and binned one-hot": (lambda: Pipeline([
        ("impute", SimpleImputer()), ("robust", RobustScaler()), ("max", MaxAbsScaler()),
        ("bins", KBinsDiscretizer(n_bins=4)), ("model", LogisticRegression())]), "three",
        NAMES[:2]),
    "infrequent and dropped one-hot categories": (lambda: Pipeline([
        ("encode", OneHotEncoder(min_frequency=40, drop="first", handle_unknown="ignore")),
        ("model", DummyClassifier(strategy="prior"))]), "binary", ["kids", "region", "owner"]),
}


@pytest.mark.filterwarnings("ignore:The `probability` parameter was deprecated:FutureWarning")
@pytest.mark.parametrize("case", list(OTHER_MODELS))
def test_the_usual_scikit_learn_models_load(case: str) -> None:
    make, label, columns = OTHER_MODELS[case]
    frame, labels = training_frame()
    labels["two values"] = pd.concat([labels["price"], -labels["price"]], axis=1)
    labels["two classes"] = pd.concat([labels["binary"], labels["three"] == "low"], axis=1)
    inputs: Any = frame[columns]
    if "region" not in columns:
        inputs = inputs.to_numpy(dtype=float)
    if "precomputed" in case:
        inputs = inputs @ inputs.T
    model = make().fit(inputs) if label is None else make().fit(inputs, labels[label])
    loaded = as_loaded(model, reviewed=(*REVIEWED_TYPES, DTYPE))
    assert np.array_equal(loaded.predict(inputs), model.predict(inputs))


def test_a_label_encoder_loads_and_an_unsorted_one_does_not() -> None:
    encoder = LabelEncoder().fit([3, 1, 2])
    assert list(as_loaded(encoder).transform([2, 3])) == [1, 2]
    encoder.classes_ = np.array([3, 1, 2])
    assert "classes_ is not in increasing order: 3 at 0, then 1" in refusal(encoder)


def test_the_example_models_load_and_are_checked_in_a_few_milliseconds(examples_dir: Path
                                                                        ) -> None:
    for name in ("credit-risk", "house-prices"):
        data = (examples_dir / name / "model.skops").read_bytes()
        model = load_bytes(data, f"{name}/model.skops", REVIEWED_TYPES)
        took = []
        for _ in range(5):
            started = time.perf_counter()
            check_loaded(model, name)
            took.append(time.perf_counter() - started)
        assert min(took) < 0.05, f"{name}: {min(took) * 1e3:.1f} ms"


# --- the walk -----------------------------------------------------------------------------

def test_the_walk_is_bounded_and_needs_no_recursion() -> None:
    deep: list[Any] = []
    inner = deep
    for _ in range(50_000):
        inner.append([])
        inner = inner[0]
    inner.append(deep)  # and back to the top: a cycle
    check_loaded(deep, "deep.skops")
    with pytest.raises(UnsafeArtifactError, match=f"wide.skops: holds more than {MAX_OBJECTS}"):
        check_loaded([[] for _ in range(MAX_OBJECTS + 1)], "wide.skops")


def test_a_tree_in_a_dict_inside_a_list_is_still_checked(boosted: Pipeline) -> None:
    tree = edited_stage(boosted, TREE_ATTACKS["child out of range"][0]).named_steps[
        "model"].estimators_[3, 0].tree_
    with pytest.raises(UnsafeArtifactError, match=r"x: model\[0\]\['t'\]: node 0's left child"):
        check_loaded([{"t": tree}], "x")
