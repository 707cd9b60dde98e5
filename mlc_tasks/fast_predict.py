"""A lean predict path: a fitted scikit-learn pipeline compiled to numpy operations on one array
per input column.

One row through `model.predict(frame)` spends most of its time in pandas indexing,
ColumnTransformer's dispatch and each step's input validation, little in the model. For the
parts it knows (a ColumnTransformer of scalers, one-hot encoders, imputers, passthrough and drop;
then a linear model or a tree ensemble) `compile_predictor` plans steps (mlc_tasks/fast_steps.py)
that do the same arithmetic in the same order on the same dtypes and memory layout, so the
predictions are the same numbers, not close ones. It hands the compiled path out only after
mlc_tasks/fast_proof.py saw it predict exactly what the model does on the version's sample rows
and on probe rows; anything it does not know, or any doubt, gives None and the caller keeps
calling the model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from mlc_tasks import fast_proof
from mlc_tasks.errors import SchemaMismatchError
from mlc_tasks.fast_proof import ARRAY_DTYPES, Hints
from mlc_tasks.fast_steps import (
    DROPPED,
    F64,
    OBJECT,
    AsType,
    Boosted,
    Chain,
    Columns,
    Hstack,
    LinearClassifier,
    LinearRegressor,
    MinMax,
    OneHot,
    OwnPredict,
    Select,
    Split,
    Stack,
    Standardize,
    Step,
)
from mlc_tasks.scoring import Column

log = logging.getLogger(__name__)

Kind = Literal["columns", "dense", "sparse"]
LINEAR_REGRESSORS = (LinearRegression, Ridge, Lasso, ElasticNet)
OWN_PREDICT = (DecisionTreeClassifier, DecisionTreeRegressor, RandomForestClassifier,
               RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor,
               GradientBoostingClassifier, GradientBoostingRegressor,
               HistGradientBoostingClassifier, HistGradientBoostingRegressor)
METHODS = {"transform", "fit_transform", "predict", "decision_function", "__call__"}


class _Unsupported(Exception):
    """The model holds something this module does not compute exactly; the message says what."""


@dataclass(frozen=True, eq=False)
class Layout:
    """What a step hands on: `columns` (1-D arrays, as a sub-frame would be), or a `dense` or
    `sparse` matrix; one dtype per column; the input column each column still is, if any."""

    kind: Kind
    dtypes: tuple[np.dtype, ...]
    names: tuple[str, ...] | None

    @property
    def dtype(self) -> np.dtype:
        """The dtype as one matrix: for columns, what numpy makes of a pandas sub-frame."""
        return frame_dtype(self.dtypes) if self.kind == "columns" else self.dtypes[0]


def frame_dtype(dtypes: tuple[np.dtype, ...]) -> np.dtype:
    """pandas' common dtype of a frame's columns (`np.asarray(frame)`): int and float give
    float, bool or str with anything else give object."""
    found = set(dtypes)
    if len(found) == 1:
        return found.pop()
    return F64 if found <= {F64, np.dtype(np.int64)} else OBJECT


@dataclass(frozen=True, eq=False)
class FastPredictor:
    """`model.predict(frame)` from one array per schema column (float64, int64, bool, object of
    str; no nulls), proven equal to the model it was compiled from."""

    schema: tuple[Column, ...]
    features: Step
    estimator: Step

    def predict(self, columns: Columns) -> np.ndarray:
        check_columns(columns, self.schema)
        return self.estimator(self.features(columns))


def compile_predictor(model: Any, schema: list[Column], sample: pd.DataFrame
                      ) -> FastPredictor | None:
    """The lean path for `model`, or None when it holds anything this module does not compute
    exactly or when it does not predict exactly what the model does on `sample` (the version's
    sample rows) and the probe rows (mlc_tasks/fast_proof.py)."""
    hints = Hints()
    try:
        predictor = plan(model, schema, hints)
        checked = fast_proof.prove(predictor.predict, model, schema, sample, hints)
    except (_Unsupported, fast_proof.ProofFailed) as exc:
        log.info("no fast predict path for %s: %s", type(model).__name__, exc)
        return None
    except Exception as exc:  # any surprise in a model we cannot vouch for: the model serves
        log.info("no fast predict path for %s: compiling failed: %r", type(model).__name__, exc)
        return None
    log.info("fast predict path for %s, equal to the model on %d rows",
             type(model).__name__, checked)
    return predictor


def check_columns(columns: Columns, schema: tuple[Column, ...]) -> None:
    """Every schema column, of its dtype and one length; a float column without NaN (the
    compiled path is proven for the inputs the model gets without nulls, nothing else)."""
    rows = None
    for col in schema:
        values = columns.get(col.name)
        if values is None:
            raise SchemaMismatchError(col.name, f"column '{col.name}' is missing")
        if (not isinstance(values, np.ndarray) or values.dtype != ARRAY_DTYPES[col.dtype]
                or values.ndim != 1):
            raise SchemaMismatchError(col.name, f"column '{col.name}': expected a 1-D "
                                                f"{ARRAY_DTYPES[col.dtype]} array")
        if rows is not None and len(values) != rows:
            raise SchemaMismatchError(col.name, f"column '{col.name}' has {len(values)} values; "
                                                f"the columns before it have {rows}")
        rows = len(values)
        if col.dtype == "float" and np.isnan(values).any():
            raise SchemaMismatchError(col.name, f"column '{col.name}' has empty values")


def plan(model: Any, schema: list[Column], hints: Hints) -> FastPredictor:
    """The compiled steps of `model`; `_Unsupported` names the first part it cannot do."""
    transformers, estimator = _split(model)
    names = tuple(c.name for c in schema)
    layout = Layout("columns", tuple(ARRAY_DTYPES[c.dtype] for c in schema), names)
    reads_columns = bool(transformers) and type(transformers[0]) is ColumnTransformer
    parts: list[Step] = [] if reads_columns else [Select(names)]
    for number, step in enumerate(transformers):
        if number == 0 and reads_columns:
            compiled, layout = _plan_column_transformer(step, layout, hints)
        else:
            if number == 0:
                _check_fitted_names(step, names)
            compiled, layout = _plan_transformer(step, layout, hints)
        parts.append(compiled)
    if not transformers:
        _check_fitted_names(estimator, names)
    if layout.kind == "columns":
        if layout.dtype == OBJECT:
            raise _Unsupported("the estimator reads a frame of mixed bool and other columns")
        parts.append(Stack(layout.dtype))
    return FastPredictor(tuple(schema), Chain(tuple(parts)), _plan_estimator(estimator, layout))


def _split(model: Any) -> tuple[list[Any], Any]:
    """A pipeline's transformers and its estimator (an estimator alone: none and itself)."""
    if type(model) is not Pipeline:
        return [], model
    _check_plain(model)
    steps = [step for _, step in model.steps if step is not None and step != "passthrough"]
    if not steps:
        raise _Unsupported("the pipeline has no steps")
    return steps[:-1], steps[-1]


