"""Drift statistics equal scipy's on a fixed dataset; the decision needs both a corrected
p-value and an effect; bad columns are named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlc_tasks.drift import benjamini_hochberg, categorical_drift, drift_report, numeric_drift
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.scoring import Column

SCHEMA = [Column(name="income", dtype="float"), Column(name="age", dtype="int"),
          Column(name="region", dtype="str")]


def frames(shift: float = 0.0, rows: int = 2000, seed: int = 1) -> tuple[pd.DataFrame, ...]:
    rng = np.random.default_rng(seed)

    def frame(delta: float, weights: list[float]) -> pd.DataFrame:
        return pd.DataFrame({
            "income": rng.normal(50_000 + delta * 10_000, 10_000, rows),
            "age": rng.integers(20, 70, rows) + int(delta * 5),
            "region": rng.choice(["north", "south", "east"], rows, p=weights)})

    return frame(0, [0.5, 0.3, 0.2]), frame(shift, [0.5 - shift / 4, 0.3, 0.2 + shift / 4])


def test_statistics_equal_scipy() -> None:
    reference, current = frames(shift=0.5)
    ks, p, effect = numeric_drift(reference["income"].to_numpy(), current["income"].to_numpy())
    expected = stats.ks_2samp(reference["income"], current["income"])
    assert ks == pytest.approx(expected.statistic, abs=1e-9)
    assert p == pytest.approx(expected.pvalue, abs=1e-9)
    assert effect == pytest.approx(stats.wasserstein_distance(
        reference["income"], current["income"]) / np.std(reference["income"]), abs=1e-9)

    _, _, distance = categorical_drift(reference["region"], current["region"])
    ref = reference["region"].value_counts().reindex(["east", "north", "south"]).to_numpy()
    cur = current["region"].value_counts().reindex(["east", "north", "south"]).to_numpy()
    assert distance == pytest.approx(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2),
                                     abs=1e-9)


def test_bh_correction_equals_scipy() -> None:
    p = [0.001, 0.02, 0.03, 0.5, 0.04]
    assert benjamini_hochberg(p) == pytest.approx(
        list(stats.false_discovery_control(p, method="bh")), abs=1e-12)


def test_no_drift_is_not_flagged_and_a_shift_is() -> None:
    assert not drift_report(*frames(shift=0.0), SCHEMA).drifted
    shifted = drift_report(*frames(shift=1.0), SCHEMA)
    assert shifted.drifted and {c.column for c in shifted.columns if c.drifted} == {
        "income", "age", "region"}


def test_a_tiny_shift_in_a_huge_sample_is_significant_but_not_drift() -> None:
    report = drift_report(*frames(shift=0.05, rows=200_000), SCHEMA)
    income = next(c for c in report.columns if c.column == "income")
    assert income.adjusted_p_value < 0.05 and income.effect < 0.1 and not income.drifted


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["age"]), "current data: column 'age' is missing"),
    (lambda f: f.assign(income=np.nan), "current data: column 'income' has no values"),
    (lambda f: f.assign(income="lots"), "column 'income' expects numbers"),
])
def test_bad_current_data_names_the_column(change, message: str) -> None:
    reference, current = frames()
    with pytest.raises(InvalidInputError, match=message):
        drift_report(reference, change(current), SCHEMA)
