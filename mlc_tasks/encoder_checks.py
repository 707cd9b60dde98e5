"""Whether a loaded encoder's categories, a classifier's classes and a discretizer's bin edges
can be searched safely.

scikit-learn finds a number's code with np.searchsorted in these arrays, which is right only if
they are in increasing order; a OneHotEncoder then builds a sparse matrix from the codes whose
width comes from `_n_features_outs`, which scipy does not check against the codes. Unsorted
categories, or block widths that do not fit the categories, make it write past the matrix it
allocates. These checks hold the arrays to what fitting leaves (np.unique's order, missing values
last) and raise UnsafeArtifactError with what is wrong; mlc_tasks/artifact_checks.py names the
artifact and the place.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder
from sklearn.preprocessing._encoders import _BaseEncoder

from mlc_tasks.errors import UnsafeArtifactError


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_increasing(values: Any, what: str, missing_last: bool = False) -> None:
    """Strictly increasing, as np.unique and sorted() leave them; `missing_last`: then at most
    one None and one NaN at the end, where scikit-learn's encoders put them."""
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        raise UnsafeArtifactError(f"{what} is not a 1-D array")
    if values.dtype == object:
        missing = [_is_missing(v) for v in values]
        kept = len(missing) - sum(missing)
        tail = [v is None for v in values[kept:]]
        if any(missing[:kept]) or len(set(tail)) != len(tail) or (tail and not missing_last):
            raise UnsafeArtifactError(f"{what} has missing values other than once each at its "
                                      "end")
        values = values[:kept]
    elif values.dtype.kind == "f":
        nan = np.isnan(values)
        if nan.any() and (not missing_last or nan.sum() > 1 or not nan[-1]):
            raise UnsafeArtifactError(f"{what} has NaN other than once at its end")
        values = values[~nan]
    if values.size > 1:
        rising = np.asarray(values[1:] > values[:-1], dtype=bool)  # object arrays: Python <
        if not rising.all():
            at = int(np.flatnonzero(~rising)[0])
            raise UnsafeArtifactError(f"{what} is not in increasing order: {_show(values[at])} "
                                      f"at {at}, then {_show(values[at + 1])}")


def _show(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)[:40]


def _searched(values: np.ndarray) -> bool:
    """Whether scikit-learn may look a value up in `values` by binary search: numbers, or an
    object array of numbers (a numeric input column meets them). Strings are looked up in a
    dict, and a person may give string categories in their own order."""
    if values.dtype.kind in "biuf":
        return True
    if values.dtype != object:
        return False
    kinds = {isinstance(v, str) for v in values if not _is_missing(v)}
    if len(kinds) > 1:
        raise UnsafeArtifactError("mixes strings with other values")
    return kinds == {False}


def check_categories(encoder: _BaseEncoder) -> None:
    """OneHotEncoder, OrdinalEncoder: one 1-D array of categories per column, numbers in order."""
    categories = vars(encoder).get("categories_")
    if categories is None:
        return
    if not isinstance(categories, list) or len(categories) != encoder.n_features_in_:
        raise UnsafeArtifactError(f"categories_ is not a list of {encoder.n_features_in_} arrays")
    for number, values in enumerate(categories):
        what = f"categories_[{number}]"
        if not isinstance(values, np.ndarray) or values.ndim != 1 or not values.size:
            raise UnsafeArtifactError(f"{what} is not a 1-D array of categories")
        try:
            searched = _searched(values)
        except UnsafeArtifactError as exc:
            raise UnsafeArtifactError(f"{what} {exc}") from exc
        if searched:
            _check_increasing(values, what, missing_last=True)


def check_one_hot(encoder: OneHotEncoder) -> None:
    """The codes a column's categories turn into (after infrequent grouping and drop) stay in
    that column's block of `_n_features_outs`, which sizes the sparse matrix built from them."""
    if "categories_" not in vars(encoder):
        return
    categories = encoder.categories_
    outs = encoder._n_features_outs  # private: the block widths transform uses
    drops = encoder._drop_idx_after_grouping
    if not isinstance(outs, list) or len(outs) != len(categories) or (
            drops is not None and len(drops) != len(categories)):
        raise UnsafeArtifactError("_n_features_outs or the dropped categories do not give one "
                                  "entry per column")
    grouping = bool(getattr(encoder, "_infrequent_enabled", False))
    for number, values in enumerate(categories):
        groups = _grouped_codes(encoder, number, len(values)) if grouping else len(values)
        drop = None if drops is None else drops[number]
        if drop is not None and not (isinstance(drop, numbers.Integral) and 0 <= drop < groups):
            raise UnsafeArtifactError(f"column {number} drops code {drop!r} of {groups}")
        expected = groups - (drop is not None)
        if not isinstance(outs[number], numbers.Integral) or outs[number] != expected:
            raise UnsafeArtifactError(f"column {number} makes {outs[number]!r} output columns; "
                                      f"its categories make {expected}")


def _grouped_codes(encoder: OneHotEncoder, number: int, count: int) -> int:
    """How many codes column `number` has once infrequent categories are grouped; the mapping
    must send each category to one of them."""
    rare = encoder._infrequent_indices[number]  # private, as in transform
    mapping = encoder._default_to_infrequent_mappings[number]
    if rare is None:
        return count
    rare = np.asarray(rare)
    if rare.ndim != 1 or not rare.size or rare.dtype.kind not in "iu" or not (
            0 <= rare.min() and rare.max() < count):
        raise UnsafeArtifactError(f"column {number}'s infrequent categories are not among its "
                                  f"{count}")
    groups = count - rare.size + 1
    mapping = np.asarray(mapping)
    if mapping.shape != (count,) or mapping.dtype.kind not in "iu" or not (
            0 <= mapping.min() and mapping.max() < groups):
        raise UnsafeArtifactError(f"column {number}'s infrequent mapping is not {count} codes "
                                  f"below {groups}")
    return groups


def check_bins(discretizer: KBinsDiscretizer) -> None:
    """Bin edges, searched with np.searchsorted: n_bins_ + 1 of them per column, in order."""
    edges = vars(discretizer).get("bin_edges_")
    if edges is None:
        return
    counts = np.asarray(discretizer.n_bins_)
    width = discretizer.n_features_in_
    if counts.shape != (width,) or len(edges) != width:
        raise UnsafeArtifactError(f"bin_edges_ and n_bins_ are not {width} columns")
    for number, column in enumerate(edges):
        what = f"bin_edges_[{number}]"
        if not isinstance(column, np.ndarray) or column.dtype.kind != "f" or (
                column.shape != (counts[number] + 1,)):
            raise UnsafeArtifactError(f"{what} is not {counts[number] + 1} float edges")
        if np.isnan(column).any() or (column[1:] < column[:-1]).any():
            raise UnsafeArtifactError(f"{what} is not in increasing order")


def check_classes(model: Any) -> None:
    """classes_ as np.unique leaves them (LabelEncoder searches them; every classifier has them
    so): distinct and increasing, one array per output."""
    classes = vars(model).get("classes_")
    if classes is None:
        return
    for number, values in enumerate(classes if isinstance(classes, list) else [classes]):
        what = "classes_" if not isinstance(classes, list) else f"classes_[{number}]"
        if isinstance(values, np.ndarray) and values.dtype == object:
            try:
                _searched(values)
            except UnsafeArtifactError as exc:
                raise UnsafeArtifactError(f"{what} {exc}") from exc
        _check_increasing(values, what)
