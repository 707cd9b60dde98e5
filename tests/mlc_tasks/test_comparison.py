"""Champion/challenger statistics equal the references (scipy's tests, sklearn's metrics, a
brute-force DeLong, a naive bootstrap loop on the same indices); the decision table; the
package's own metrics resampled in their subprocess on the same rows."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats
from sklearn import metrics as skm

from mlc_tasks import comparison
from mlc_tasks.comparison import (
    ComparisonSettings,
    Outcome,
    Scored,
    bootstrap_indices,
    bootstrap_samples,
    compare,
    comparison_markdown,
    comparison_table,
    delong,
    delong_covariance,
    from_samples,
    mcnemar,
    own_tests,
    paired_bootstrap,
)
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.package_metrics import PackageCode, run_metrics_bootstrap

CREDIT_METRICS = Path(__file__).parents[2] / "examples" / "credit-risk" / "metrics.py"


def classifiers(rows: int, gap_champion: float = 0.74, gap_challenger: float = 1.19,
                seed: int = 1) -> tuple[np.ndarray, Scored, Scored]:
    """Labels and two correlated scorers; AUC ≈ Φ(gap / √2): 0.70 and 0.80 by default."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.3).astype(int)
    shared = rng.normal(size=rows)

    def model(gap: float) -> Scored:
        score = 1 / (1 + np.exp(-(gap * y + 0.7 * shared + 0.7 * rng.normal(size=rows) - 1)))
        return Scored(pred=(score >= 0.5).astype(int), score=score)

    return y, model(gap_champion), model(gap_challenger)


def regressors(rows: int, noise_champion: float, noise_challenger: float, seed: int = 2
               ) -> tuple[np.ndarray, Scored, Scored]:
    rng = np.random.default_rng(seed)
    y = rng.normal(100, 20, rows)
    return (y, Scored(pred=y + rng.normal(0, noise_champion, rows)),
            Scored(pred=y + rng.normal(0, noise_challenger, rows)))


# ---- McNemar --------------------------------------------------------------------------------

def discordant(b: int, c: int, agree: int = 30) -> tuple[np.ndarray, ...]:
    """Rows where only the champion is right (b), only the challenger (c), both (agree)."""
    y = np.ones(b + c + agree, dtype=int)
    champion = np.r_[np.ones(b), np.zeros(c), np.ones(agree)].astype(int)
    challenger = np.r_[np.zeros(b), np.ones(c), np.ones(agree)].astype(int)
    return y, champion, challenger


@pytest.mark.parametrize(("b", "c"), [
    (3, 9), (0, 6), (9, 15), (10, 15), (12, 12), (40, 70), (70, 40), (200, 260)])
def test_mcnemar_equals_scipy(b: int, c: int) -> None:
    test = mcnemar(*discordant(b, c))
    expected = (stats.binomtest(c, b + c, 0.5).pvalue if b + c < 25
                else stats.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1))
    assert test.p_value == pytest.approx(expected, rel=1e-12)
    assert (test.detail["b"], test.detail["c"]) == (b, c)
    assert test.improvement == pytest.approx((c - b) / (b + c + 30))
    assert test.ci_low < test.improvement < test.ci_high


def test_mcnemar_without_discordant_rows_is_p_one() -> None:
    assert mcnemar(*discordant(0, 0)).p_value == 1.0


# ---- DeLong ---------------------------------------------------------------------------------

