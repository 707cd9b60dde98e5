"""Champion/challenger statistics: McNemar and DeLong at 20k and 200k rows (median of a few
runs, milliseconds), the paired bootstrap of f1 and mae (1,000 resamples at 20k rows, seconds)
beside the naive loop that calls sklearn once per resample and model (100 resamples, scaled to
1,000), on the same indices.

    .venv/bin/python benchmarks/comparison_bench.py [--runs 5] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm

from mlc_tasks.comparison import Scored, bootstrap_indices, delong, mcnemar, paired_bootstrap


def classifiers(rows: int) -> tuple[np.ndarray, Scored, Scored]:
    rng = np.random.default_rng(rows)
    y = (rng.random(rows) < 0.3).astype(int)
    shared = rng.normal(size=rows)

    def model(gap: float) -> Scored:
        score = 1 / (1 + np.exp(-(gap * y + 0.7 * shared + 0.7 * rng.normal(size=rows) - 1)))
        return Scored(pred=(score >= 0.5).astype(int), score=score)

    return y, model(0.74), model(0.80)


def regressors(rows: int) -> tuple[np.ndarray, Scored, Scored]:
    rng = np.random.default_rng(rows)
    y = rng.normal(100, 20, rows)
    return y, Scored(pred=y + rng.normal(0, 11, rows)), Scored(pred=y + rng.normal(0, 10, rows))


def median_seconds(runs: int, call: Callable[..., object], *args: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


NAIVE = {"f1": lambda y, pred: skm.f1_score(y, pred, zero_division=0),
         "mae": skm.mean_absolute_error}


def naive_loop(metric: str, data: tuple[np.ndarray, Scored, Scored], resamples: int) -> None:
    y, champion, challenger = data
    for rows in bootstrap_indices(len(y), resamples, 0):
        NAIVE[metric](y[rows], champion.pred[rows])
        NAIVE[metric](y[rows], challenger.pred[rows])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    print(f"{'test':30} | {'rows':>7} | {'time':>10} | vs naive")
    for rows in (20_000, 200_000):
        y, champion, challenger = classifiers(rows)
        for name, call, a, b in (("mcnemar", mcnemar, champion.pred, challenger.pred),
                                 ("delong", delong, champion.score, challenger.score)):
            ms = 1000 * median_seconds(args.runs, call, y, a, b)
            print(f"{name:30} | {rows:>7} | {ms:7.1f} ms |", flush=True)
    rows, naive_resamples = 20_000, 100
    for metric, data in (("f1", classifiers(rows)), ("mae", regressors(rows))):
        ours = median_seconds(3, paired_bootstrap, metric, *data, args.resamples)
        naive = (median_seconds(1, naive_loop, metric, data, naive_resamples)
                 * args.resamples / naive_resamples)
        print(f"{f'bootstrap {metric} x{args.resamples}':30} | {rows:>7} | {ours:8.2f} s | "
              f"{naive / ours:5.1f}x faster", flush=True)
        print(f"{f'naive sklearn {metric} x{args.resamples}*':30} | {rows:>7} | {naive:8.2f} s |",
              flush=True)
    print(f"* {naive_resamples} resamples timed ({2 * naive_resamples} sklearn calls), scaled "
          f"to {args.resamples}")


if __name__ == "__main__":
    main()
