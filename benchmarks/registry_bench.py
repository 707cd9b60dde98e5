"""Registry with 100,000 versions: list and lookup latency (p50/p95), SQLite by default.

    .venv/bin/python benchmarks/registry_bench.py [--url URL-of-an-empty-scratch-database]

Versions are bulk-inserted (the benchmark is about reads); registration through the public
API is timed separately on a sample, since each one is a transaction with an audit append.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from random import Random

from sqlalchemy import insert

from mlc_tasks.packages import ModelSpec
from mlc_tasks.registry import NewVersion, Registry
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tables import ModelRow, VersionRow

MODELS, VERSIONS_PER_MODEL = 100, 1000
BENCH_AUDIT_KEY = "registry-bench-audit-key-0123456789"  # a throwaway registry's
SCHEMA = [{"name": f"f{i}", "dtype": "float", "nullable": False} for i in range(10)]


def spec(name: str) -> ModelSpec:
    return ModelSpec.model_validate({
        "name": name, "type": "classification", "owner": "bench", "risk_tier": "low",
        "artifact": "model.skops", "input_schema": SCHEMA, "label": "y", "metrics": ["accuracy"]})


def new_version(i: int) -> NewVersion:
    digest = uuid.uuid4().hex * 2
    return NewVersion(
        source_sha256=digest, artifact_uri=f"/artifacts/{digest}", artifact_sha256=digest,
        format="skops", artifact_types=[], trusted_types=[], input_schema=SCHEMA, label="y",
        metrics=["accuracy"], sensitive_attributes=[], sample_rows=[], training=None,
        parent_version_id=None, training_data_sha256=None, parameters={"i": i}, seed=i,
        package_uri=None)


def fill(registry: Registry) -> None:
    now = utcnow()
    with registry.engine.begin() as conn:
        conn.execute(insert(ModelRow), [
            {"id": m + 1, "name": f"model-{m:03d}", "type": "classification", "owner": "bench",
             "risk_tier": "low", "tags": {}, "description": "", "created_at": now}
            for m in range(MODELS)])
        for m in range(MODELS):
            rows = []
            for n in range(1, VERSIONS_PER_MODEL + 1):
                v = new_version(n).model_dump(mode="json")
                rows.append({**v, "id": uuid.uuid4().hex, "model_id": m + 1, "number": n,
                             "state": "submitted", "created_by": "bench", "created_at": now})
            conn.execute(insert(VersionRow), rows)


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    quantiles = statistics.quantiles(samples, n=20)
    return statistics.median(samples), quantiles[18]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="registry URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        registry = Registry(url, audit_key=BENCH_AUDIT_KEY)
        start = time.perf_counter()
        fill(registry)
        print(f"backend {registry.engine.dialect.name}: inserted {MODELS * VERSIONS_PER_MODEL:,} "
              f"versions in {time.perf_counter() - start:.1f} s")
        rng = Random(1)
        ids = [registry.get_version(f"model-{m:03d}", 1).id for m in range(10)]
        cases = {
            "list newest 20 versions of a model": lambda: registry.list_versions(
                f"model-{rng.randrange(MODELS):03d}", limit=20),
            "list all 1,000 versions of a model": lambda: registry.list_versions(
                f"model-{rng.randrange(MODELS):03d}"),
            "list all 100 models": registry.list_models,
            "look up a version by name+number": lambda: registry.get_version(
                f"model-{rng.randrange(MODELS):03d}", rng.randrange(1, VERSIONS_PER_MODEL + 1)),
            "look up a version by id": lambda: registry.get_version_by_id(rng.choice(ids)),
        }
        print(f"{'operation':40} {'p50 ms':>8} {'p95 ms':>8}")
        for name, call in cases.items():
            p50, p95 = timed(call, 50 if "all 1,000" in name else 300)
            print(f"{name:40} {p50:8.2f} {p95:8.2f}")
        p50, p95 = timed(lambda: registry.register_version(spec("model-000"),
                                                           new_version(0), "bench"), 200)
        print(f"{'register a version (audited transaction)':40} {p50:8.2f} {p95:8.2f}")
        registry.close()


if __name__ == "__main__":
    main()