def brute_force_delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong (1988) from explicit pairwise placement values, O(m·n)."""
    positives, negatives = scores[:, y == 1], scores[:, y == 0]
    psi = ((positives[:, :, None] > negatives[:, None, :])
           + 0.5 * (positives[:, :, None] == negatives[:, None, :]))  # k × m × n
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    covariance = np.cov(v10) / positives.shape[1] + np.cov(v01) / negatives.shape[1]
    return psi.mean(axis=(1, 2)), covariance


def test_delong_equals_brute_force_and_sklearn_with_ties() -> None:
    y, champion, challenger = classifiers(300, seed=5)
    scores = np.round(np.vstack([champion.score, challenger.score]), 1)  # many ties
    aucs, covariance = delong_covariance(scores[:, y == 1], scores[:, y == 0])
    expected_aucs, expected_covariance = brute_force_delong(y, scores)
    assert aucs == pytest.approx(expected_aucs, abs=1e-12)
    assert aucs == pytest.approx([skm.roc_auc_score(y, s) for s in scores], abs=1e-12)
    assert covariance == pytest.approx(expected_covariance, abs=1e-14)

    test = delong(y, scores[0], scores[1])
    variance = (expected_covariance[0, 0] + expected_covariance[1, 1]
                - 2 * expected_covariance[0, 1])
    z = (expected_aucs[1] - expected_aucs[0]) / math.sqrt(variance)
    assert test.detail["z"] == pytest.approx(z, rel=1e-9)
    assert test.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    assert test.ci_high - test.improvement == pytest.approx(1.959964 * math.sqrt(variance),
                                                            rel=1e-6)


def test_delong_on_identical_scores_is_p_one() -> None:
    y, champion, _ = classifiers(400)
    test = delong(y, champion.score, champion.score.copy())
    assert (test.p_value, test.improvement, test.ci_low, test.ci_high) == (1.0, 0.0, 0.0, 0.0)


# ---- paired bootstrap -----------------------------------------------------------------------

NAIVE = {
    "accuracy": lambda y, m: skm.accuracy_score(y, m.pred),
    "precision": lambda y, m: skm.precision_score(y, m.pred, zero_division=0),
    "recall": lambda y, m: skm.recall_score(y, m.pred, zero_division=0),
    "f1": lambda y, m: skm.f1_score(y, m.pred, zero_division=0),
    "log_loss": lambda y, m: skm.log_loss(y, m.score, labels=[0, 1]),
    "mae": lambda y, m: skm.mean_absolute_error(y, m.pred),
    "rmse": lambda y, m: math.sqrt(skm.mean_squared_error(y, m.pred)),
    "r2": lambda y, m: skm.r2_score(y, m.pred),
}


def take(model: Scored, rows: np.ndarray) -> Scored:
    return Scored(pred=model.pred[rows], score=None if model.score is None else model.score[rows])


@pytest.mark.parametrize("metric", sorted(NAIVE))
def test_bootstrap_equals_a_naive_loop_on_the_same_indices(metric: str) -> None:
    y, champion, challenger = (regressors(400, 12, 10) if metric in ("mae", "rmse", "r2")
                               else classifiers(400))
    full, samples = bootstrap_samples(metric, y, champion, challenger, resamples=150, seed=3)
    naive = np.array([[NAIVE[metric](y[rows], take(m, rows)) for m in (champion, challenger)]
                      for rows in bootstrap_indices(len(y), 150, 3)])
    assert full == pytest.approx([NAIVE[metric](y, m) for m in (champion, challenger)],
                                 rel=1e-9, abs=1e-12)
    assert samples == pytest.approx(naive, rel=1e-9, abs=1e-12)
    test = paired_bootstrap(metric, y, champion, challenger, resamples=150, seed=3)
    sign = 1 if comparison.DIRECTIONS[metric] == "higher" else -1
    low, high = np.quantile(sign * (naive[:, 1] - naive[:, 0]), [0.025, 0.975])
    assert (test.ci_low, test.ci_high) == pytest.approx((low, high), rel=1e-9, abs=1e-12)


def test_r2_of_large_values_keeps_its_precision() -> None:
    y, champion, challenger = regressors(400, 12, 10)
    offset = 1e9  # a naive sum of squares minus the squared sum would lose every digit
    shifted = [Scored(pred=m.pred + offset) for m in (champion, challenger)]
    _, samples = bootstrap_samples("r2", y + offset, *shifted, resamples=50, seed=1)
    assert samples == pytest.approx(bootstrap_samples("r2", y, champion, challenger, 50, 1)[1],
                                    abs=1e-6)


def test_blocks_of_resamples_are_the_same_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    y, champion, challenger = classifiers(301)
    whole = bootstrap_samples("f1", y, champion, challenger, resamples=120, seed=9)[1]
    monkeypatch.setattr(comparison, "BLOCK_BYTES", 301 * comparison.BYTES_PER_CELL * 7)
    assert np.concatenate(list(comparison._index_blocks(301, 120, 9))) == pytest.approx(
        bootstrap_indices(301, 120, 9))
    assert np.array_equal(bootstrap_samples("f1", y, champion, challenger, 120, 9)[1], whole)


@pytest.mark.parametrize(("improvements", "p_value"), [
    ([0.1] * 99, 1 / 100),         # every resample better: the floor
    ([0.0] * 99, 1.0),             # no difference at all
    ([-0.1] * 9 + [0.1] * 90, 2 * 9 / 99),
    ([0.1] * 9 + [-0.1] * 90, 2 * 9 / 99),
])
def test_bootstrap_p_value(improvements: list[float], p_value: float) -> None:
    champion = np.zeros(len(improvements))
    test = from_samples("cost", "lower", 1.0, 0.9, champion, -np.array(improvements), 0.05)
    assert test.p_value == pytest.approx(p_value)
    assert test.improvement == pytest.approx(0.1)


# ---- the decision ---------------------------------------------------------------------------

def judge(data: tuple[np.ndarray, Scored, Scored], model_type: str = "classification",
           extra: dict[str, tuple[float, float]] | None = None, **settings
           ) -> comparison.Comparison:
    metrics = ["accuracy", "f1"] if model_type == "classification" else ["mae", "r2"]
    return compare(model_type, *data, ComparisonSettings(resamples=200, **settings), metrics,
                   extra=extra)


def test_a_clearly_better_challenger_is_promoted() -> None:
    result = judge(classifiers(5000), min_effect=0.01,
                    guarded={"demographic_parity_difference": {"tolerance": 0.02}},
                    extra={"demographic_parity_difference": (0.08, 0.07)})
    assert result.outcome is Outcome.PROMOTE and result.promote
    auc = result.tests[0]
    assert auc.metric == "roc_auc" and auc.method == "delong"
    assert 0.67 < auc.champion < 0.73 and 0.77 < auc.challenger < 0.83
    assert auc.p_value < 1e-6 and auc.ci_low > 0
    assert "roc_auc 0." in result.reason and "DeLong p = " in result.reason
    assert "no guarded metric worsened" in result.reason
    assert {t.metric for t in result.tests} == {
        "roc_auc", "accuracy", "f1", "demographic_parity_difference"}


def test_the_same_model_twice_is_insufficient_evidence() -> None:
    y, champion, _ = classifiers(2000)
    result = judge((y, champion, champion))
    assert result.outcome is Outcome.INSUFFICIENT_EVIDENCE
    assert "p = 1 ≥ 0.05: no significant difference" in result.reason


@pytest.mark.parametrize(("rows", "settings", "message"), [
    (50, {}, "only 50 labelled rows; at least 200"),
    (400, {"min_class_rows": 150}, "class 1 has only 1"),
])
def test_too_few_rows_is_insufficient_evidence(rows: int, settings: dict, message: str) -> None:
    result = judge(classifiers(rows), **settings)
    assert result.outcome is Outcome.INSUFFICIENT_EVIDENCE and message in result.reason


def test_a_worsened_guard_stops_a_better_challenger() -> None:
    result = judge(classifiers(5000),
                    guarded={"demographic_parity_difference": {"tolerance": 0.02}},
                    extra={"demographic_parity_difference": (0.05, 0.15)})
    assert result.outcome is Outcome.GUARD_BREACHED
    assert ("demographic_parity_difference worsened by 0.100 (0.050 → 0.150), beyond its "
            "tolerance 0.02") in result.reason
    assert result.guards[0].worsening == pytest.approx(0.1) and not result.guards[0].passed


def test_a_guard_that_was_not_measured_is_breached() -> None:
    result = judge(classifiers(5000), guarded={"latency_ms": {"tolerance": 5}})
    assert result.outcome is Outcome.GUARD_BREACHED and "latency_ms was not measured" in (
        result.reason)
    assert comparison_table(result)[-1] == {"metric": "latency_ms", "role": "guarded",
                                            "method": "not measured", "tolerance": "5",
                                            "guard": "breached"}


def test_better_but_below_the_minimum_effect_is_not_better() -> None:
    result = judge(classifiers(5000), min_effect=0.2)
    assert result.outcome is Outcome.NOT_BETTER
    assert "< the minimum effect 0.2" in result.reason


@pytest.mark.parametrize(("noise", "outcome", "words"), [
    ((12, 10), Outcome.PROMOTE, "no metric is guarded"),
    ((10, 12), Outcome.NOT_BETTER, "the challenger is worse"),
])
def test_regression_decides_on_mae(noise: tuple[float, float], outcome: Outcome,
                                   words: str) -> None:
    result = judge(regressors(3000, *noise), "regression")
    assert result.metric == "mae" and result.tests[0].method == "bootstrap"
    assert result.outcome is outcome and words in result.reason
    assert "lower is better" in result.reason


def test_a_business_metric_can_decide() -> None:
    y, champion, challenger = classifiers(3000)
    settings = ComparisonSettings(metric="cost", better="lower", resamples=200)
    rng = np.random.default_rng(0)
    samples = {"cost": (1.0, 0.8, list(1 + rng.normal(0, 0.02, 200)),
                        list(0.8 + rng.normal(0, 0.02, 200)))}
    result = compare("classification", y, champion, challenger, settings, ["accuracy"],
                     own=own_tests(samples, settings))
    assert result.outcome is Outcome.PROMOTE and result.tests[0].metric == "cost"
    assert result.tests[0].improvement == pytest.approx(0.2)


def test_evidence_table_and_markdown() -> None:
    result = judge(classifiers(5000), guarded={"f1": {"tolerance": 0.5}})
    rows = comparison_table(result)
    assert [r["metric"] for r in rows] == ["roc_auc", "accuracy", "f1"]
    assert rows[0]["role"] == "deciding" and rows[2] | {"tolerance": "0.5", "guard": "passed"} \
        == rows[2]
    markdown = comparison_markdown(result, "credit-risk@1", "credit-risk@2",
                                   "http://ui/artifacts/key/comparison-credit-risk")
    assert "Challenger credit-risk@2 against champion credit-risk@1" in markdown
    assert "Decision: **promote**." in markdown
    assert "|" not in markdown, "no table: a wide one hides its columns in Prefect's form"
    lines = [line for line in markdown.splitlines() if line.startswith("- ")]
    assert [line.split(":")[0] for line in lines] == [
        "- **roc_auc** (deciding)", "- **f1** (guard passed)", "- accuracy"]
    assert re.fullmatch(r"- \*\*roc_auc\*\* \(deciding\): 0\.\d+ → 0\.\d+, [+-]0\.\d+ "
                        r"\([+-]0\.\d+\.\.[+-]0\.\d+\), p [\d.e-]+", lines[0]), lines[0]
    assert "[the comparison table](http://ui/artifacts/key/comparison-credit-risk)" in markdown


# ---- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda: mcnemar([0, 1, 1], [0, 1], [0, 1, 1]), "champion predictions: 2 values for 3"),
    (lambda: mcnemar([0, 2, 1], [0, 1, 1], [0, 1, 1]), r"y: expected 0 or 1, found \[2.0\]"),
    (lambda: delong([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, np.nan, 0.3, 0.4]),
     "challenger scores: 1 missing"),
    (lambda: delong([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]),
     "at least 2 rows of each class"),
    (lambda: paired_bootstrap("roc_auc", [0, 1], Scored(np.r_[0, 1]), Scored(np.r_[0, 1])),
     "no paired bootstrap"),
    (lambda: judge(regressors(300, 1, 1), "classification"), "y: expected 0 or 1"),
    (lambda: compare("classification", np.r_[0, 1], *classifiers(3)[1:], ComparisonSettings(),
                     []), "champion predictions: 3 values for 2 labelled rows"),
    (lambda: judge(classifiers(300), extra={"latency_ms": (1.0, math.nan)}),
     r"extra.latency_ms: \(1.0, nan\) are not finite"),
    (lambda: compare("classification", *classifiers(300), ComparisonSettings(), ["mae"]),
     r"metrics \['mae'\] are not classification metrics"),
    (lambda: compare("classification", *classifiers(300), ComparisonSettings(
        metric="cost", better="lower"), []), "the deciding metric 'cost' was not measured"),
])
def test_bad_input_is_named(call, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call()


@pytest.mark.parametrize(("settings", "message"), [
    ({"guarded": {"cost_per_applicant": {"tolerance": 0.1}}},
     "guarded.cost_per_applicant: 'cost_per_applicant' is not a known metric; say better"),
    ({"metric": "cost_per_applicant"}, "metric: 'cost_per_applicant' is not a known metric"),
    ({"metric": "mae", "better": "higher"}, "metric: mae is lower-is-better"),
    ({"metric": "latency_ms"}, "metric: latency_ms has no paired test; guard it instead"),
    ({"better": "lower"}, "better: describes `metric`"),
    ({"guarded": {"f1": {"tolerance": -0.1}}}, r"guarded.f1.tolerance"),
    ({"resamples": 50}, "resamples"),
    ({"alpha": 1.0}, "alpha"),
])
def test_settings_errors_name_the_field(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ComparisonSettings(**settings)


def test_settings_accept_described_metrics() -> None:
    settings = ComparisonSettings(metric="cost", better="lower", guarded={
        "approval_rate": {"tolerance": 0.05, "better": "higher"},
        "demographic_parity_difference": {"tolerance": 0.02}})
    assert [settings.direction(m) for m in ("cost", "approval_rate", "f1", "other")] == [
        "lower", "higher", "higher", None]


# ---- the package's own metrics in their subprocess ------------------------------------------

def test_the_subprocess_draws_the_same_indices() -> None:
    code = "def rows(y_true, y_pred, y_score):\n    return {f'i{k}': v for k, v in " \
           "enumerate(y_true)}\n"
    found = run_metrics_bootstrap(PackageCode(reference="m.py:rows", source=code),
                                  list(range(7)), ([0] * 7, None), ([1] * 7, [0.5] * 7),
                                  resamples=40, seed=11, standard=set())
    drawn = np.array([found[f"i{k}"][2] for k in range(7)]).T
    assert np.array_equal(drawn, bootstrap_indices(7, 40, 11))
    assert found["i3"][:2] == (3.0, 3.0)


def test_credit_risk_metrics_resampled_agree_with_in_process() -> None:
    code = CREDIT_METRICS.read_text()
    namespace: dict = {}
    exec(compile(code, str(CREDIT_METRICS), "exec"), namespace)  # our own example, in process
    function = namespace["business_metrics"]
    y, champion, challenger = classifiers(500)
    sides = [(m.pred.tolist(), m.score.tolist()) for m in (champion, challenger)]
    found = run_metrics_bootstrap(PackageCode(reference="metrics.py:business_metrics",
                                              source=code), y.tolist(), *sides,
                                  resamples=100, seed=4, standard={"accuracy", "f1"})
    indices = bootstrap_indices(len(y), 100, 4)
    for name in ("cost_per_applicant", "approval_rate"):
        expected = [[function(y[rows].tolist(), m.pred[rows].tolist(), m.score[rows].tolist())[name]
                     for rows in indices] for m in (champion, challenger)]
        assert found[name][2:] == (pytest.approx(expected[0], abs=1e-12),
                                   pytest.approx(expected[1], abs=1e-12))
        assert found[name][:2] == pytest.approx(
            [function(y.tolist(), *side)[name] for side in sides], abs=1e-12)


def test_a_resample_without_a_finite_value_is_named() -> None:
    code = ("def odd(y_true, y_pred, y_score):\n"
            "    return {'x': 0.0 if y_true == sorted(y_true) else float('inf')}\n")
    with pytest.raises(InvalidInputError, match="m.py:odd: metric 'x' is not a finite number on "
                       "some resamples"):
        run_metrics_bootstrap(PackageCode(reference="m.py:odd", source=code), list(range(9)),
                              ([0] * 9, None), ([1] * 9, None), resamples=10, seed=0,
                              standard=set())
