"""The compiled steps of a lean predict path (mlc_tasks/fast_predict.py plans them): each does
what one scikit-learn step does to its input, with the same numpy operations in the same order
on arrays of the same dtype and memory order, so the numbers come out identical."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.ensemble._gradient_boosting import predict_stages  # GradientBoosting's own loop

from mlc_tasks.errors import SchemaMismatchError

Columns = Mapping[str, np.ndarray]
Step = Callable[[Any], Any]
F64 = np.dtype(np.float64)
OBJECT = np.dtype(object)
UNKNOWN, DROPPED = -1, -2  # one-hot codes of a category not seen in fit, and of a dropped one
SHOWN_CATEGORIES = 10


@dataclass(frozen=True, eq=False)
class Chain:
    """Steps one after the other (no step: the identity)."""

    steps: tuple[Step, ...]

    def __call__(self, value: Any) -> Any:
        for step in self.steps:
            value = step(value)
        return value


@dataclass(frozen=True, eq=False)
class Select:
    """The named columns, as the frame's columns a step reads."""

    names: tuple[str, ...]

    def __call__(self, columns: Columns) -> tuple[np.ndarray, ...]:
        return tuple(columns[name] for name in self.names)


@dataclass(frozen=True, eq=False)
class Stack:
    """Columns side by side as `np.asarray(frame)` makes them: a new array, in column order
    (Fortran), since a linear model's matrix product rounds differently in the other order."""

    dtype: np.dtype

    def __call__(self, columns: tuple[np.ndarray, ...]) -> np.ndarray:
        out = np.empty((len(columns[0]), len(columns)), dtype=self.dtype, order="F")
        for number, values in enumerate(columns):
            out[:, number] = values
        return out


@dataclass(frozen=True, eq=False)
class Split:
    """A matrix's columns one by one, as OneHotEncoder reads an array."""

    def __call__(self, matrix: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(matrix[:, number] for number in range(matrix.shape[1]))


@dataclass(frozen=True, eq=False)
class AsType:
    """A copy in another dtype, memory order kept (what validation's conversion makes)."""

    dtype: np.dtype

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        return matrix.astype(self.dtype)


@dataclass(frozen=True, eq=False)
class Standardize:
    """StandardScaler.transform on a new float64 matrix: subtract, then divide, in place."""

    mean: np.ndarray | None
    scale: np.ndarray | None

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        if self.mean is not None:
            matrix -= self.mean
        if self.scale is not None:
            matrix /= self.scale
        return matrix


@dataclass(frozen=True, eq=False)
class MinMax:
    """MinMaxScaler.transform on a new float64 matrix: multiply, add, clip, in place."""

    scale: np.ndarray
    offset: np.ndarray
    clip: tuple[float, float] | None

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        matrix *= self.scale
        matrix += self.offset
        if self.clip is not None:
            np.clip(matrix, self.clip[0], self.clip[1], out=matrix)
        return matrix


@dataclass(frozen=True, eq=False)
class OneHot:
    """OneHotEncoder.transform: each value's output column from a dict (as scikit-learn's own
    lookup for object columns), unknown values all zeros or an error naming the column."""

    tables: tuple[dict[Any, int], ...]
    offsets: np.ndarray
    width: int
    dtype: np.dtype
    sparse: bool
    refuse_unknown: bool
    names: tuple[str, ...] | None
    categories: tuple[np.ndarray, ...]

    def __call__(self, columns: tuple[np.ndarray, ...]) -> Any:
        rows = len(columns[0])
        codes = np.empty((rows, len(columns)), dtype=np.intp)
        for number, (values, table) in enumerate(zip(columns, self.tables, strict=True)):
            get = table.get
            codes[:, number] = [get(v, UNKNOWN) for v in values.tolist()]
        if self.refuse_unknown and (codes == UNKNOWN).any():
            raise self._unknown(columns, codes)
        kept = codes >= 0
        cells = (codes + self.offsets)[kept]
        if self.sparse:
            indptr = np.concatenate(([0], np.cumsum(kept.sum(axis=1))))
            return sparse.csr_matrix((np.ones(len(cells), dtype=self.dtype), cells, indptr),
                                     shape=(rows, self.width))
        out = np.zeros((rows, self.width), dtype=self.dtype)
        out[np.nonzero(kept)[0], cells] = 1
        return out

    def _unknown(self, columns: tuple[np.ndarray, ...], codes: np.ndarray
                 ) -> SchemaMismatchError:
        number = int(np.nonzero((codes == UNKNOWN).any(axis=0))[0][0])
        name = self.names[number] if self.names else f"feature {number}"
        found = dict.fromkeys(columns[number][codes[:, number] == UNKNOWN].tolist())
        known = self.categories[number].tolist()
        more = f" … ({len(known)} in all)" if len(known) > SHOWN_CATEGORIES else ""
        return SchemaMismatchError(
            name, f"column '{name}': unknown categor{'ies' if len(found) > 1 else 'y'} "
                  f"{', '.join(shown(v) for v in list(found)[:3])}"
                  f"{' …' if len(found) > 3 else ''}; the model knows "
                  f"{', '.join(shown(v) for v in known[:SHOWN_CATEGORIES])}{more}")


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}…({len(text)} characters)"


