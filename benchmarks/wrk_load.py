"""The load generator of runtime_bench.py: Debian's `wrk` with wrk_post.lua, one wrk thread (a C
event loop that needs a small share of a core at these rates) holding N keep-alive connections,
each one client that sends its next request when the answer arrives; the requests are formatted
once, before the clock starts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "wrk_post.lua"


@dataclass(frozen=True)
class LoadResult:
    """One wrk run against one server: answers counted good only when 200 with one prediction
    per row."""

    requests: int
    seconds: float
    good: int
    bad: int
    bad_status: int
    socket_errors: dict[str, int]  # connect, read, write, timeout
    p50_ms: float
    p99_ms: float

    @property
    def valid(self) -> bool:
        return self.good > 0 and self.bad == 0 and not any(self.socket_errors.values())

    @property
    def rate(self) -> float:
        return self.good / self.seconds

    def problem(self) -> str:
        errors = ", ".join(f"{count} {kind}" for kind, count in self.socket_errors.items()
                           if count) or "none"
        return (f"{self.bad} bad answers (last status {self.bad_status}), socket errors: "
                f"{errors}; {self.good} good")


def ensure_wrk() -> str:
    """wrk's path; installed from Debian when missing and this is root (as `make sandbox`
    installs bubblewrap)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit("wrk is missing: install it (apt-get install wrk)")
    print("installing wrk, the load generator (apt-get install wrk)")
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(install, check=True, capture_output=True)
    return shutil.which("wrk") or "wrk"


def run_wrk(wrk: str, url: str, bodies: Path, rows: int, clients: int, seconds: int
            ) -> LoadResult:
    """POST the bodies in turn (a file of one per line, `rows` rows each) to `url` from
    `clients` connections for `seconds`."""
    command = [wrk, "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "10s", "--latency",
               "-s", str(LUA), url, "--", str(bodies), str(rows)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed on {url}: {done.stderr.strip() or done.stdout.strip()}")
    raw = json.loads(lines[-1].removeprefix("BENCH "))
    return LoadResult(requests=raw["requests"], seconds=raw["micros"] / 1e6, good=raw["good"],
                      bad=raw["bad"], bad_status=raw["bad_status"],
                      socket_errors=raw["errors"], p50_ms=raw["p50_us"] / 1000,
                      p99_ms=raw["p99_us"] / 1000)
