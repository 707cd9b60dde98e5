"""Runtime against MLflow's scoring server: the credit-risk model served by our runtime (a real
`mlc runtime start` process) and by `mlflow models serve` (installed by this script in a
throwaway environment under ~/.cache/mlc-bench), side by side in one run. For 1 and 100 rows per
request and 1 and 4 concurrent clients: requests/s, p50 and p99 of each, the servers taking turns
within each cell (the order flips from cell to cell), the same dataframe_split bodies, the same
load generator (wrk); an answer counts only when it is 200 with one prediction per row. Beside
it the floor: single-row predict in-process (skops-loaded model, a pandas frame built per call).

    make examples
    .venv/bin/python benchmarks/runtime_bench.py [--quick] [--rounds 3] [--markdown]
    .venv/bin/python benchmarks/runtime_bench.py --many 100 [--quick] [--markdown]

--rounds R repeats every cell (on shared cores a neighbour's load comes and goes): rates and
latencies are medians over the rounds, the ratio the median of the rounds' ratios. --many N
instead measures one runtime holding N models (many_models.py). MLC_RUNTIME_WORKERS, when set,
is passed to our runtime; MLflow runs with its default workers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import skops.io as sio
from mlc_runtime import Installation, RuntimeProcess, free_port, invocation_path
from mlflow_server import (
    MlflowServer,
    ensure_venv,
    save_model,
    served_workers,
    start_server,
    venv_env,
    venv_versions,
)
from process_memory import tree_memory
from wrk_load import LoadResult, ensure_wrk, run_wrk

from mlc_tasks.settings import REVIEWED_TYPES

PACKAGE = Path(__file__).resolve().parent.parent / "examples" / "credit-risk"
CELLS = [(1, 1), (1, 4), (100, 1), (100, 4)]  # (rows per request, concurrent clients)
MODEL = "credit-risk"
BODIES = 10  # distinct bodies per row count, sent in turn (10 × 100 rows: all the test data)


@dataclass(frozen=True)
class Figures:
    """One server in one cell: medians over the cell's counted rounds."""

    rate: float
    p50_ms: float
    p99_ms: float

    @classmethod
    def of(cls, results: list[LoadResult]) -> Figures:
        return cls(statistics.median(r.rate for r in results),
                   statistics.median(r.p50_ms for r in results),
                   statistics.median(r.p99_ms for r in results))


@dataclass(frozen=True)
class Round:
    """Both servers' runs of one cell, back to back; counted only when every answer of both
    was good (a server answering errors fast must not win)."""

    ours: LoadResult
    mlflow: LoadResult

    @property
    def valid(self) -> bool:
        return self.ours.valid and self.mlflow.valid

    def problems(self) -> str:
        return "; ".join(f"{name}: {result.problem()}" for name, result
                         in (("ours", self.ours), ("MLflow", self.mlflow)) if not result.valid)


@dataclass(frozen=True)
class Cell:
    rows: int
    clients: int
    rounds: list[Round]

    @property
    def name(self) -> str:
        return (f"{self.rows} row{'s' if self.rows > 1 else ''}, "
                f"{self.clients} client{'s' if self.clients > 1 else ''}")

    @property
    def goal(self) -> float:
        return 2.0 if self.clients == 4 else 1.5

    @property
    def counted(self) -> list[Round]:
        return [r for r in self.rounds if r.valid]

    @property
    def ours(self) -> Figures | None:
        return Figures.of([r.ours for r in self.counted]) if self.counted else None

    @property
    def mlflow(self) -> Figures | None:
        return Figures.of([r.mlflow for r in self.counted]) if self.counted else None

    @property
    def round_ratios(self) -> list[float]:
        return [r.ours.rate / r.mlflow.rate for r in self.counted]

    @property
    def ratio(self) -> float | None:
        """The median of the rounds' ratios: each round's two runs are neighbours in time, so
        a neighbour's load on the shared cores weighs on both alike."""
        return statistics.median(self.round_ratios) if self.counted else None


