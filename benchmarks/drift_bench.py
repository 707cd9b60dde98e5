"""The drift monitor on 10k, 100k and 1M rows × 20 columns (15 numeric, 5 categorical): time
and peak memory of our monitor (every row's statistics + the Evidently report on a 20k-row
sample), beside the floor (the same statistics in plain scipy) and beside Evidently's
DataDriftPreset on all rows. Each case runs in its own process, so peak memory is its own.

    .venv/bin/python benchmarks/drift_bench.py [--sizes 10000,100000,1000000] [--preset-max N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = 15, 5


def frames(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(rows)

    def frame(shift: float) -> pd.DataFrame:
        data = {f"n{i}": rng.normal(shift * (i % 3), 1.0, rows) for i in range(NUMERIC)}
        data |= {f"c{i}": rng.choice(["a", "b", "c", "d"], rows,
                                     p=[0.4 - shift / 10, 0.3, 0.2, 0.1 + shift / 10])
                 for i in range(CATEGORICAL)}
        return pd.DataFrame(data)

    return frame(0.0), frame(0.2)


def schema() -> list:
    from mlc_tasks.scoring import Column

    return ([Column(name=f"n{i}", dtype="float") for i in range(NUMERIC)]
            + [Column(name=f"c{i}", dtype="str") for i in range(CATEGORICAL)])


def run_ours(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    from mlc_tasks.drift import drift_report
    from mlc_tasks.monitoring import evidently_report

    drift_report(reference, current, schema())
    evidently_report(reference, current, 20_000)


def run_floor(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    for i in range(NUMERIC):
        ref, cur = reference[f"n{i}"].to_numpy(), current[f"n{i}"].to_numpy()
        stats.ks_2samp(ref, cur)
        stats.wasserstein_distance(ref, cur)
    for i in range(CATEGORICAL):
        ref = reference[f"c{i}"].value_counts().sort_index().to_numpy(float)
        cur = current[f"c{i}"].value_counts().sort_index().to_numpy(float)
        stats.chi2_contingency(np.vstack([ref, cur]))
        jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)


def run_preset(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    Report([DataDriftPreset(num_method="ks", cat_method="jensenshannon")]).run(current, reference)


CASES = {"ours": run_ours, "floor": run_floor, "preset": run_preset}


def warm_imports() -> None:
    """Imports are a once-per-process cost of a served flow, not of a monitoring run."""
    import evidently.presets  # noqa: F401
    import scipy.spatial.distance  # noqa: F401
    import scipy.stats  # noqa: F401

    import mlc_tasks.drift  # noqa: F401
    import mlc_tasks.monitoring  # noqa: F401


def one_case(case: str, rows: int) -> None:
    warm_imports()
    reference, current = frames(rows)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    CASES[case](reference, current)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "extra_mb": (peak - base)
                      / 1024}))


def measure(case: str, rows: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, __file__, "--one", case, str(rows)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--preset-max", type=int, default=1_000_000,
                        help="largest size Evidently's preset runs on (it is slow)")
    parser.add_argument("--one", nargs=2)
    args = parser.parse_args()
    if args.one:
        one_case(args.one[0], int(args.one[1]))
        return
    print(f"{'rows':>9} | {'case':6} | {'seconds':>8} | {'peak MB':>8} | vs floor")
    for rows in (int(s) for s in args.sizes.split(",")):
        floor = measure("floor", rows)
        for case in ("floor", "ours", "preset"):
            if case == "preset" and rows > args.preset_max:
                continue
            found = floor if case == "floor" else measure(case, rows)
            print(f"{rows:>9} | {case:6} | {found['seconds']:8.2f} | {found['peak_mb']:8.0f} | "
                  f"{found['seconds'] / floor['seconds']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
