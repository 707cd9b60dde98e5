"""Whether a loaded decision tree, and the ensembles around it, can be walked safely.

scikit-learn's compiled code follows a Tree's node array with no bounds checks: from node 0 it
goes to `left_child` or `right_child` until a leaf (`left_child == TREE_LEAF`), reads
`X[i, feature]` on the way, sizes `decision_path`'s buffer by `max_depth`, and gradient
boosting's `predict_stages` writes `out[i, k]` for every column k of `estimators_`. skops loads
those arrays as they are in the file. These checks hold them to what scikit-learn's builders
produce (children after their parent, every node but the root reached once, features below the
width the ensemble validates its input against, stages no wider than the raw scores), so a
crafted file is refused before anything predicts. Each raises UnsafeArtifactError with what is
wrong; mlc_tasks/artifact_checks.py adds the artifact's name and where in the model it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble._bagging import BaseBagging
from sklearn.ensemble._forest import BaseForest
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.linear_model._base import LinearModel
from sklearn.tree import BaseDecisionTree, DecisionTreeRegressor
from sklearn.tree._tree import NODE_DTYPE, TREE_LEAF, Tree

from mlc_tasks.errors import UnsafeArtifactError

MAX_DEPTH_ROUNDS = 64  # pointer doubling: 2**64 levels, more than any node array holds


def check_tree(tree: Tree) -> None:
    """The node and value arrays of one Tree (read through `__getstate__`, as skops set them)."""
    state = tree.__getstate__()
    nodes, values, count = state["nodes"], state["values"], int(tree.node_count)
    if nodes.dtype != NODE_DTYPE:
        raise UnsafeArtifactError(f"its nodes are {nodes.dtype}, not scikit-learn's {NODE_DTYPE}")
    if count < 1 or len(nodes) != count or tree.capacity != count:
        raise UnsafeArtifactError(f"it claims {count} nodes, holds {len(nodes)} with room for "
                                  f"{tree.capacity}")
    _check_shape(tree, values, count)
    inner = _check_children(nodes["left_child"], nodes["right_child"], count)
    _check_splits(nodes, inner, int(tree.n_features))
    depth = _depth(nodes["left_child"], nodes["right_child"], inner, count)
    if not depth <= tree.max_depth < count:
        raise UnsafeArtifactError(f"its max_depth {tree.max_depth} is not between its real depth "
                                  f"{depth} and its node count {count}")


def _check_shape(tree: Tree, values: np.ndarray, count: int) -> None:
    classes = np.asarray(tree.n_classes)
    if tree.n_features < 1 or tree.n_outputs < 1 or classes.shape != (tree.n_outputs,) or (
            classes < 1).any() or classes.max() != tree.max_n_classes:
        raise UnsafeArtifactError(f"{tree.n_features} features, {tree.n_outputs} outputs and "
                                  f"classes {classes.tolist()} do not make a tree")
    expected = (count, tree.n_outputs, tree.max_n_classes)
    if values.shape != expected or values.dtype != np.float64:
        raise UnsafeArtifactError(f"its values are {values.dtype} {values.shape}, not float64 "
                                  f"{expected}")


def _check_children(left: np.ndarray, right: np.ndarray, count: int) -> np.ndarray:
    """Leaves have no child on either side; any other node's children come after it and every
    node but the root has one parent: a tree, no cycle, every walk ends. The inner nodes."""
    leaf = left == TREE_LEAF
    half = leaf != (right == TREE_LEAF)
    if half.any():
        node = _first(half)
        raise UnsafeArtifactError(f"node {node} has children {left[node]} and {right[node]}: "
                                  f"a leaf has {TREE_LEAF} on both sides, an inner node neither")
    inner = ~leaf
    index = np.arange(count)
    for side, child in (("left", left), ("right", right)):
        bad = inner & ((child <= index) | (child >= count))
        if bad.any():
            node = _first(bad)
            raise UnsafeArtifactError(f"node {node}'s {side} child {child[node]} is outside "
                                      f"{node + 1}..{count - 1}")
    parents = np.bincount(np.concatenate((left[inner], right[inner])), minlength=count)
    wrong = parents[1:] != 1
    if wrong.any():
        node = _first(wrong) + 1
        raise UnsafeArtifactError(f"node {node} has {parents[node]} parents, not 1")
    return inner


def _check_splits(nodes: np.ndarray, inner: np.ndarray, width: int) -> None:
    feature = nodes["feature"]
    bad = inner & ((feature < 0) | (feature >= width))
    if bad.any():
        node = _first(bad)
        raise UnsafeArtifactError(f"node {node} splits on feature {feature[node]}, outside "
                                  f"0..{width - 1}")
    threshold = nodes["threshold"]
    bad = inner & ~np.isfinite(threshold)
    if bad.any():
        node = _first(bad)
        raise UnsafeArtifactError(f"node {node}'s threshold is {threshold[node]}")


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _depth(left: np.ndarray, right: np.ndarray, inner: np.ndarray, count: int) -> int:
    """The deepest leaf's depth, by pointer doubling on the parent array (log rounds)."""
    parent = np.zeros(count, dtype=np.intp)
    index = np.flatnonzero(inner)
    parent[left[inner]] = index
    parent[right[inner]] = index
    hops = np.ones(count, dtype=np.intp)
    hops[0] = 0
    for _ in range(MAX_DEPTH_ROUNDS):
        if not parent.any():
            return int(hops.max())
        hops = hops + hops[parent]
        parent = parent[parent]
    raise UnsafeArtifactError("its depth cannot be measured")