@dataclass(frozen=True)
class Floor:
    """In-process single-row predict: a frame built per call, and on one frame built once."""

    p50_ms: float
    p99_ms: float
    prebuilt_p99_ms: float


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 s per cell instead of 8")
    parser.add_argument("--markdown", action="store_true", help="also print README's table")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every cell; figures are the medians over the rounds")
    parser.add_argument("--many", type=int, default=0, metavar="N",
                        help="measure one runtime holding N models instead")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not (PACKAGE / "model.skops").exists():
        raise SystemExit(f"{PACKAGE / 'model.skops'} is missing: run `make examples` first")
    if args.many:
        from many_models import run_many

        run_many(args.many, PACKAGE, quick=args.quick, markdown=args.markdown)
        return
    compare(seconds=2 if args.quick else 8, rounds=args.rounds, markdown=args.markdown)


def test_frame() -> pd.DataFrame:
    columns = json.loads((PACKAGE / "sample.json").read_text())["dataframe_split"]["columns"]
    frame = pd.read_csv(PACKAGE / "data" / "test.csv")[columns]
    if len(frame) < BODIES * 100:
        raise SystemExit(f"{PACKAGE / 'data' / 'test.csv'}: fewer than {BODIES * 100} rows")
    return frame


def request_bodies(folder: Path) -> dict[int, Path]:
    """Per row count, a file of BODIES dataframe_split bodies (one per line) over distinct rows
    of the test data, which wrk sends in turn: no answer can come from a cache of the last."""
    frame, paths = test_frame(), {}
    for rows in sorted({rows for rows, _ in CELLS}):
        lines = [json.dumps({"dataframe_split": json.loads(
            frame.iloc[i * rows:(i + 1) * rows].to_json(orient="split", index=False))})
            for i in range(BODIES)]
        paths[rows] = folder / f"bodies-{rows}.jsonl"
        paths[rows].write_text("\n".join(lines) + "\n")
    return paths


def same_predictions(urls: dict[str, str], bodies: dict[int, Path], model: Any) -> None:
    """Both servers answer every body of the run with the in-process model's predictions."""
    with httpx.Client(timeout=30, headers={"Content-Type": "application/json"}) as client:
        for path in bodies.values():
            for line in path.read_text().splitlines():
                split = json.loads(line)["dataframe_split"]
                expected = model.predict(pd.DataFrame(split["data"],
                                                      columns=split["columns"])).tolist()
                for name, url in urls.items():
                    answer = client.post(url, content=line)
                    got = answer.json().get("predictions") if answer.status_code == 200 else None
                    if got != expected:
                        raise SystemExit(f"{name} answers {answer.status_code} "
                                         f"{answer.text[:300]}, not {expected}")


def load_model() -> Any:
    """The artifact loaded with skops, trusting our reviewed types, as the runtime does."""
    return sio.load(PACKAGE / "model.skops", trusted=list(REVIEWED_TYPES))


def timed(call: Callable[[], object], seconds: float) -> list[float]:
    samples, deadline = [], time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def in_process_floor(model: Any, seconds: float) -> Floor:
    """The same artifact loaded with skops, one row (the sample's first) per predict."""
    split = json.loads((PACKAGE / "sample.json").read_text())["dataframe_split"]
    columns, data = split["columns"], split["data"][:1]
    frame = pd.DataFrame(data, columns=columns)
    timed(lambda: model.predict(frame), 1.0)  # warm-up
    per_call = timed(lambda: model.predict(pd.DataFrame(data, columns=columns)), seconds)
    prebuilt = timed(lambda: model.predict(frame), seconds)
    return Floor(statistics.median(per_call), p99(per_call), p99(prebuilt))