@dataclass(frozen=True, eq=False)
class Hstack:
    """ColumnTransformer's hstack of its steps' outputs: numpy's, or scipy's to CSR."""

    blocks: tuple[Step, ...]
    sparse: bool

    def __call__(self, columns: Columns) -> Any:
        parts = [block(columns) for block in self.blocks]
        if self.sparse:
            return sparse.hstack(parts).tocsr()
        return np.hstack(parts)


def check_finite(matrix: Any) -> None:
    """What the estimator's own validation refuses (object input it would make float first)."""
    values = matrix.data if sparse.issparse(matrix) else matrix
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        raise ValueError("Input X contains infinity, NaN or a value too large for "
                         f"{values.dtype} after the model's preprocessing")


@dataclass(frozen=True, eq=False)
class LinearRegressor:
    """LinearModel.predict: `X @ coef_ + intercept_`, the same expression on the same array."""

    coef: np.ndarray
    intercept: Any

    def __call__(self, matrix: Any) -> np.ndarray:
        matrix = matrix.astype(F64) if matrix.dtype == OBJECT else matrix
        check_finite(matrix)
        if self.coef.ndim == 1:
            return np.asarray(matrix @ self.coef + self.intercept)
        return np.asarray(matrix @ self.coef.T + self.intercept)


@dataclass(frozen=True, eq=False)
class LinearClassifier:
    """LinearClassifierMixin.predict: scores `X @ coef_.T + intercept_`, then the class."""

    coef_t: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray

    def __call__(self, matrix: Any) -> np.ndarray:
        matrix = matrix.astype(F64) if matrix.dtype == OBJECT else matrix
        check_finite(matrix)
        scores = np.asarray(matrix @ self.coef_t + self.intercept)
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        if scores.ndim == 1:
            indices = (scores > 0).astype(np.int64)
        else:
            indices = scores.argmax(axis=1)
        return np.take(self.classes, indices, axis=0)


@dataclass(frozen=True, eq=False)
class OwnPredict:
    """A tree model's own predict, on the matrix the pipeline would have given it."""

    estimator: Any

    def __call__(self, matrix: Any) -> np.ndarray:
        return np.asarray(self.estimator.predict(matrix))


@dataclass(frozen=True, eq=False)
class Boosted:
    """GradientBoosting's predict without its validation around it: the input as float32 (C
    order) refused if not finite, the prior's raw score (the same for every row), every stage's
    trees added by scikit-learn's own `predict_stages`, then the class or the value."""

    estimators: np.ndarray
    learning_rate: float
    init: np.ndarray  # (1, K) raw score of the prior
    classes: np.ndarray | None  # None: a regressor

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(matrix, dtype=np.float32)
        if not np.isfinite(x).all():
            raise ValueError("Input X contains infinity, NaN or a value too large for float32 "
                             "after the model's preprocessing")
        raw = np.repeat(self.init, len(x), axis=0)
        predict_stages(self.estimators, x, self.learning_rate, raw)
        if self.classes is None:
            return raw.ravel()
        if raw.shape[1] == 1:
            return self.classes[(raw.ravel() >= 0).astype(int)]
        return self.classes[np.argmax(raw, axis=1)]
