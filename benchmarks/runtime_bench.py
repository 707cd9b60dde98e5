"""Runtime: predict throughput and latency over HTTP for the example classifier, beside the same
predict called in-process (the floor), as a ratio.

    .venv/bin/python examples/generate.py examples/credit-risk
    .venv/bin/python benchmarks/runtime_bench.py

Starts a real runtime (`mlc runtime start`) on a loopback port with a throwaway MLC_HOME.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from deployments.runtime_server import ScoringSlot, predict
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.registry import Registry
from mlc_tasks.runtimes import DeployRequest, RuntimeClient, deploy_version
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package

PACKAGE = Path(__file__).resolve().parent.parent / "examples" / "credit-risk"
SECONDS = 8.0
TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_for(call, seconds: float, threads: int = 1) -> list[float]:
    """Call repeatedly from `threads` threads for `seconds`; latencies in ms."""
    def worker() -> list[float]:
        samples, deadline = [], time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            call()
            samples.append((time.perf_counter() - start) * 1000)
        return samples

    with ThreadPoolExecutor(threads) as pool:
        return [s for part in pool.map(lambda _: worker(), range(threads)) for s in part]


def report(name: str, samples: list[float], seconds: float) -> float:
    rate = len(samples) / seconds
    p99 = statistics.quantiles(samples, n=100)[98]
    print(f"{name:44} {rate:9.0f}/s  p50 {statistics.median(samples):6.2f} ms  p99 {p99:6.2f} ms")
    return rate


def main() -> None:
    os.environ["MLC_DATA_ROOTS"] = json.dumps([str(PACKAGE.parent / "daily")])
    with tempfile.TemporaryDirectory() as home:
        settings = MlcSettings(home=Path(home), admin_token=TOKEN)
        registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
        version, _ = submit_package(PACKAGE, registry, ArtifactStore(settings.artifact_url()),
                                    list(REVIEWED_TYPES), "bench")
        port = free_port()
        env = {**os.environ, "MLC_HOME": home, "MLC_ADMIN_TOKEN": TOKEN}
        runtime = subprocess.Popen([sys.executable, "-m", "deployments.cli", "runtime", "start",
                                    "bench", "--tags", "env=bench", "--port", str(port)], env=env)
        try:
            url = f"http://127.0.0.1:{port}"
            wait(url)
            deploy_version(registry, RuntimeClient(url, TOKEN), registry.get_runtime("bench"),
                           version, "bench")
            measure(url, version)
        finally:
            runtime.terminate()
            runtime.wait()


def measure(url: str, version) -> None:
    body = json.loads((PACKAGE / "sample.json").read_text())
    one_row = {"dataframe_split": {"columns": body["dataframe_split"]["columns"],
                                   "data": body["dataframe_split"]["data"][:1]}}
    slot = ScoringSlot(list(REVIEWED_TYPES))
    slot.deploy(DeployRequest.for_version(version))
    rows = [dict(zip(one_row["dataframe_split"]["columns"], one_row["dataframe_split"]["data"][0],
                     strict=True))]
    print(f"credit-risk gradient boosting, 1 row per request, {SECONDS:.0f} s each, "
          f"{os.cpu_count()} cores")
    floor = report("in-process predict (validation + model)",
                   run_for(lambda: predict(slot.current, rows), SECONDS), SECONDS)
    with httpx.Client(base_url=url) as client:
        def call() -> None:
            client.post("/invocations", json=one_row).raise_for_status()

        http1 = report("HTTP /invocations, 1 client", run_for(call, SECONDS), SECONDS)
        http4 = report("HTTP /invocations, 4 concurrent clients",
                       run_for(call, SECONDS, threads=4), SECONDS)
    print(f"throughput ratio in-process / HTTP: {floor / http1:.2f}x (1 client), "
          f"{floor / http4:.2f}x (4 clients)")


def wait(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit("runtime did not start")


if __name__ == "__main__":
    main()