def check_tree_estimator(estimator: BaseDecisionTree) -> None:
    """A fitted DecisionTree*: its tree has the estimator's width, outputs and classes."""
    if "tree_" not in vars(estimator):
        return
    width = vars(estimator).get("n_features_in_")
    _check_member(estimator, width, getattr(estimator, "n_outputs_", None), "tree_")
    if isinstance(estimator, ClassifierMixin):
        expected = np.atleast_1d(estimator.n_classes_)
        if not np.array_equal(estimator.tree_.n_classes, expected):
            raise UnsafeArtifactError(f"its tree has classes {estimator.tree_.n_classes.tolist()}"
                                      f", the estimator n_classes_ {expected.tolist()}")
    elif (estimator.tree_.n_classes != 1).any():
        raise UnsafeArtifactError("a regressor whose tree has classes")


def _check_member(member: Any, width: int | None, outputs: int | None, where: str) -> Tree:
    """A fitted decision tree inside an ensemble, fed `width` columns the ensemble validated."""
    tree = vars(member).get("tree_") if isinstance(member, BaseDecisionTree) else None
    if not isinstance(tree, Tree):
        raise UnsafeArtifactError(f"{where} is a {type(member).__name__} without a fitted tree")
    if width is not None and tree.n_features != width:
        raise UnsafeArtifactError(f"{where}'s tree reads {tree.n_features} features, the "
                                  f"ensemble is given {width}")
    if outputs is not None and tree.n_outputs != outputs:
        raise UnsafeArtifactError(f"{where}'s tree has {tree.n_outputs} outputs, not {outputs}")
    return tree


def check_forest(forest: BaseForest) -> None:
    """RandomForest*, ExtraTrees*: each tree is called with the forest's input unchecked."""
    members = vars(forest).get("estimators_")
    if members is None:
        return
    if not isinstance(members, list) or not members:
        raise UnsafeArtifactError("estimators_ is not a list of trees")
    for number, member in enumerate(members):
        _check_member(member, forest.n_features_in_, forest.n_outputs_, f"estimators_[{number}]")


