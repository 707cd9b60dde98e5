"""Champion against challenger on the same held-out rows: score both, measure the guarded
extras (fairness gaps, latency), bootstrap the package's own metrics, and compare."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from mlc_tasks import comparison, fairness
from mlc_tasks.comparison import Comparison, ComparisonSettings, PairedTest, Scored
from mlc_tasks.evaluation import SCORERS, labelled_frame
from mlc_tasks.package_metrics import PackageCode, run_metrics_bootstrap
from mlc_tasks.registry import VersionRecord


def scored(model: Any, features: pd.DataFrame) -> Scored:
    """Predictions and positive-class scores."""
    score = (np.asarray(model.predict_proba(features))[:, 1]
             if hasattr(model, "predict_proba") else None)
    return Scored(pred=np.asarray(model.predict(features)), score=score)


def latency_ms(model: Any, features: pd.DataFrame, repeats: int = 3) -> float:
    """Scoring time per 1,000 rows: the best of a few runs, so that whichever model is timed
    first does not pay for cold caches."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model.predict(features)
        best = min(best, time.perf_counter() - started)
    return best * 1000 / max(len(features), 1) * 1000


def fairness_gaps(held: pd.DataFrame, version: VersionRecord, y: np.ndarray, pred: np.ndarray
                  ) -> dict[str, float]:
    """The worst demographic-parity and equalized-odds gaps over the sensitive attributes
    present in the held-out rows."""
    gaps: dict[str, float] = {}
    for attribute in version.sensitive_attributes:
        if attribute not in held.columns or held[attribute].isna().all():
            continue
        found = fairness.fairness(attribute, pd.Series(y), pd.Series(pred),
                                  held[attribute].reset_index(drop=True))
        for name in ("demographic_parity_difference", "equalized_odds_difference"):
            value = getattr(found, name)
            if value is not None:
                gaps[name] = max(gaps.get(name, 0.0), value)
    return gaps


def own_metric_tests(own: PackageCode | None, y: np.ndarray, champion: Scored,
                     challenger: Scored, settings: ComparisonSettings) -> dict[str, PairedTest]:
    """The package's own metrics, bootstrapped on the same resamples as the standard ones;
    only those whose better direction the policy states (a guard or the deciding metric)."""
    if own is None or not (settings.guarded or settings.better):
        return {}
    samples = run_metrics_bootstrap(
        own, y.tolist(), (champion.pred.tolist(), _list(champion.score)),
        (challenger.pred.tolist(), _list(challenger.score)), settings.resamples, settings.seed,
        set(SCORERS))
    return comparison.own_tests({name: values for name, values in samples.items()
                                 if settings.direction(name)}, settings)


def _list(values: np.ndarray | None) -> list[float] | None:
    return None if values is None else values.tolist()


def judge(model_type: str, champion: VersionRecord, champion_model: Any, challenger_model: Any,
          held: pd.DataFrame, settings: ComparisonSettings,
          own: PackageCode | None) -> Comparison:
    """Compare the two on the held-out rows as the policy's rule says."""
    features, labels = labelled_frame(held, champion.input_schema, champion.label,
                                      "held-out rows")
    y = labels.to_numpy()
    first, second = scored(champion_model, features), scored(challenger_model, features)
    extra = {"latency_ms": (latency_ms(champion_model, features),
                            latency_ms(challenger_model, features))}
    if model_type == "classification":
        kept = held[held[champion.label].notna()].reset_index(drop=True)
        before = fairness_gaps(kept, champion, y, first.pred)
        after = fairness_gaps(kept, champion, y, second.pred)
        extra |= {name: (before[name], after[name]) for name in before if name in after}
    return comparison.compare(model_type, y, first, second, settings,
                              [m for m in champion.metrics if m in SCORERS],
                              own=own_metric_tests(own, y, first, second, settings),
                              extra=extra)
