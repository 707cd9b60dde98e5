"""One runtime holding many models (runtime_bench.py --many N): the credit-risk package submitted
as N + 1 differently named models, N deployed onto one runtime one after another. Measured:
memory per model (the runtime's processes before and after, divided by N; and what /health
reports per model, if it does), single-row predict p50/p99 of cold-routed models (each called
once, after the runtime sat idle) against a hot one (called just before each of them), and the
deploy time of the (N + 1)th. Every copy's artifact differs by a zip comment, so sharing by
content hash cannot hide the memory a model takes."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
from mlc_runtime import Installation, RuntimeProcess, free_port, invocation_path
from process_memory import TreeMemory, tree_memory

SEED = 7
MEMORY_KEYS = ("memory", "rss")  # a /health model entry's keys that report its memory


def copy_package(source: Path, root: Path, name: str) -> Path:
    """`source` copied to root/name as model `name`, its artifact made unique by a comment."""
    target = Path(shutil.copytree(source, root / name))
    spec = target / "model.yaml"
    text, renamed = re.subn(r"^name: .*$", f"name: {name}", spec.read_text(), count=1,
                            flags=re.MULTILINE)
    if not renamed:
        raise SystemExit(f"{spec}: no `name:` line to rewrite")
    spec.write_text(text)
    with zipfile.ZipFile(target / "model.skops", "a") as artifact:
        artifact.comment = f"benchmark copy {name}".encode()
    return target


def entry_memory(entry: Any) -> int | None:
    """The memory a /health model entry reports: its own or its current version's."""
    if not isinstance(entry, dict):
        return None
    for key, value in entry.items():
        if any(word in key.lower() for word in MEMORY_KEYS) and isinstance(value, int):
            return value
    return entry_memory(entry.get("current"))


def reported_memory(health: dict[str, Any]) -> list[int]:
    """Per-model memory as /health reports it (empty when it does not)."""
    models = health["models"]
    entries = models.values() if isinstance(models, dict) else models
    return [found for found in map(entry_memory, entries) if found is not None]


def single_row(package: Path) -> bytes:
    """A dataframe_split body of the sample's first row."""
    split = json.loads((package / "sample.json").read_text())["dataframe_split"]
    return json.dumps({"dataframe_split": {**split, "data": split["data"][:1]}}).encode()


def one_request(client: httpx.Client, path: str, body: bytes) -> float:
    """Milliseconds of one single-row predict; anything but one prediction stops the run."""
    start = time.perf_counter()
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200 or len(response.json().get("predictions", [])) != 1:
        raise SystemExit(f"POST {path}: {response.status_code} {response.text[:300]}")
    return elapsed


def cold_and_hot(runtime: RuntimeProcess, names: list[str], body: bytes, idle: float
                 ) -> tuple[list[float], list[float]]:
    """After `idle` seconds, each cold model once in a seeded order, each after one call to the
    hot model (names[0]); latencies in ms of (hot, cold)."""
    health = runtime.health()
    hot_path = invocation_path(health, names[0])
    cold = names[1:]
    random.Random(SEED).shuffle(cold)
    hot_ms, cold_ms = [], []
    with httpx.Client(base_url=runtime.url, timeout=30) as client:
        for _ in range(20):
            one_request(client, hot_path, body)
        time.sleep(idle)
        for name in cold:
            hot_ms.append(one_request(client, hot_path, body))
            cold_ms.append(one_request(client, invocation_path(health, name), body))
    return hot_ms, cold_ms


def run_many(count: int, package: Path, quick: bool, markdown: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="mlc-bench-many-") as scratch:
        root = Path(scratch)
        (root / "packages").mkdir()
        roots = [str(root / "packages" / "daily"), str(package.parent / "daily")]
        installation = Installation(root / "home", roots)
        runtime = RuntimeProcess(installation, "many", free_port(), root / "runtime.log",
                                 {"MLC_RUNTIME_MAX_MODELS": str(count + 1)}).start()
        try:
            if "models" not in runtime.health():
                print("runtime serves one model; skipped (its /health has no `models`)")
                return
            measure_many(runtime, installation, package, root / "packages", count, quick,
                         markdown)
        finally:
            runtime.stop()


def measure_many(runtime: RuntimeProcess, installation: Installation, package: Path,
                 packages: Path, count: int, quick: bool, markdown: bool) -> None:
    assert runtime.process is not None
    names = [f"{package.name}-{index:03d}" for index in range(count + 1)]
    print(f"submitting {count + 1} copies of {package.name}", flush=True)
    versions = [installation.submit(copy_package(package, packages, name)) for name in names]
    empty = tree_memory(runtime.process.pid)
    print(f"deploying {count} of them onto one runtime", flush=True)
    deploys = [runtime.deploy(versions[0])]
    time.sleep(1)
    one = tree_memory(runtime.process.pid)  # the first model also brings one-time imports
    deploys += [runtime.deploy(version) for version in versions[1:count]]
    time.sleep(1)
    after = tree_memory(runtime.process.pid)
    reported = reported_memory(runtime.health())
    last = runtime.deploy(versions[count])
    hot, cold = cold_and_hot(runtime, names[:count], single_row(package),
                             idle=2 if quick else 10)
    lines = summary(count, (empty, one, after), reported, deploys, last, hot, cold)
    for line in lines:
        print(line)
    if markdown:
        print("\n| measure | value |\n|---|---|")
        for line in lines[1:]:
            measure_name, _, value = line.partition(": ")
            print(f"| {measure_name} | {value} |")


def ordinal(number: int) -> str:
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{'th' if 10 <= number % 100 <= 20 else suffix}"


def summary(count: int, memory: tuple[TreeMemory, TreeMemory, TreeMemory], reported: list[int],
            deploys: list[float], last: float, hot: list[float], cold: list[float]) -> list[str]:
    """`memory`: the runtime with no model, with one, with `count`."""
    mib, (empty, one, full) = 2**20, memory
    workers = os.environ.get("MLC_RUNTIME_WORKERS", "unset (the runtime's default)")
    others = max(count - 1, 1)
    rss, pss = ((full.rss_bytes - one.rss_bytes) / others / mib,
                (full.pss_bytes - one.pss_bytes) / others / mib)
    lines = [
        f"{count} models on one runtime: {full.processes} processes, "
        f"MLC_RUNTIME_WORKERS={workers}, {os.cpu_count()} cores",
        f"memory per model after the first: RSS {rss:.2f} MiB, PSS {pss:.2f} MiB (all "
        f"processes; RSS {empty.rss_bytes / mib:.0f} MiB with none, {one.rss_bytes / mib:.0f} "
        f"MiB with one, {full.rss_bytes / mib:.0f} MiB with {count})",
    ]
    if reported:
        lines.append(f"memory per model by /health: {statistics.mean(reported) / 1024:.0f} KiB "
                     f"mean over {len(reported)} models")
    lines += [
        f"deploy: 1st {deploys[0]:.2f} s, median {statistics.median(deploys):.2f} s, "
        f"{ordinal(count)} {deploys[-1]:.2f} s",
        f"deploy of the {ordinal(count + 1)}: {last:.2f} s",
        f"predict hot p50 / p99: {statistics.median(hot):.2f} / {p99(hot):.2f} ms",
        f"predict cold p50 / p99: {statistics.median(cold):.2f} / {p99(cold):.2f} ms "
        f"({len(cold)} models, each called once after the runtime sat idle)",
    ]
    return lines


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 1 else samples[0]