def check_boosting(model: BaseGradientBoosting) -> None:
    """GradientBoosting*: `predict_stages` writes column k of the raw scores for each column of
    `estimators_` and reads each tree's value as one number."""
    stages = vars(model).get("estimators_")
    if stages is None:
        return
    width = model.n_trees_per_iteration_
    if not (isinstance(stages, np.ndarray) and stages.dtype == object and stages.ndim == 2
            and stages.shape == (model.n_estimators_, width) and stages.size):
        raise UnsafeArtifactError(f"estimators_ is not {model.n_estimators_} stages of {width} "
                                  "trees")
    _check_boosting_width(model, width)
    for (stage, column), member in np.ndenumerate(stages):
        where = f"estimators_[{stage},{column}]"
        if type(member) is not DecisionTreeRegressor:
            raise UnsafeArtifactError(f"{where} is a {type(member).__name__}, not a "
                                      "DecisionTreeRegressor")
        tree = _check_member(member, model.n_features_in_, 1, where)
        if tree.max_n_classes != 1:
            raise UnsafeArtifactError(f"{where}'s tree holds {tree.max_n_classes} values a leaf")
    _check_boosting_init(model)


def _check_boosting_width(model: BaseGradientBoosting, width: int) -> None:
    if not isinstance(model, ClassifierMixin):
        expected = 1
    else:
        if model.n_classes_ != len(model.classes_) or model.n_classes_ < 2:
            raise UnsafeArtifactError(f"n_classes_ {model.n_classes_} for "
                                      f"{len(model.classes_)} classes")
        expected = 1 if model.n_classes_ == 2 else model.n_classes_
        if bool(model._loss.is_multiclass) != (expected > 1):  # private: how raw scores are sized
            raise UnsafeArtifactError("its loss does not fit its number of classes")
    if width != expected:
        raise UnsafeArtifactError(f"{width} trees a stage; its classes make {expected}")


def _check_boosting_init(model: BaseGradientBoosting) -> None:
    """The init estimator sizes the raw scores the stages write into: only the kinds whose
    output width is known from their arrays are let through."""
    init = model.init_
    if isinstance(init, str) and init == "zero":
        return
    if isinstance(model, ClassifierMixin):
        if type(init) is not DummyClassifier or init.n_outputs_ != 1 or not (
                init.n_classes_ == model.n_classes_ == len(init.class_prior_)):
            raise UnsafeArtifactError(f"init_ {type(init).__name__} does not give one prior per "
                                      f"class of {model.n_classes_}")
        return
    if type(init) is DummyRegressor:
        if init.n_outputs_ != 1 or np.shape(init.constant_) != (1, 1):
            raise UnsafeArtifactError("init_ DummyRegressor does not predict one value")
        return
    coef = getattr(init, "coef_", None)
    if not (isinstance(init, LinearModel) and isinstance(coef, np.ndarray) and coef.ndim == 1):
        raise UnsafeArtifactError(f"init_ {type(init).__name__} is not an init estimator whose "
                                  "output width can be checked (zero, a dummy or a linear model)")


def check_bagging(model: BaseBagging) -> None:
    """Bagging*, IsolationForest: each member sees the columns `estimators_features_` names
    (IsolationForest without checking them)."""
    members = vars(model).get("estimators_")
    if members is None:
        return
    features = vars(model).get("estimators_features_")
    if not isinstance(members, list) or features is None or len(features) != len(members):
        raise UnsafeArtifactError("estimators_ and estimators_features_ do not pair up")
    for number, (member, columns) in enumerate(zip(members, features, strict=True)):
        columns = np.asarray(columns)
        if columns.ndim != 1 or columns.dtype.kind not in "iu" or (
                columns.size and not 0 <= columns.min() <= columns.max() < model.n_features_in_):
            raise UnsafeArtifactError(f"estimators_features_[{number}] are not columns of "
                                      f"{model.n_features_in_}")
        if vars(member).get("n_features_in_", columns.size) != columns.size:
            raise UnsafeArtifactError(f"estimators_[{number}] was fitted on "
                                      f"{member.n_features_in_} columns, is given {columns.size}")
        if isinstance(member, BaseDecisionTree):
            _check_member(member, columns.size, None, f"estimators_[{number}]")
