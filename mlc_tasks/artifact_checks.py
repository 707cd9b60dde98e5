"""Whether a loaded model's data holds together, before anything predicts with it.

skops decides which types an artifact may hold, not whether their arrays make sense, and
scikit-learn's compiled code trusts them: a Tree's child and feature indices are followed with
no bounds checks (mlc_tasks/tree_checks.py), a OneHotEncoder finds a number's column with a
binary search in its categories and builds a sparse matrix from the codes
(mlc_tasks/encoder_checks.py), libsvm reads as many coefficients and intercepts as its class
counts say. A crafted file makes such code read or
write outside its buffers in the test job or a runtime, both holding credentials.
`check_loaded` walks everything the model holds (bounded, no recursion) and refuses data that
scikit-learn's own fitting never produces; the message names the artifact, where in the model
and what is wrong.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import ClassifierMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble._bagging import BaseBagging
from sklearn.ensemble._forest import BaseForest
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.impute import SimpleImputer
from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
from sklearn.preprocessing import (
    KBinsDiscretizer,
    LabelBinarizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.preprocessing._encoders import _BaseEncoder
from sklearn.svm._base import BaseLibSVM
from sklearn.tree import BaseDecisionTree
from sklearn.tree._tree import Tree

from mlc_tasks import encoder_checks, tree_checks
from mlc_tasks.errors import UnsafeArtifactError

MAX_OBJECTS = 200_000  # objects, lists, dicts and object arrays the walk visits
MAX_ITEMS = 5_000_000  # their members, scalars included
LEAVES = (str, bytes, numbers.Number, bool, type(None), np.generic, np.dtype, type, slice)
PLAIN = frozenset({str, int, float, bool, type(None), np.float64, np.int64})  # LEAVES, fast
WIDTHS = {  # fitted arrays that hold one value per input column (each may be None)
    StandardScaler: ("mean_", "var_", "scale_"),
    MinMaxScaler: ("min_", "scale_", "data_min_", "data_max_", "data_range_"),
    MaxAbsScaler: ("scale_", "max_abs_"),
    RobustScaler: ("center_", "scale_"),
    SimpleImputer: ("statistics_",),
}


def check_loaded(model: Any, name: str) -> None:
    """Refuse a loaded model whose data scikit-learn's compiled code would follow out of its
    arrays, or whose fitted arrays disagree in length; UnsafeArtifactError names `name`, the
    place in the model and the problem."""
    for path, obj in _walk(model, name):
        for check in _checks_for(type(obj)):
            try:
                check(obj)
            except UnsafeArtifactError as exc:
                raise UnsafeArtifactError(f"{name}: {path}: {exc}") from exc
            except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
                raise UnsafeArtifactError(f"{name}: {path}: cannot be checked "
                                          f"({type(exc).__name__}: {exc})") from exc


# --- the walk -----------------------------------------------------------------------------

def _walk(root: Any, name: str) -> Iterator[tuple[str, Any]]:
    """Every object the model holds, once, with its place ("model.steps['model'].tree_")."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("model", root)]
    items = 0
    while stack:
        path, obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if len(seen) > MAX_OBJECTS:
            raise UnsafeArtifactError(f"{name}: holds more than {MAX_OBJECTS} objects")
        yield path, obj
        for child in _children(path, obj):
            items += 1
            if items > MAX_ITEMS:
                raise UnsafeArtifactError(f"{name}: holds more than {MAX_ITEMS} values")
            if type(child[1]) not in PLAIN and not isinstance(child[1], LEAVES):
                stack.append(child)


