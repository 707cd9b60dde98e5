"""How fast the `mlc` command answers: wall time of `mlc --help` and `mlc tasks` (against a
control-plane API this script starts on a scratch home), beside `prefect --help` and
`mlflow --help` (when installed), median of a few runs each, and their ratios to `mlc --help`.

    .venv/bin/python benchmarks/cli_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry import Registry
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.settings import MlcSettings

BIN = Path(sys.executable).parent


def wall(command: list[str], env: dict[str, str], runs: int) -> float:
    """Median wall seconds of `runs` runs (after one warm-up, so files are cached)."""
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def start_api(home: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    """The installation's API on a scratch home, and a token of a person enrolled there."""
    settings = MlcSettings(home=home)
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    token = PrincipalBook(registry).enroll("bench@example.org", PrincipalKind.PERSON,
                                           "local:bench").token
    registry.close()
    env = {**os.environ, "MLC_HOME": str(home), "MLC_API_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-m", "deployments.api"], env=env,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process, token
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the API did not start")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    home = Path(tempfile.mkdtemp(prefix="mlc-cli-bench-"))
    port = free_port()
    process, token = start_api(home / "home", port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLC_")}
    env.update(MLC_API_URL=f"http://127.0.0.1:{port}", MLC_TOKEN=token, DO_NOT_TRACK="1",
               PREFECT_SERVER_ANALYTICS_ENABLED="false")
    try:
        found = {"mlc --help": wall([str(BIN / "mlc"), "--help"], env, runs),
                 "mlc tasks": wall([str(BIN / "mlc"), "tasks"], env, runs),
                 "prefect --help": wall([str(BIN / "prefect"), "--help"], env, runs)}
        mlflow = shutil.which("mlflow", path=str(BIN)) or shutil.which("mlflow")
        found["mlflow --help"] = wall([mlflow, "--help"], env, runs) if mlflow else None
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(home, ignore_errors=True)
    base = found["mlc --help"]
    print(f"{'command':<16} {'median s':>9} {'x mlc --help':>13}   ({runs} runs each)")  # noqa: T201
    for command, seconds in found.items():
        if seconds is None:
            print(f"{command:<16} {'not installed':>9}")  # noqa: T201
        else:
            print(f"{command:<16} {seconds:>9.3f} {seconds / base:>13.1f}")  # noqa: T201


if __name__ == "__main__":
    main()