def _check_fitted_names(step: Any, names: tuple[str, ...]) -> None:
    """The first step reads the frame itself: scikit-learn refuses other names or order."""
    fitted = getattr(step, "feature_names_in_", None)
    if fitted is not None and tuple(fitted) != names:
        raise _Unsupported(f"{type(step).__name__} was fitted on columns {list(fitted)}, "
                           f"not the schema's {list(names)}")
    if getattr(step, "n_features_in_", len(names)) != len(names):
        raise _Unsupported(f"{type(step).__name__} expects {step.n_features_in_} columns")


def _check_plain(step: Any) -> None:
    """Refuse an object whose methods were replaced on it, or whose output is set to frames."""
    shadowed = METHODS & set(vars(step))
    if shadowed:
        raise _Unsupported(f"{type(step).__name__} has its own {sorted(shadowed)}")
    output = getattr(step, "_sklearn_output_config", {})
    if any(value != "default" for value in output.values()):
        raise _Unsupported(f"{type(step).__name__} outputs {output}")


# --- transformers -------------------------------------------------------------------------

def _plan_transformer(step: Any, layout: Layout, hints: Hints) -> tuple[Step, Layout]:
    _check_plain(step)
    planner = TRANSFORMERS.get(type(step))
    if planner is None:
        kind = type(step)
        raise _Unsupported(f"{kind.__module__}.{kind.__qualname__} is not a step it computes")
    return planner(step, layout, hints)