def _children(path: str, obj: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"{path}[{_label(key)}]", value
    elif isinstance(obj, (list, tuple)):
        named = isinstance(obj, tuple) and len(obj) > 1 and isinstance(obj[0], str)
        for number, value in enumerate(obj):
            if named and number == 1:  # ("model", estimator): the estimator stands for its pair
                yield path, value
            elif isinstance(value, tuple) and len(value) > 1 and isinstance(value[0], str):
                yield f"{path}[{_label(value[0])}]", value
            else:
                yield f"{path}[{number}]", value
    elif isinstance(obj, (set, frozenset)):
        for value in obj:
            yield f"{path}{{}}", value
    elif isinstance(obj, np.ndarray):
        if obj.dtype == object:
            for index, value in np.ndenumerate(obj):
                yield f"{path}[{','.join(map(str, index))}]", value
    else:
        for key, value in getattr(obj, "__dict__", {}).items():
            yield f"{path}.{key}", value


def _label(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


@cache
def _checks_for(kind: type) -> tuple[Callable[[Any], None], ...]:
    return tuple(check for base, check in CHECKS if issubclass(kind, base))


# --- arrays that must agree ---------------------------------------------------------------

def check_widths(step: Any) -> None:
    """Scalers and imputers: one value per input column in each fitted array."""
    width = vars(step).get("n_features_in_")
    if width is None:
        return
    for kind, names in WIDTHS.items():
        if isinstance(step, kind):
            for name in names:
                values = vars(step).get(name)
                if values is not None and np.shape(values) != (width,):
                    raise UnsafeArtifactError(f"{name} has shape {np.shape(values)}, not "
                                              f"({width},) for its {width} input columns")


def check_linear(model: Any) -> None:
    """Linear models: coef_ has the input's width, a row per class (one for two classes) or
    target, and intercept_ one value or one per row."""
    coef = vars(model).get("coef_")
    width = vars(model).get("n_features_in_")
    if coef is None or width is None:
        return
    shape = coef.shape
    if len(shape) not in (1, 2) or shape[-1] != width or (len(shape) == 2 and not shape[0]):
        raise UnsafeArtifactError(f"coef_ has shape {shape} for {width} input columns")
    rows = shape[0] if len(shape) == 2 else 1
    if isinstance(model, ClassifierMixin) and "classes_" in vars(model):
        count = len(model.classes_)
        expected = 1 if count == 2 else count
        if len(shape) != 2 or rows != expected:
            raise UnsafeArtifactError(f"coef_ has shape {shape}; {count} classes make "
                                      f"({expected}, {width})")
    intercept = np.asarray(vars(model).get("intercept_", 0.0))
    if intercept.ndim > 1 or intercept.size not in (1, rows):
        raise UnsafeArtifactError(f"intercept_ has shape {intercept.shape} for coef_ {shape}")


def check_dummy(model: DummyClassifier | DummyRegressor) -> None:
    """The dummies size their output from n_classes_ / class_prior_ or constant_."""
    outputs = vars(model).get("n_outputs_")
    if outputs is None:
        return
    if isinstance(model, DummyRegressor):
        if outputs < 1 or np.shape(model.constant_) != (1, outputs):
            raise UnsafeArtifactError(f"constant_ has shape {np.shape(model.constant_)} for "
                                      f"{outputs} outputs")
        return
    lists = [model.classes_, model.n_classes_, model.class_prior_]
    if outputs == 1:
        lists = [[value] for value in lists]
    if outputs < 1 or any(not isinstance(v, list) or len(v) != outputs for v in lists):
        raise UnsafeArtifactError(f"classes_, n_classes_ and class_prior_ are not {outputs} "
                                  "outputs")
    for classes, count, prior in zip(*lists, strict=True):
        if not len(classes) == count == np.shape(prior)[0] or np.ndim(prior) != 1:
            raise UnsafeArtifactError(f"{len(classes)} classes, n_classes_ {count} and "
                                      f"{np.shape(prior)} priors")


def check_libsvm(model: BaseLibSVM) -> None:
    """SVC, NuSVC, SVR, NuSVR, OneClassSVM: the counts libsvm reads its arrays by (see
    set_model in scikit-learn's libsvm_helper.c)."""
    if "support_" not in vars(model):
        return
    if model._sparse:  # private, as every attribute libsvm gets
        raise UnsafeArtifactError("an SVM fitted on a sparse matrix is not checked")
    counts, rows = np.asarray(model._n_support), len(model.support_)
    kinds = len(counts)
    if kinds < 2 or (model._impl not in ("c_svc", "nu_svc") and kinds != 2) or (
            model._impl in ("c_svc", "nu_svc") and (counts.min() < 0 or counts.sum() != rows)):
        raise UnsafeArtifactError(f"_n_support {counts.tolist()} for {rows} support vectors")
    _check_support_vectors(model, rows)
    pairs = kinds * (kinds - 1) // 2
    if np.shape(model._dual_coef_) != (kinds - 1, rows) or np.shape(model._intercept_) != (
            pairs,):
        raise UnsafeArtifactError(f"dual coefficients {np.shape(model._dual_coef_)} and "
                                  f"intercepts {np.shape(model._intercept_)} for {kinds} classes "
                                  f"and {rows} support vectors")
    probabilities = {np.shape(model._probA), np.shape(model._probB)}
    if probabilities not in ({(0,)}, {(pairs,)}):
        raise UnsafeArtifactError(f"probability arrays {sorted(probabilities)} for {pairs} "
                                  "class pairs")


def _check_support_vectors(model: BaseLibSVM, rows: int) -> None:
    """One row of the input's width per support vector; with a precomputed kernel none, and
    support_ names columns of the kernel matrix instead."""
    vectors, support = np.shape(model.support_vectors_), np.asarray(model.support_)
    if model.kernel == "precomputed":
        if vectors != (0, 0) or (rows and not 0 <= support.min() <= support.max()
                                 < model.shape_fit_[0]):
            raise UnsafeArtifactError(f"support_ is not rows of the {model.shape_fit_[0]} "
                                      "training samples")
    elif vectors != (rows, model.n_features_in_) or model.shape_fit_[1] != model.n_features_in_:
        raise UnsafeArtifactError(f"support_vectors_ has shape {vectors}, not "
                                  f"({rows}, {model.n_features_in_})")


def check_sparse(matrix: Any) -> None:
    """A sparse matrix in the model (a sparsified coef_): indices within its shape."""
    if matrix.format not in ("csr", "csc"):
        raise UnsafeArtifactError(f"a sparse {matrix.format} matrix is not checked")
    try:
        matrix.check_format(full_check=True)
    except ValueError as exc:
        raise UnsafeArtifactError(f"its indices do not fit its shape {matrix.shape}: {exc}"
                                  ) from exc


CHECKS: tuple[tuple[type | tuple[type, ...], Callable[[Any], None]], ...] = (
    (Tree, tree_checks.check_tree),
    (BaseDecisionTree, tree_checks.check_tree_estimator),
    (BaseForest, tree_checks.check_forest),
    (BaseGradientBoosting, tree_checks.check_boosting),
    (BaseBagging, tree_checks.check_bagging),
    (_BaseEncoder, encoder_checks.check_categories),
    (OneHotEncoder, encoder_checks.check_one_hot),
    (KBinsDiscretizer, encoder_checks.check_bins),
    (ClassifierMixin, encoder_checks.check_classes),
    (LabelEncoder, encoder_checks.check_classes),
    (LabelBinarizer, encoder_checks.check_classes),
    (tuple(WIDTHS), check_widths),
    ((LinearModel, LinearClassifierMixin), check_linear),
    ((DummyClassifier, DummyRegressor), check_dummy),
    (BaseLibSVM, check_libsvm),
    ((sp.spmatrix, sp.sparray), check_sparse),
)
