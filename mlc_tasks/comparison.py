"""Champion/challenger paired statistics: both models scored on the SAME held-out labelled rows,
so every test is paired (each row is its own control) and far more sensitive than comparing two
separate test results.

- accuracy: McNemar on the discordant rows (b = only the champion right, c = only the
  challenger right): the exact two-sided binomial test when b + c < 25, else chi-square with
  continuity correction, (|b - c| - 1)² / (b + c), 1 dof; b + c = 0 gives p = 1. The interval
  is the Wald interval of the paired difference in proportions.
- roc_auc: DeLong's test, by Sun & Xu's (2014) O(n log n) algorithm on midranks; identical
  scores (zero variance of the difference) give p = 1.
- every other metric (and a package's own metrics): a paired bootstrap — each resample draws
  the same rows for both models; percentile interval of the improvement; two-sided p =
  2·min(share of resamples with improvement ≤ 0, share ≥ 0), capped at 1 and floored at
  1/(resamples + 1) (a finite number of resamples cannot show a smaller p). That p is below
  alpha exactly when the (1 - alpha) percentile interval excludes zero.

"Improvement" is always challenger minus champion, signed so that positive is better.
The challenger is promoted only when the deciding metric is significantly better by at least the
minimum effect and no guarded metric worsened beyond its tolerance."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy import stats

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.packages import METRICS, ModelType

log = logging.getLogger(__name__)

Better = Literal["higher", "lower"]
DIRECTIONS: dict[str, Better] = {
    "accuracy": "higher", "precision": "higher", "recall": "higher", "f1": "higher",
    "roc_auc": "higher", "r2": "higher", "log_loss": "lower", "mae": "lower", "rmse": "lower",
    "demographic_parity_difference": "lower", "equalized_odds_difference": "lower",
    "latency_ms": "lower",
}
GUARD_ONLY = frozenset({"demographic_parity_difference", "equalized_odds_difference",
                        "latency_ms"})  # measured elsewhere; the caller passes them as `extra`
CONFUSION = frozenset({"accuracy", "precision", "recall", "f1"})
ROW_MEANS = frozenset({"log_loss", "mae", "rmse", "r2"})  # a mean of a per-row term
EXACT_BELOW = 25       # McNemar: exact binomial test below this many discordant rows
BLOCK_BYTES = 200_000_000  # bootstrap working memory; resamples are processed in blocks
BYTES_PER_CELL = 32    # an int32 index and the gathered temporaries of one resample row
SLACK = 1e-12          # a worsening equal to the tolerance, give or take rounding, passes
METHOD_NAMES = {"mcnemar": "McNemar", "delong": "DeLong", "bootstrap": "paired bootstrap",
                "point": "point values"}


def _check_direction(field: str, name: str, better: Better | None) -> None:
    known = DIRECTIONS.get(name)
    if known is None and better is None:
        raise ValueError(f"{field}: '{name}' is not a known metric; say better: higher or lower")
    if known is not None and better is not None and better != known:
        raise ValueError(f"{field}: {name} is {known}-is-better; leave better out")


class Guard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tolerance: float = Field(ge=0, description="how much worse the challenger may be, in the "
                             "metric's units")
    better: Better | None = Field(default=None, description="required for a metric that is not "
                                  "a known one (a business metric)")


class ComparisonSettings(BaseModel):
    """How a challenger is judged against the champion on the same held-out rows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str | None = Field(default=None, description="the deciding metric; none: roc_auc "
                               "(classification; accuracy when a model gives no scores) or mae")
    better: Better | None = Field(default=None, description="direction of `metric` when it is "
                                  "not a known one (a business metric)")
    min_effect: float = Field(default=0.0, ge=0, description="minimum improvement, in the "
                              "metric's units")
    alpha: float = Field(default=0.05, gt=0, lt=1)
    min_rows: int = Field(default=200, ge=1)
    min_class_rows: int = Field(default=10, ge=1, description="fewer rows of a class: "
                                "insufficient evidence (classification)")
    resamples: int = Field(default=1000, ge=100, le=100_000)
    seed: int = 0
    guarded: dict[str, Guard] = Field(default_factory=dict, description="metrics that must not "
                                      "worsen beyond their tolerance")

    @model_validator(mode="after")
    def _directions_known(self) -> ComparisonSettings:
        if self.metric is None and self.better is not None:
            raise ValueError("better: describes `metric`; set metric too")
        if self.metric in GUARD_ONLY:
            raise ValueError(f"metric: {self.metric} has no paired test; guard it instead")
        if self.metric is not None:
            _check_direction("metric", self.metric, self.better)
        for name, guard in self.guarded.items():
            _check_direction(f"guarded.{name}", name, guard.better)
        return self

    def direction(self, metric: str) -> Better | None:
        """Which way is better for a metric; None for a package metric nobody described."""
        if metric == self.metric and self.better is not None:
            return self.better
        guard = self.guarded.get(metric)
        return guard.better if guard and guard.better else DIRECTIONS.get(metric)