def measure(wrk: str, urls: dict[str, str], bodies: dict[int, Path], seconds: int,
            rounds: int) -> list[Cell]:
    """Each cell runs both servers back to back; who goes first alternates from cell to cell
    and from round to round."""
    cells = [Cell(rows, clients, []) for rows, clients in CELLS]
    for round_ in range(rounds):
        for index, cell in enumerate(cells):
            order = list(urls) if (index + round_) % 2 == 0 else list(reversed(urls))
            results = {}
            for name in order:
                time.sleep(1)  # let the other server's last requests drain
                results[name] = run_wrk(wrk, urls[name], bodies[cell.rows], cell.rows,
                                        cell.clients, seconds)
            cell.rounds.append(Round(results["ours"], results["mlflow"]))
        print(f"  round {round_ + 1} of {rounds} done", flush=True)
    return cells


def warm_up(wrk: str, urls: dict[str, str], bodies: dict[int, Path]) -> None:
    """Two seconds per server and body; then the check itself is checked: answers with a
    prediction count other than the one expected must all count as bad."""
    for name, url in urls.items():
        for rows, body in bodies.items():
            result = run_wrk(wrk, url, body, rows, 2, 2)
            if not result.valid:
                raise SystemExit(f"{name} fails during the warm-up: {result.problem()}")
        wrong = run_wrk(wrk, url, bodies[100], 1, 1, 1)
        if wrong.good or wrong.bad != wrong.requests:
            raise SystemExit(f"wrk_post.lua took 100 predictions for 1 from {name}")


def compare(seconds: int, rounds: int, markdown: bool) -> None:
    wrk = ensure_wrk()
    venv, requirements = ensure_venv()
    with tempfile.TemporaryDirectory(prefix="mlc-bench-") as scratch, ExitStack() as stack:
        folder = Path(scratch)
        runtime, mlflow = start_both(folder, venv, stack)
        path = invocation_path(runtime.health(), MODEL)
        urls = {"ours": f"{runtime.url}{path}", "mlflow": f"{mlflow.url}/invocations"}
        bodies, model = request_bodies(folder), load_model()
        same_predictions(urls, bodies, model)
        mlflow_client_check(venv, runtime.url, folder, model)
        describe(venv, requirements, runtime, mlflow, path, folder / "mlflow.log")
        floor = in_process_floor(model, seconds)
        warm_up(wrk, urls, bodies)
        print(f"{seconds} s per server and cell, {rounds} round(s), load average "
              f"{os.getloadavg()[0]:.2f}", flush=True)
        cells = measure(wrk, urls, bodies, seconds, rounds)
        memory(runtime, mlflow)
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    report(cells, floor, markdown)


def mlflow_client_check(venv: Path, url: str, folder: Path, model: Any) -> None:
    """MLflow's own scoring client against our runtime (serving one model, so /invocations)."""
    split = json.loads((PACKAGE / "sample.json").read_text())["dataframe_split"]
    expected = folder / "expected.json"
    frame = pd.DataFrame(split["data"], columns=split["columns"])
    expected.write_text(json.dumps(np.asarray(model.predict(frame)).tolist()))
    host, port = url.removeprefix("http://").split(":")
    print("MLflow's ScoringServerClient against our runtime:")
    subprocess.run([str(venv / "bin" / "python"), str(Path(__file__).with_name(
        "mlflow_client_check.py")), host, port, str(PACKAGE / "sample.json"), str(expected)],
        check=True, env=venv_env(venv))


def start_both(folder: Path, venv: Path, stack: ExitStack
               ) -> tuple[RuntimeProcess, MlflowServer]:
    """Our runtime serving the submitted package, and MLflow's server on the same artifact;
    both stopped when `stack` closes."""
    installation = Installation(folder / "home", [str(PACKAGE.parent / "daily")])
    stack.callback(installation.registry.close)
    version = installation.submit(PACKAGE)
    runtime = RuntimeProcess(installation, "bench", free_port(), folder / "runtime.log").start()
    stack.callback(runtime.stop)
    runtime.deploy(version)
    save_model(venv, PACKAGE / "model.skops", PACKAGE / "sample.json", folder / "mlflow-model",
               list(REVIEWED_TYPES))
    mlflow = start_server(venv, folder / "mlflow-model", free_port(), folder / "mlflow.log")
    stack.callback(mlflow.stop)
    return runtime, mlflow


