"""Data drift per column between a reference (the version's training data) and current data
(recent scoring inputs): a test with its p-value, an effect size beside it, and a
Benjamini-Hochberg correction across columns. A column drifts only when the corrected p-value
is below alpha *and* the effect is at least the minimum — with a million rows every tiny shift
is "significant", and with fifty rows a large one may not be.

Numeric columns: two-sample Kolmogorov-Smirnov (p-value) and the Wasserstein distance divided
by the reference's standard deviation (effect). Categorical columns: the chi-square test of
homogeneity on the 2×k table of counts (not the goodness-of-fit test Evidently calls
`chisquare`, which treats the reference as exact and raises false alarms) and the
Jensen-Shannon distance in bits (effect)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.scoring import Column


class DriftSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alpha: float = 0.05
    min_numeric_effect: float = 0.1     # Wasserstein distance in reference standard deviations
    min_categorical_effect: float = 0.1  # Jensen-Shannon distance, bits
    drifted_share: float = 0.5          # the dataset drifts when this share of columns does


class ColumnDrift(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float
    adjusted_p_value: float
    effect_name: str
    effect: float
    drifted: bool
    reference_rows: int
    current_rows: int


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: list[ColumnDrift]
    share_drifted: float
    drifted: bool


def numeric_drift(reference: np.ndarray, current: np.ndarray) -> tuple[float, float, float]:
    """(KS statistic, p-value, Wasserstein distance / reference std)."""
    ks = stats.ks_2samp(reference, current)
    scale = float(np.std(reference)) or 1.0
    return float(ks.statistic), float(ks.pvalue), float(
        stats.wasserstein_distance(reference, current) / scale)


def categorical_drift(reference: pd.Series, current: pd.Series) -> tuple[float, float, float]:
    """(chi-square statistic, p-value, Jensen-Shannon distance in bits)."""
    categories = sorted(set(reference.unique()) | set(current.unique()), key=str)
    ref_counts = reference.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    cur_counts = current.value_counts().reindex(categories, fill_value=0).to_numpy(float)
    if len(categories) < 2:
        return 0.0, 1.0, 0.0
    chi2 = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)
    distance = jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2)
    return float(chi2.statistic), float(chi2.pvalue), float(distance)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Adjusted p-values controlling the false discovery rate across the columns tested."""
    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(p_values, method="bh")]


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, schema: list[Column],
                 settings: DriftSettings | None = None) -> DriftReport:
    """Drift of every schema column; a missing or all-empty column is an error naming it."""
    settings = settings or DriftSettings()
    raw = [_column(reference, current, column) for column in schema]
    adjusted = benjamini_hochberg([r[3] for r in raw])
    columns = []
    for (name, kind, statistic, p_value, effect, n_ref, n_cur), p_adj in zip(raw, adjusted,
                                                                            strict=True):
        minimum = (settings.min_numeric_effect if kind == "numeric"
                   else settings.min_categorical_effect)
        columns.append(ColumnDrift(
            column=name, kind=kind, test="ks" if kind == "numeric" else "chi2_homogeneity",
            statistic=statistic, p_value=p_value, adjusted_p_value=p_adj,
            effect_name="wasserstein_std" if kind == "numeric" else "jensen_shannon",
            effect=effect, drifted=p_adj < settings.alpha and effect >= minimum,
            reference_rows=n_ref, current_rows=n_cur))
    share = sum(c.drifted for c in columns) / len(columns) if columns else 0.0
    return DriftReport(columns=columns, share_drifted=share,
                       drifted=bool(columns) and share >= settings.drifted_share)


def _column(reference: pd.DataFrame, current: pd.DataFrame, column: Column
            ) -> tuple[str, str, float, float, float, int, int]:
    values = []
    for name, frame in (("reference", reference), ("current", current)):
        if column.name not in frame.columns:
            raise InvalidInputError(f"{name} data: column '{column.name}' is missing")
        present = frame[column.name].dropna()
        if present.empty:
            raise InvalidInputError(f"{name} data: column '{column.name}' has no values")
        values.append(present)
    ref, cur = values
    if column.dtype in ("float", "int"):
        try:
            ref_num, cur_num = ref.to_numpy(float), cur.to_numpy(float)
        except ValueError as exc:
            raise InvalidInputError(f"column '{column.name}' expects numbers: {exc}") from exc
        return column.name, "numeric", *numeric_drift(ref_num, cur_num), len(ref), len(cur)
    return (column.name, "categorical", *categorical_drift(ref.astype(str), cur.astype(str)),
            len(ref), len(cur))