class Outcome(StrEnum):
    PROMOTE = "promote"
    INSUFFICIENT_EVIDENCE = "insufficient evidence"
    NOT_BETTER = "not better"
    GUARD_BREACHED = "guard breached"


class PairedTest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    method: Literal["mcnemar", "delong", "bootstrap", "point"]
    better: Better | None  # None: direction unknown, improvement is challenger - champion
    champion: float
    challenger: float
    improvement: float     # challenger minus champion, signed so that positive is better
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    detail: dict[str, float] = Field(default_factory=dict)


class GuardCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    champion: float | None  # None: not measured, which fails the guard
    challenger: float | None
    worsening: float | None  # > 0: the challenger is worse
    tolerance: float
    passed: bool


class Comparison(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    metric: str
    alpha: float
    outcome: Outcome
    reason: str
    tests: list[PairedTest]
    guards: list[GuardCheck]

    @property
    def promote(self) -> bool:
        return self.outcome is Outcome.PROMOTE


@dataclass(frozen=True)
class Scored:
    """One model's output on the held-out rows."""

    pred: np.ndarray
    score: np.ndarray | None = None  # positive-class probability; None for regression


# ---- input checks ---------------------------------------------------------------------------

def _vector(values: Any, name: str, rows: int | None = None) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name}: expected numbers ({exc})") from exc
    if array.ndim != 1 or array.size == 0:
        raise InvalidInputError(f"{name}: expected one value per row, got shape {array.shape}")
    if rows is not None and array.size != rows:
        raise InvalidInputError(f"{name}: {array.size} values for {rows} labelled rows")
    bad = int((~np.isfinite(array)).sum())
    if bad:
        raise InvalidInputError(f"{name}: {bad} missing (NaN) or infinite values")
    return array


def _binary(values: Any, name: str, rows: int | None = None) -> np.ndarray:
    array = _vector(values, name, rows)
    others = np.setdiff1d(array, [0.0, 1.0])
    if others.size:
        raise InvalidInputError(f"{name}: expected 0 or 1, found {others[:5].tolist()}")
    return array.astype(np.int8)


def _scores(model: Scored, name: str, rows: int) -> np.ndarray:
    if model.score is None:
        raise InvalidInputError(f"{name} scores: none given; roc_auc and log_loss need the "
                                "positive-class probability")
    return _vector(model.score, f"{name} scores", rows)


# ---- McNemar and DeLong ---------------------------------------------------------------------

def mcnemar(y: Any, pred_champion: Any, pred_challenger: Any, alpha: float = 0.05
            ) -> PairedTest:
    """Paired test of accuracy at the decision threshold."""
    y = _binary(y, "y")
    right_champion = _binary(pred_champion, "champion predictions", y.size) == y
    right_challenger = _binary(pred_challenger, "challenger predictions", y.size) == y
    b = int((right_champion & ~right_challenger).sum())
    c = int((~right_champion & right_challenger).sum())
    p_value, detail = _mcnemar_p(b, c)
    difference, n = (c - b) / y.size, y.size
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(max(b + c - (c - b) ** 2 / n, 0.0)) / n
    return PairedTest(metric="accuracy", method="mcnemar", better="higher",
                      champion=float(right_champion.mean()),
                      challenger=float(right_challenger.mean()), improvement=difference,
                      ci_low=difference - half, ci_high=difference + half, p_value=p_value,
                      detail={"b": b, "c": c} | detail)


