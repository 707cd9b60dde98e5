"""Fairness of a classifier for one sensitive attribute: per group the selection rate, true
positive rate and false positive rate; across groups the demographic parity difference, the
disparate-impact ratio (four-fifths rule) and the equalized-odds difference (the larger of the
TPR and FPR gaps, as fairlearn defines it). A group too small to measure gives "insufficient
data" with the counts — never a pass."""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.errors import InvalidInputError


class FairnessSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_group_rows: int = Field(default=30, ge=1)
    min_group_labels: int = Field(default=5, ge=1)  # positives and negatives each (TPR, FPR)
    max_parity_difference: float = 0.1
    min_impact_ratio: float = 0.8       # the four-fifths rule
    max_equalized_odds_difference: float = 0.1


class Outcome(StrEnum):
    PASS = "pass"
    BREACH = "breach"
    INSUFFICIENT = "insufficient data"


class GroupRates(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str
    rows: int
    positives: int
    negatives: int
    selection_rate: float
    true_positive_rate: float | None
    false_positive_rate: float | None


class FairnessResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attribute: str
    groups: list[GroupRates]
    demographic_parity_difference: float | None
    disparate_impact_ratio: float | None
    equalized_odds_difference: float | None
    outcome: Outcome
    reasons: list[str]


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray) -> list[GroupRates]:
    rates = []
    for group in sorted(pd.unique(groups), key=str):
        member = groups == group
        truth, guess = y_true[member], y_pred[member]
        positives, negatives = int((truth == 1).sum()), int((truth == 0).sum())
        rates.append(GroupRates(
            group=str(group), rows=int(member.sum()), positives=positives, negatives=negatives,
            selection_rate=float((guess == 1).mean()),
            true_positive_rate=float((guess[truth == 1] == 1).mean()) if positives else None,
            false_positive_rate=float((guess[truth == 0] == 1).mean()) if negatives else None))
    return rates


def fairness(attribute: str, y_true: pd.Series, y_pred: pd.Series, sensitive: pd.Series,
             settings: FairnessSettings | None = None) -> FairnessResult:
    """Group rates and the three gaps, judged against the settings."""
    settings = settings or FairnessSettings()
    if sensitive.isna().all():
        raise InvalidInputError(f"sensitive attribute '{attribute}' has no values")
    known = sensitive.notna().to_numpy()  # a row without the attribute belongs to no group
    rates = group_rates(np.asarray(y_true)[known], np.asarray(y_pred)[known],
                        sensitive[known].astype(str).to_numpy())
    small = [f"group '{g.group}': {g.rows} rows, {g.positives} positives, {g.negatives} "
             f"negatives" for g in rates
             if g.rows < settings.min_group_rows or min(g.positives, g.negatives)
             < settings.min_group_labels]
    selection = [g.selection_rate for g in rates]
    dpd = max(selection) - min(selection) if len(rates) > 1 else None
    ratio = (min(selection) / max(selection) if max(selection) else 1.0) if len(rates) > 1 \
        else None
    eod = _equalized_odds(rates)
    if len(rates) < 2:
        small.append(f"only one group ({rates[0].group})")
    if small or eod is None:
        return FairnessResult(attribute=attribute, groups=rates,
                              demographic_parity_difference=dpd, disparate_impact_ratio=ratio,
                              equalized_odds_difference=eod, outcome=Outcome.INSUFFICIENT,
                              reasons=small)
    assert dpd is not None and ratio is not None and eod is not None
    breaches = [text for failed, text in [
        (dpd > settings.max_parity_difference,
         f"demographic parity difference {dpd:.3f} > {settings.max_parity_difference}"),
        (ratio < settings.min_impact_ratio,
         f"disparate-impact ratio {ratio:.3f} < {settings.min_impact_ratio}"),
        (eod > settings.max_equalized_odds_difference,
         f"equalized-odds difference {eod:.3f} > {settings.max_equalized_odds_difference}"),
    ] if failed]
    return FairnessResult(attribute=attribute, groups=rates, demographic_parity_difference=dpd,
                          disparate_impact_ratio=ratio, equalized_odds_difference=eod,
                          outcome=Outcome.BREACH if breaches else Outcome.PASS,
                          reasons=breaches)


def _equalized_odds(rates: list[GroupRates]) -> float | None:
    tpr = [g.true_positive_rate for g in rates]
    fpr = [g.false_positive_rate for g in rates]
    if len(rates) < 2 or None in tpr or None in fpr:
        return None
    return max(max(tpr) - min(tpr), max(fpr) - min(fpr))  # type: ignore[type-var,operator]
