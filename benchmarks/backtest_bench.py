"""The nightly backtest of 1,000 small models: the daily-backtest flow (one Prefect task for
the whole batch, an artifact per model) beside a bare Python loop doing the same work with the
same blocks (load the production version, test it on the day's rows, store the record).

    .venv/bin/python benchmarks/backtest_bench.py [--models 1000]

Runs on a throwaway MLC_HOME and a temporary Prefect server.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
import yaml
from sklearn.linear_model import LogisticRegression

DAY = date(2026, 11, 25)
FEATURES = ["x1", "x2", "x3"]


def make_package(root: Path, index: int, rng: np.random.Generator) -> Path:
    folder = root / "packages" / f"m{index:04d}"
    (folder / "data").mkdir(parents=True)
    rows = pd.DataFrame(rng.normal(size=(300, 3)), columns=FEATURES)
    rows["y"] = (rows["x1"] + 0.5 * rows["x2"] + rng.normal(0, 1, 300) > 0).astype(int)
    sio.dump(LogisticRegression().fit(rows[FEATURES], rows["y"]), folder / "model.skops")
    rows.iloc[:100].to_csv(folder / "data" / "test.csv", index=False)
    daily = root / "daily" / f"m{index:04d}" / DAY.isoformat()
    daily.mkdir(parents=True)
    rows.iloc[100:].to_csv(daily / "labelled.csv", index=False)
    (folder / "sample.json").write_text(json.dumps(
        {"dataframe_records": rows[FEATURES].iloc[:2].to_dict("records")}))
    (folder / "model.yaml").write_text(yaml.safe_dump({
        "name": f"m{index:04d}", "type": "classification", "owner": "bench", "risk_tier": "low",
        "artifact": "model.skops", "label": "y", "metrics": ["accuracy", "roc_auc"],
        "input_schema": [{"name": f, "dtype": "float"} for f in FEATURES],
        "test_data": "data/test.csv", "data_location": f"../../daily/m{index:04d}"}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ.update(MLC_HOME=str(root / "home"), MLC_ADMIN_TOKEN="bench",
                          MLC_DATA_ROOTS=json.dumps([str(root / "daily")]),
                          PREFECT_SERVER_ANALYTICS_ENABLED="false")
        from prefect.testing.utilities import prefect_test_harness

        from flows.daily_backtest import backtest_version, daily_backtest
        from mlc_tasks.lifecycle import State
        from mlc_tasks.registry.store import utcnow
        from mlc_tasks.resources import Resources
        from mlc_tasks.settings import REVIEWED_TYPES
        from mlc_tasks.submission import submit_package

        ctx = Resources()
        registry, store = ctx.registry, ctx.store()
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        for index in range(args.models):
            version, _ = submit_package(make_package(root, index, rng), registry, store,
                                        list(REVIEWED_TYPES), "bench")
            for state in (State.TESTED, State.APPROVED):
                registry.transition(version.id, state, "bench")
            runtime = f"prod-{index:04d}"  # a runtime serves one model at a time
            registry.upsert_runtime(runtime, "http://127.0.0.1:9", {"env": "prod"}, {})
            registry.record_deployment(version.id, runtime, "bench", "bench")
        print(f"set-up: {args.models} models in production in "
              f"{time.perf_counter() - start:.1f} s")

        with prefect_test_harness(server_startup_timeout=120):
            start = time.perf_counter()
            results = daily_backtest(day=DAY.isoformat())
            flow_s = time.perf_counter() - start
        assert len(results) == args.models, len(results)

        start = time.perf_counter()
        for model in registry.list_models():
            version = registry.version_in_env_at(model.name, "prod", utcnow())
            assert version is not None and model.data_location
            registry.add_test_result(backtest_version(ctx, version, model.data_location, DAY),
                                     actor="bare")
        bare_s = time.perf_counter() - start
        print(f"daily-backtest flow: {flow_s:.1f} s ({1000 * flow_s / args.models:.1f} ms per "
              f"model) | bare loop: {bare_s:.1f} s ({1000 * bare_s / args.models:.1f} ms per "
              f"model) | ratio {flow_s / bare_s:.2f}x")


if __name__ == "__main__":
    main()