def _mcnemar_p(b: int, c: int) -> tuple[float, dict[str, float]]:
    if b + c == 0:
        return 1.0, {}
    if b + c < EXACT_BELOW:
        return float(stats.binomtest(c, b + c, 0.5).pvalue), {"exact": 1.0}
    statistic = (abs(b - c) - 1) ** 2 / (b + c)
    return float(stats.chi2.sf(statistic, 1)), {"exact": 0.0, "chi2": statistic}


def delong(y: Any, score_champion: Any, score_challenger: Any, alpha: float = 0.05
           ) -> PairedTest:
    """DeLong's paired test of ROC AUC."""
    y = _binary(y, "y")
    scores = np.vstack([_vector(score_champion, "champion scores", y.size),
                        _vector(score_challenger, "challenger scores", y.size)])
    positive = y == 1
    if min(positive.sum(), (~positive).sum()) < 2:
        raise InvalidInputError("y: roc_auc needs at least 2 rows of each class, found "
                                f"{int(positive.sum())} positive of {y.size}")
    aucs, covariance = delong_covariance(scores[:, positive], scores[:, ~positive])
    difference = float(aucs[1] - aucs[0])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    if variance <= 1e-12 * (covariance[0, 0] + covariance[1, 1]):
        # every pair ranked alike by both models: the difference is certain, or zero
        p_value, variance, detail = (1.0 if difference == 0 else 0.0), 0.0, {}
    else:
        z = difference / math.sqrt(variance)
        p_value, detail = float(2 * stats.norm.sf(abs(z))), {"z": z}
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(variance)
    return PairedTest(metric="roc_auc", method="delong", better="higher",
                      champion=float(aucs[0]), challenger=float(aucs[1]),
                      improvement=difference, ci_low=difference - half,
                      ci_high=difference + half, p_value=p_value,
                      detail=detail | {"variance": variance})


def delong_covariance(positives: np.ndarray, negatives: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Sun & Xu (2014): the AUCs of k score rows (k × m positives, k × n negatives) and their
    k × k covariance, from midranks within each class and across both."""
    m, n = positives.shape[1], negatives.shape[1]
    within_positives = stats.rankdata(positives, axis=1)
    within_negatives = stats.rankdata(negatives, axis=1)
    overall = stats.rankdata(np.hstack([positives, negatives]), axis=1)
    aucs = (overall[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (overall[:, :m] - within_positives) / n      # per positive: negatives below it
    v01 = 1 - (overall[:, m:] - within_negatives) / m  # per negative: positives above it
    return aucs, np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n


# ---- paired bootstrap -----------------------------------------------------------------------

def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """The row indices of every resample, int32 (resamples × n); the package-metrics
    subprocess draws the same ones."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.int32)


def _index_blocks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """bootstrap_indices a block of resamples at a time: int32 draws take the generator's
    32-bit values in order, so the blocks are the same rows as the whole matrix."""
    rng = np.random.default_rng(seed)
    rows = max(1, BLOCK_BYTES // (n * BYTES_PER_CELL))
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n), dtype=np.int32)


Statistic = Callable[[np.ndarray], np.ndarray]  # index block (r × n) → metric (r × 2 models)