def _plan_pipeline(pipe: Pipeline, layout: Layout, hints: Hints) -> tuple[Step, Layout]:
    parts: list[Step] = []
    for _, step in pipe.steps:
        if step is None or step == "passthrough":
            continue
        compiled, layout = _plan_transformer(step, layout, hints)
        parts.append(compiled)
    return Chain(tuple(parts)), layout


def _plan_identity(step: FunctionTransformer, layout: Layout, hints: Hints
                   ) -> tuple[Step, Layout]:
    """ColumnTransformer's 'passthrough' (and remainder='passthrough'): an identity function."""
    if step.func is not None or step.validate:
        raise _Unsupported("a FunctionTransformer with a function of its own")
    return Chain(()), layout


def _as_float(step: Any, layout: Layout) -> Step:
    """What scikit-learn's float validation makes of the input: a float64 matrix."""
    if layout.kind == "sparse":
        raise _Unsupported(f"{type(step).__name__} after a sparse matrix")
    if layout.kind == "columns":
        return Stack(F64)
    if layout.dtype.kind == "f" and layout.dtype != F64:
        raise _Unsupported(f"{type(step).__name__} on {layout.dtype}")
    return Chain(()) if layout.dtype == F64 else AsType(F64)


def _floats(values: Any, width: int, what: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype != F64 or array.shape != (width,):
        raise _Unsupported(f"{what} is not {width} float64 values")
    return array


def _plan_standard_scaler(step: StandardScaler, layout: Layout, hints: Hints
                          ) -> tuple[Step, Layout]:
    width = len(layout.dtypes)
    mean = _floats(step.mean_, width, "mean_") if step.with_mean else None
    scale = _floats(step.scale_, width, "scale_") if step.with_std else None
    hints.add_numbers(layout.names, np.zeros(width) if mean is None else mean,
                      np.ones(width) if scale is None else scale)
    out = Layout("dense", (F64,) * width, layout.names)
    return Chain((_as_float(step, layout), Standardize(mean, scale))), out


def _plan_min_max_scaler(step: MinMaxScaler, layout: Layout, hints: Hints
                         ) -> tuple[Step, Layout]:
    width = len(layout.dtypes)
    low, high = (float(v) for v in step.feature_range)
    compiled = MinMax(_floats(step.scale_, width, "scale_"), _floats(step.min_, width, "min_"),
                       (low, high) if step.clip else None)
    hints.add_numbers(layout.names, step.data_min_, step.data_range_)
    hints.add_numbers(layout.names, step.data_max_, step.data_range_)
    return Chain((_as_float(step, layout), compiled)), Layout("dense", (F64,) * width,
                                                                layout.names)


def _plan_imputer(step: SimpleImputer, layout: Layout, hints: Hints) -> tuple[Step, Layout]:
    """With no missing value in the input, SimpleImputer only converts the dtype: to float for
    mean and median, else it keeps the input's (object if fit saw object)."""
    missing = step.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise _Unsupported(f"SimpleImputer(missing_values={missing!r})")
    if step.add_indicator or (pd.isna(step.statistics_).any() and not step.keep_empty_features):
        raise _Unsupported("SimpleImputer with a missing indicator or an empty feature")
    width = len(layout.dtypes)
    if step.strategy in ("mean", "median"):
        return _as_float(step, layout), Layout("dense", (F64,) * width, layout.names)
    mixed = layout.kind == "columns" and layout.dtype == OBJECT and len(set(layout.dtypes)) > 1
    if layout.kind == "sparse" or layout.dtype.kind == "b" or mixed:
        raise _Unsupported(f"SimpleImputer({step.strategy!r}) on a {layout.kind} input of "
                           f"{sorted(map(str, set(layout.dtypes)))}")
    dtype = OBJECT if step._fit_dtype.kind == "O" else layout.dtype  # private: fit's dtype
    first: Step = Stack(layout.dtype) if layout.kind == "columns" else Chain(())
    return Chain((first, AsType(dtype))), Layout("dense", (dtype,) * width, layout.names)


def _plan_one_hot(step: OneHotEncoder, layout: Layout, hints: Hints) -> tuple[Step, Layout]:
    _check_one_hot(step, layout)
    drops = step.drop_idx_ if step.drop_idx_ is not None else [None] * len(step.categories_)
    tables, widths = [], []
    for number, (categories, drop) in enumerate(zip(step.categories_, drops, strict=True)):
        _check_categories(categories, layout.dtypes[number] if layout.kind == "columns"
                          else layout.dtype, number)
        tables.append(_category_table(categories, drop))
        widths.append(len(categories) - (drop is not None))
        hints.add_categories(layout.names, number, categories, step.handle_unknown == "error")
    offsets = np.cumsum([0, *widths[:-1]]).astype(np.intp)
    compiled = OneHot(tuple(tables), offsets, int(sum(widths)), np.dtype(step.dtype),
                       bool(step.sparse_output), step.handle_unknown == "error",
                       layout.names, tuple(step.categories_))
    first: Step = Chain(()) if layout.kind == "columns" else Split()
    out = Layout("sparse" if step.sparse_output else "dense",
                 (np.dtype(step.dtype),) * compiled.width, None)
    return Chain((first, compiled)), out


def _check_one_hot(step: OneHotEncoder, layout: Layout) -> None:
    if step.min_frequency is not None or step.max_categories is not None:
        raise _Unsupported("OneHotEncoder with infrequent categories")
    if step.handle_unknown not in ("error", "ignore", "infrequent_if_exist", "warn"):
        raise _Unsupported(f"OneHotEncoder(handle_unknown={step.handle_unknown!r})")
    if layout.kind == "sparse" or len(step.categories_) != len(layout.dtypes):
        raise _Unsupported(f"OneHotEncoder on a {layout.kind} input of {len(layout.dtypes)} "
                           f"columns, fitted on {len(step.categories_)}")


def _check_categories(categories: np.ndarray, dtype: np.dtype, number: int) -> None:
    """Categories of the kind of the column they are looked up for (str, number, bool)."""
    kind = categories.dtype.kind
    if dtype == OBJECT:
        fits = kind == "U" or kind == "O" and all(
            isinstance(c, str) or c is None or c != c for c in categories)
    else:
        fits = kind == "b" if dtype.kind == "b" else kind in "iuf"
    if not fits:
        raise _Unsupported(f"one-hot categories of {categories.dtype} for a {dtype} column "
                           f"(feature {number})")


def _category_table(categories: np.ndarray, drop: Any) -> dict[Any, int]:
    """Category → its output column within the feature, after the dropped one (DROPPED)."""
    table: dict[Any, int] = {}
    for code, category in enumerate(categories.tolist()):
        if drop is not None and code == drop:
            table[category] = DROPPED
        else:
            table[category] = code - (drop is not None and code > drop)
    return table


def _plan_column_transformer(ct: ColumnTransformer, layout: Layout, hints: Hints
                             ) -> tuple[Step, Layout]:
    _check_plain(ct)
    if ct.transformer_weights or not hasattr(ct, "feature_names_in_"):
        raise _Unsupported("a ColumnTransformer with weights, or fitted without column names")
    available = dict(zip(layout.names or (), layout.dtypes, strict=True))
    blocks, outs = [], []
    for name, step, columns in ct.transformers_:
        if isinstance(step, str):
            if step != "drop":
                raise _Unsupported(f"ColumnTransformer step {name!r} is {step!r}")
            continue
        indices = ct._transformer_to_input_indices[name]  # how transform selects by name
        if len(indices) == 0:
            continue
        if np.isscalar(columns):
            raise _Unsupported(f"ColumnTransformer step {name!r} takes one column as 1-D")
        block, out = _plan_block(step, tuple(str(n) for n in ct.feature_names_in_[indices]),
                                 available, bool(ct.sparse_output_), hints)
        blocks.append(block)
        outs.append(out)
    if not blocks:
        raise _Unsupported("the ColumnTransformer outputs no column")
    return _hstack_plan(tuple(blocks), outs, bool(ct.sparse_output_))


def _plan_block(step: Any, names: tuple[str, ...], available: dict[str, np.dtype],
                sparse_output: bool, hints: Hints) -> tuple[Step, Layout]:
    """One ColumnTransformer step on its columns, ending in a matrix the hstack takes."""
    missing = [n for n in names if n not in available]
    if missing:
        raise _Unsupported(f"the ColumnTransformer reads columns not in the schema: {missing}")
    layout = Layout("columns", tuple(available[n] for n in names), names)
    compiled, out = _plan_transformer(step, layout, hints)
    if out.kind == "columns":  # passthrough: numpy of the sub-frame
        compiled, out = Chain((compiled, Stack(out.dtype))), replace(out, kind="dense")
    if out.kind == "sparse" and not sparse_output:
        compiled, out = _densified(compiled), replace(out, kind="dense")
    if sparse_output and out.dtype == OBJECT:  # scikit-learn would make it float first
        raise _Unsupported("an object block in a sparse ColumnTransformer output")
    return Chain((Select(names), compiled)), out


def _densified(step: Step) -> Step:
    """A step ending in a sparse one-hot made to build it dense (ColumnTransformer's toarray)."""
    if isinstance(step, OneHot):
        return replace(step, sparse=False)
    if isinstance(step, Chain) and step.steps:
        return Chain((*step.steps[:-1], _densified(step.steps[-1])))
    raise _Unsupported(f"sparse output of {type(step).__name__}")


def _hstack_plan(blocks: tuple[Step, ...], outs: list[Layout], sparse_output: bool
                 ) -> tuple[Step, Layout]:
    dtype = np.result_type(*(out.dtype for out in outs))
    width = sum(len(out.dtypes) for out in outs)
    names = tuple(n for o in outs for n in o.names or ())
    kind: Kind = "sparse" if sparse_output else "dense"
    return Hstack(blocks, sparse_output), Layout(kind, (dtype,) * width,
                                                  names if len(names) == width else None)


TRANSFORMERS: dict[type, Callable[[Any, Layout, Hints], tuple[Step, Layout]]] = {
    Pipeline: _plan_pipeline,
    FunctionTransformer: _plan_identity,
    StandardScaler: _plan_standard_scaler,
    MinMaxScaler: _plan_min_max_scaler,
    SimpleImputer: _plan_imputer,
    OneHotEncoder: _plan_one_hot,
}


# --- estimators ---------------------------------------------------------------------------

def _plan_estimator(estimator: Any, layout: Layout) -> Step:
    kind = type(estimator)
    if kind not in (*LINEAR_REGRESSORS, LogisticRegression, *OWN_PREDICT):
        raise _Unsupported(f"{kind.__module__}.{kind.__qualname__} is not an estimator it knows")
    _check_plain(estimator)
    if estimator.n_features_in_ != len(layout.dtypes):
        raise _Unsupported(f"{kind.__name__} expects {estimator.n_features_in_} features, the "
                           f"steps before it make {len(layout.dtypes)}")
    if kind in LINEAR_REGRESSORS:
        return LinearRegressor(estimator.coef_, estimator.intercept_)
    if kind is LogisticRegression:
        coef = estimator.coef_
        return LinearClassifier(coef.T if coef.ndim == 2 else coef, estimator.intercept_,
                                 estimator.classes_)
    if hasattr(estimator, "feature_names_in_"):  # an array would make it warn on every call
        raise _Unsupported(f"{kind.__name__} was fitted on a frame")
    if kind in (GradientBoostingClassifier, GradientBoostingRegressor):
        return _plan_boosting(estimator, layout) or OwnPredict(estimator)
    return OwnPredict(estimator)


def _plan_boosting(estimator: Any, layout: Layout) -> Boosted | None:
    """The lean GradientBoosting step for a dense float64 input and a constant prior (the
    default init); None: its own predict."""
    if layout.kind != "dense" or layout.dtype != F64 or not (
            estimator.init_ == "zero" or type(estimator.init_) in (DummyClassifier,
                                                                    DummyRegressor)):
        return None
    width = len(layout.dtypes)
    rows = np.vstack((np.zeros(width), np.ones(width))).astype(np.float32)
    init = estimator._raw_predict_init(rows)  # private, as is predict_stages: the proof checks
    if init.shape[0] != 2 or not np.array_equal(init[0], init[1]):
        return None
    classes = estimator.classes_ if type(estimator) is GradientBoostingClassifier else None
    return Boosted(estimator.estimators_, float(estimator.learning_rate), init[:1].copy(),
                   classes)