def describe(venv: Path, requirements: list[str], runtime: RuntimeProcess, mlflow: MlflowServer,
             path: str, log: Path) -> None:
    versions = venv_versions(venv)
    assert runtime.process is not None
    workers = os.environ.get("MLC_RUNTIME_WORKERS", "unset (the runtime's default)")
    print(f"credit-risk gradient boosting, {os.cpu_count()} cores")
    print(f"MLflow environment: {', '.join(f'{k} {v}' for k, v in versions.items())} "
          f"(asked: {' '.join(requirements)})")
    print(f"MLflow: `mlflow models serve --env-manager local`, default workers: "
          f"{served_workers(log)} uvicorn worker(s), {tree_memory(mlflow.process.pid).processes}"
          f" processes")
    print(f"ours: `mlc runtime start`, POST {path}, MLC_RUNTIME_WORKERS={workers}, "
          f"{tree_memory(runtime.process.pid).processes} processes")


def memory(runtime: RuntimeProcess, mlflow: MlflowServer) -> None:
    assert runtime.process is not None
    for name, pid in (("ours", runtime.process.pid), ("MLflow", mlflow.process.pid)):
        used = tree_memory(pid)
        print(f"{name} after the run: {used.processes} processes, RSS "
              f"{used.rss_bytes / 2**20:.0f} MiB, PSS {used.pss_bytes / 2**20:.0f} MiB")


def figures(cell: Cell) -> list[str]:
    def rate(result: Figures | None) -> str:
        return "void" if result is None else f"{result.rate:.1f}"

    def latency(result: Figures | None) -> str:
        return "void" if result is None else f"{result.p50_ms:.2f} / {result.p99_ms:.2f}"

    ratio = "n/a" if cell.ratio is None else f"{cell.ratio:.2f}×"
    met = "" if cell.ratio is None else (" met" if cell.ratio >= cell.goal else " missed")
    return [cell.name, rate(cell.ours), rate(cell.mlflow), ratio, f"≥ {cell.goal:.1f}×{met}",
            latency(cell.ours), latency(cell.mlflow)]


HEADER = ["cell", "ours req/s", "MLflow req/s", "ours/MLflow", "goal", "ours p50 / p99 ms",
          "MLflow p50 / p99 ms"]


def report(cells: list[Cell], floor: Floor, markdown: bool) -> None:
    rows = [HEADER, *[figures(cell) for cell in cells]]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    print()
    for row in rows:
        print("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
    for cell in cells:
        if len(cell.rounds) > 1:
            print(f"{cell.name}: ours/MLflow by round "
                  f"{' '.join(f'{r:.2f}×' for r in cell.round_ratios)}")
        for number, round_ in enumerate(cell.rounds, 1):
            if not round_.valid:
                print(f"{cell.name}: round {number} not counted ({round_.problems()})")
    print(f"\nin-process predict, 1 row: p50 {floor.p50_ms:.2f} ms, p99 {floor.p99_ms:.2f} ms "
          f"(frame built per call; {floor.prebuilt_p99_ms:.2f} ms on a prebuilt frame)")
    ours, mlflow = cells[0].ours, cells[0].mlflow
    if ours is not None and mlflow is not None:
        print(f"single-row p99 over HTTP / in-process: ours {ours.p99_ms / floor.p99_ms:.2f}×, "
              f"MLflow {mlflow.p99_ms / floor.p99_ms:.2f}× (goal: ours within 2×)")
    print("goal: ours ≥ 2× MLflow's requests/s with 4 clients, ≥ 1.5× in every other cell")
    if markdown:
        print()
        print("| " + " | ".join(HEADER) + " |")
        print("|" + "---|" * len(HEADER))
        for row in rows[1:]:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