def bootstrap_samples(metric: str, y: Any, champion: Scored, challenger: Scored,
                      resamples: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(the metric on all rows: [champion, challenger], the metric per resample: r × 2)."""
    if metric not in CONFUSION | ROW_MEANS:
        raise InvalidInputError(f"metric '{metric}': no paired bootstrap for it; known: "
                                f"{', '.join(sorted(CONFUSION | ROW_MEANS))}")
    y = _vector(y, "y")
    build = _confusion_statistic if metric in CONFUSION else _row_mean_statistic
    statistic = build(metric, y, champion, challenger)
    full = statistic(np.arange(y.size, dtype=np.int32)[None, :])[0]
    samples = np.vstack([statistic(block) for block in _index_blocks(y.size, resamples, seed)])
    return full, samples


def _cells(bit: int) -> np.ndarray:
    """Code (label << 2 | champion << 1 | challenger) → one-hot (tp, fp, fn, tn) of a model."""
    matrix = np.zeros((8, 4), dtype=np.int64)
    for code in range(8):
        label, pred = code >> 2, (code >> bit) & 1
        matrix[code, (1 - label) + 2 * (1 - pred)] = 1
    return matrix


CELLS = (_cells(1), _cells(0))  # champion, challenger


def _confusion_statistic(metric: str, y: np.ndarray, champion: Scored, challenger: Scored
                         ) -> Statistic:
    labels = _binary(y, "y")
    code = (4 * labels + 2 * _binary(champion.pred, "champion predictions", y.size)
            + _binary(challenger.pred, "challenger predictions", y.size)).astype(np.uint8)

    def statistic(index: np.ndarray) -> np.ndarray:
        keys = code[index] + (8 * np.arange(len(index), dtype=np.int64))[:, None]
        counts = np.bincount(keys.ravel(), minlength=8 * len(index)).reshape(-1, 8)
        return np.stack([_from_counts(metric, counts @ cells) for cells in CELLS], axis=1)

    return statistic


def _from_counts(metric: str, confusion: np.ndarray) -> np.ndarray:
    tp, fp, fn, tn = confusion.T
    if metric == "accuracy":
        return (tp + tn) / confusion.sum(axis=1)
    numerator, denominator = {"precision": (tp, tp + fp), "recall": (tp, tp + fn),
                              "f1": (2 * tp, 2 * tp + fp + fn)}[metric]
    return np.divide(numerator, denominator, out=np.zeros(len(tp)), where=denominator > 0)


def _row_mean_statistic(metric: str, y: np.ndarray, champion: Scored, challenger: Scored
                        ) -> Statistic:
    terms = [_row_terms(metric, y, model, name)
             for model, name in ((champion, "champion"), (challenger, "challenger"))]
    centred = y - y.mean()  # r2's total sum of squares without cancellation

    def statistic(index: np.ndarray) -> np.ndarray:
        means = np.stack([term[index].mean(axis=1) for term in terms], axis=1)
        if metric == "rmse":
            return np.sqrt(means)
        if metric == "r2":
            sample = centred[index]
            return _r2(means, ((sample ** 2).mean(axis=1) - sample.mean(axis=1) ** 2)[:, None])
        return means

    return statistic


def _r2(mse: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """As sklearn: 1 - mse / variance; a constant y gives 1 when predicted exactly, else 0."""
    safe = np.where(spread > 0, spread, 1.0)
    return np.where(spread > 0, 1 - mse / safe, np.where(mse == 0, 1.0, 0.0))


def _row_terms(metric: str, y: np.ndarray, model: Scored, name: str) -> np.ndarray:
    if metric == "log_loss":
        labels, score = _binary(y, "y"), _scores(model, name, y.size)
        if score.min() < 0 or score.max() > 1:
            raise InvalidInputError(f"{name} scores: log_loss needs probabilities in [0, 1]")
        eps = np.finfo(float).eps  # sklearn's clipping
        return -np.log(np.where(labels == 1, np.clip(score, eps, 1 - eps),
                                np.clip(1 - score, eps, 1 - eps)))
    error = y - _vector(model.pred, f"{name} predictions", y.size)
    return np.abs(error) if metric == "mae" else error ** 2


def paired_bootstrap(metric: str, y: Any, champion: Scored, challenger: Scored,
                     resamples: int = 1000, seed: int = 0, alpha: float = 0.05) -> PairedTest:
    """Paired bootstrap test of a standard metric other than roc_auc."""
    full, samples = bootstrap_samples(metric, y, champion, challenger, resamples, seed)
    return from_samples(metric, DIRECTIONS[metric], full[0], full[1], samples[:, 0],
                        samples[:, 1], alpha)


def from_samples(metric: str, better: Better | None, champion_value: float,
                 challenger_value: float, champion_samples: Any, challenger_samples: Any,
                 alpha: float = 0.05) -> PairedTest:
    """The paired-bootstrap test from per-resample values computed elsewhere (a package's own
    metric, on the same resamples for both models)."""
    sign = -1.0 if better == "lower" else 1.0
    champion = _vector(champion_samples, f"{metric}: champion samples")
    improvement = sign * (_vector(challenger_samples, f"{metric}: challenger samples",
                                  champion.size) - champion)
    low, high = np.quantile(improvement, [alpha / 2, 1 - alpha / 2])
    p_value = 2 * min(np.mean(improvement <= 0), np.mean(improvement >= 0))
    return PairedTest(metric=metric, method="bootstrap", better=better,
                      champion=float(champion_value), challenger=float(challenger_value),
                      improvement=sign * (challenger_value - champion_value),
                      ci_low=float(low), ci_high=float(high),
                      p_value=float(max(1 / (champion.size + 1), min(1.0, p_value))),
                      detail={"resamples": champion.size})


def own_tests(values: dict[str, tuple[float, float, list[float], list[float]]],
              settings: ComparisonSettings) -> dict[str, PairedTest]:
    """The package's own metrics (package_metrics.run_metrics_bootstrap) as paired tests."""
    return {name: from_samples(name, settings.direction(name), *value, alpha=settings.alpha)
            for name, value in sorted(values.items())}


# ---- the decision ---------------------------------------------------------------------------

def compare(model_type: str, y: Any, champion: Scored, challenger: Scored,
            settings: ComparisonSettings, metrics: list[str],
            own: dict[str, PairedTest] | None = None,
            extra: dict[str, tuple[float, float]] | None = None) -> Comparison:
    """Paired tests of the standard `metrics` (and the deciding one), the package's `own`
    tests and the guard-only `extra` values (champion, challenger); then the decision."""
    kind = _model_type(model_type)
    y = _vector(y, "y")
    for name, model in (("champion", champion), ("challenger", challenger)):
        _vector(model.pred, f"{name} predictions", y.size)  # bad input fails even when too few
        if model.score is not None:
            _vector(model.score, f"{name} scores", y.size)
    has_scores = champion.score is not None and challenger.score is not None
    metric = settings.metric or ("mae" if kind is ModelType.REGRESSION
                                 else "roc_auc" if has_scores else "accuracy")
    shortfall = _shortfall(kind, y, settings)
    if shortfall:
        log.info("%s: %s", Outcome.INSUFFICIENT_EVIDENCE, shortfall)
        return Comparison(rows=y.size, metric=metric, alpha=settings.alpha,
                          outcome=Outcome.INSUFFICIENT_EVIDENCE, reason=shortfall, tests=[],
                          guards=[])
    own = own or {}
    if metric not in METRICS[kind] and metric not in own:
        raise InvalidInputError(f"the deciding metric '{metric}' was not measured: it is not a "
                                f"{kind} metric nor one of the package's own ({sorted(own)})")
    tests = _tests(kind, y, champion, challenger, settings, (set(metrics) | {metric}) - set(own),
                   own, extra or {})
    guards = guard_checks(settings, tests)
    outcome, reason = decide(tests[metric], guards, settings)
    log.info("%s: %s", outcome, reason)
    ordered = [tests[metric]] + [t for name, t in sorted(tests.items()) if name != metric]
    return Comparison(rows=y.size, metric=metric, alpha=settings.alpha, outcome=outcome,
                      reason=reason, tests=ordered, guards=guards)


def _model_type(model_type: str) -> ModelType:
    try:
        return ModelType(model_type)
    except ValueError as exc:
        raise InvalidInputError(f"model type '{model_type}': expected one of "
                                f"{[t.value for t in ModelType]}") from exc


def _shortfall(kind: ModelType, y: np.ndarray, settings: ComparisonSettings) -> str | None:
    """Why these rows cannot settle the question, or None."""
    least = max(settings.min_rows, 2)
    if y.size < least:
        return (f"only {y.size} labelled rows; at least {least} are needed to compare the "
                "models")
    if kind is ModelType.CLASSIFICATION:
        labels, least = _binary(y, "y"), max(settings.min_class_rows, 2)
        for label in (0, 1):
            count = int((labels == label).sum())
            if count < least:
                return (f"class {label} has only {count} of {y.size} rows; at least {least} "
                        "of each class are needed to compare the models")
    return None


def _tests(kind: ModelType, y: np.ndarray, champion: Scored, challenger: Scored,
           settings: ComparisonSettings, wanted: set[str], own: dict[str, PairedTest],
           extra: dict[str, tuple[float, float]]) -> dict[str, PairedTest]:
    standard = wanted | (set(settings.guarded) & METRICS[kind])
    unknown = sorted(standard - METRICS[kind])
    if unknown:
        raise InvalidInputError(f"metrics {unknown} are not {kind} metrics; known: "
                                f"{', '.join(sorted(METRICS[kind]))}")
    tests = {name: _standard_test(name, y, champion, challenger, settings)
             for name in sorted(standard)}
    for name, test in own.items():
        _check_own(name, test, tests, settings)
        tests[name] = test
    for name, values in extra.items():
        if name in tests:
            raise InvalidInputError(f"extra.{name}: already measured by a paired test")
        tests[name] = _point_test(name, values, settings.direction(name))
    return tests


def _point_test(name: str, values: tuple[float, float], better: Better | None) -> PairedTest:
    """A value measured elsewhere (a fairness gap, latency): no test, only the two values."""
    before, after = values
    if not (math.isfinite(before) and math.isfinite(after)):
        raise InvalidInputError(f"extra.{name}: ({before}, {after}) are not finite numbers")
    return PairedTest(metric=name, method="point", better=better, champion=before,
                      challenger=after, improvement=(after - before) * (
                          -1 if better == "lower" else 1))


def _standard_test(name: str, y: np.ndarray, champion: Scored, challenger: Scored,
                   settings: ComparisonSettings) -> PairedTest:
    if name == "accuracy":
        return mcnemar(y, champion.pred, challenger.pred, settings.alpha)
    if name == "roc_auc":
        return delong(y, _scores(champion, "champion", y.size),
                      _scores(challenger, "challenger", y.size), settings.alpha)
    return paired_bootstrap(name, y, champion, challenger, settings.resamples, settings.seed,
                            settings.alpha)


def _check_own(name: str, test: PairedTest, tests: dict[str, PairedTest],
               settings: ComparisonSettings) -> None:
    if name in tests or name in DIRECTIONS:
        raise InvalidInputError(f"own.{name}: a standard metric; give the package's own metric "
                                "another name")
    if test.better != settings.direction(name):
        raise InvalidInputError(f"own.{name}: tested as better={test.better} but the settings "
                                f"say {settings.direction(name)} (use own_tests)")


def guard_checks(settings: ComparisonSettings, tests: dict[str, PairedTest]
                 ) -> list[GuardCheck]:
    """One check per guarded metric; one that was not measured fails."""
    checks = []
    for name, guard in sorted(settings.guarded.items()):
        test = tests.get(name)
        if test is None:
            checks.append(GuardCheck(metric=name, champion=None, challenger=None,
                                     worsening=None, tolerance=guard.tolerance, passed=False))
            continue
        checks.append(GuardCheck(metric=name, champion=test.champion,
                                 challenger=test.challenger, worsening=-test.improvement,
                                 tolerance=guard.tolerance,
                                 passed=-test.improvement <= guard.tolerance + SLACK))
    return checks


def decide(test: PairedTest, guards: list[GuardCheck], settings: ComparisonSettings
           ) -> tuple[Outcome, str]:
    """The outcome and one sentence, with the numbers, that says why."""
    assert test.p_value is not None  # compare never decides on a point value
    evidence = f"{_evidence(test, settings.alpha)} "
    if test.p_value >= settings.alpha:
        return (Outcome.INSUFFICIENT_EVIDENCE,
                f"{evidence}≥ {settings.alpha:g}: no significant difference")
    if test.improvement <= 0:
        return Outcome.NOT_BETTER, f"{evidence}< {settings.alpha:g}: the challenger is worse"
    effect = (f"the improvement {_number(test.improvement, signed=True)} "
              f"{'≥' if test.improvement >= settings.min_effect else '<'} the minimum effect "
              f"{settings.min_effect:g}")
    if test.improvement < settings.min_effect:
        return Outcome.NOT_BETTER, f"{evidence}< {settings.alpha:g} but {effect}"
    breached = [_breach(g) for g in guards if not g.passed]
    if breached:
        return (Outcome.GUARD_BREACHED,
                f"{evidence}< {settings.alpha:g} and {effect}, but {'; '.join(breached)}")
    guarded = ("no guarded metric worsened beyond its tolerance" if guards
               else "no metric is guarded")
    return Outcome.PROMOTE, f"{evidence}< {settings.alpha:g} and {effect}; {guarded}"


def _evidence(test: PairedTest, alpha: float) -> str:
    lower = "lower is better; " if test.better == "lower" else ""
    interval = (f", {100 * (1 - alpha):g}% CI {_number(test.ci_low, signed=True)}.."
                f"{_number(test.ci_high, signed=True)}" if test.ci_low is not None else "")
    return (f"{test.metric} {_number(test.champion)} → {_number(test.challenger)} ({lower}"
            f"improvement {_number(test.improvement, signed=True)}{interval}), "
            f"{METHOD_NAMES[test.method]} p = {_p(test.p_value)}")


def _breach(check: GuardCheck) -> str:
    if check.worsening is None:
        return f"{check.metric} was not measured (it is guarded, tolerance {check.tolerance:g})"
    return (f"{check.metric} worsened by {_number(check.worsening)} ({_number(check.champion)} "
            f"→ {_number(check.challenger)}), beyond its tolerance {check.tolerance:g}")


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return ""
    plain = value == 0 or 0.01 <= abs(value) < 1e6
    return f"{value:{'+' if signed else ''}.{'3f' if plain else '3g'}}"


def _p(value: float | None) -> str:
    return "" if value is None else f"{value:.2g}"


# ---- evidence -------------------------------------------------------------------------------

def comparison_table(c: Comparison) -> list[dict[str, Any]]:
    """One row per metric, champion and challenger side by side (a Prefect table artifact)."""
    guards = {g.metric: g for g in c.guards}
    rows = []
    for test in c.tests:
        row: dict[str, Any] = {
            "metric": test.metric,
            "role": "deciding" if test.metric == c.metric else
            "guarded" if test.metric in guards else "reported",
            "method": METHOD_NAMES[test.method], "better": test.better or "",
            "champion": _number(test.champion), "challenger": _number(test.challenger),
            "improvement": _number(test.improvement, signed=True),
            "ci": (f"{_number(test.ci_low, signed=True)}..{_number(test.ci_high, signed=True)}"
                   if test.ci_low is not None else ""),
            "p_value": _p(test.p_value)}
        rows.append(row | _guard_cells(guards.pop(test.metric, None)))
    for check in guards.values():  # guarded but not measured
        rows.append({"metric": check.metric, "role": "guarded", "method": "not measured"}
                    | _guard_cells(check))
    return rows


def _guard_cells(check: GuardCheck | None) -> dict[str, Any]:
    if check is None:
        return {"tolerance": "", "guard": ""}
    return {"tolerance": f"{check.tolerance:g}", "guard": "passed" if check.passed
            else "breached"}


def comparison_markdown(c: Comparison, champion_ref: str, challenger_ref: str,
                        full_table: str | None = None) -> str:
    """The decision and the numbers as approval evidence: one line per metric, champion →
    challenger, the change with its interval and p, deciding and guarded metrics first. Lines
    wrap in Prefect's narrow form, where a wide table would hide its right-hand columns; the
    full table (tests, tolerances) is behind the `full_table` link."""
    # Prefect's form stops rendering at emphasis inside a heading: keep headings plain
    lines = [f"### Challenger {challenger_ref} against champion {champion_ref}", "",
             f"Decision: **{c.outcome}**. {c.reason.rstrip('.')} ({c.rows} held-out rows).", "",
             f"Each metric: {champion_ref} → {challenger_ref}, the change "
             f"({100 * (1 - c.alpha):g}% CI), p.", ""]
    rows = sorted(comparison_table(c), key=lambda r: ROLE_ORDER.get(r["role"], 9))
    lines += [_metric_line(r) for r in rows]
    if full_table:
        lines += ["", f"Every test, tolerance and guard: [the comparison table]({full_table})."]
    return "\n".join(lines) + "\n"


ROLE_ORDER = {"deciding": 0, "guarded": 1, "reported": 2}


def _metric_line(row: dict[str, Any]) -> str:
    role = f"guard {row['guard']}" if row.get("guard") else row["role"]
    name = f"**{row['metric']}** ({role})" if role != "reported" else row["metric"]
    if not row.get("champion") and not row.get("challenger"):
        return f"- {name}: not measured"
    change = row.get("improvement", "")
    change += f" ({row['ci']})" if row.get("ci") else ""
    p_value = f", p {row['p_value']}" if row.get("p_value") else ""
    return f"- {name}: {row['champion']} → {row['challenger']}, {change}{p_value}"
