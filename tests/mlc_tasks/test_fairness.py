"""Fairness metrics equal fairlearn's on a fixed dataset; small groups are never a pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from mlc_tasks.fairness import Outcome, fairness


def data(rows: int = 3000, bias: float = 0.0, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["f", "m", "x"], rows, p=[0.45, 0.45, 0.1])
    truth = rng.integers(0, 2, rows)
    guess = np.where(rng.random(rows) < 0.8, truth, 1 - truth)
    guess = np.where((group == "f") & (rng.random(rows) < bias), 0, guess)
    return pd.DataFrame({"group": group, "y": truth, "p": guess})


def test_metrics_equal_fairlearn() -> None:
    frame = data(bias=0.3)
    result = fairness("group", frame["y"], frame["p"], frame["group"])
    kwargs = {"sensitive_features": frame["group"]}
    assert result.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(frame["y"], frame["p"], **kwargs), abs=1e-9)
    assert result.disparate_impact_ratio == pytest.approx(
        demographic_parity_ratio(frame["y"], frame["p"], **kwargs), abs=1e-9)
    assert result.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(frame["y"], frame["p"], **kwargs), abs=1e-9)
    by_group = MetricFrame(metrics={"sel": selection_rate, "tpr": true_positive_rate,
                                    "fpr": false_positive_rate},
                           y_true=frame["y"], y_pred=frame["p"], **kwargs).by_group
    for rates in result.groups:
        assert rates.selection_rate == pytest.approx(by_group.loc[rates.group, "sel"], abs=1e-9)
        assert rates.true_positive_rate == pytest.approx(by_group.loc[rates.group, "tpr"],
                                                         abs=1e-9)
        assert rates.false_positive_rate == pytest.approx(by_group.loc[rates.group, "fpr"],
                                                          abs=1e-9)


def test_fair_passes_and_biased_breaches() -> None:
    fair = data()
    assert fairness("group", fair["y"], fair["p"], fair["group"]).outcome == Outcome.PASS
    biased = data(bias=0.5)
    result = fairness("group", biased["y"], biased["p"], biased["group"])
    assert result.outcome == Outcome.BREACH
    assert any("disparate-impact ratio" in r for r in result.reasons)


def test_a_small_group_is_insufficient_data_with_its_counts() -> None:
    frame = data(rows=300)  # group x has about 30 rows
    frame = frame[~((frame["group"] == "x") & (frame.index % 2 == 0))]
    result = fairness("group", frame["y"], frame["p"], frame["group"])
    assert result.outcome == Outcome.INSUFFICIENT
    [reason] = result.reasons
    assert reason.startswith("group 'x': ") and "rows" in reason and "positives" in reason


def test_rows_without_the_attribute_belong_to_no_group() -> None:
    frame = data()
    frame["group"] = frame["group"].astype(object)
    frame.loc[frame.index[:40], "group"] = None
    result = fairness("group", frame["y"], frame["p"], frame["group"])
    assert [g.group for g in result.groups] == ["f", "m", "x"]
    assert result.outcome == Outcome.PASS
