"""on-model-changed, from `mlc submit` to production on the auto-approve path: wall time of the
real path (submit → Prefect event → trigger → served flow run → train, test, scan, approve,
deploy QA and prod) beside the same steps in a bare Python script, as a ratio; the ML work
(train + test) measured on its own. Once with Prefect's server on SQLite and once on
PostgreSQL when MLC_BENCH_PREFECT_PG_URL is set (an asyncpg URL of an empty database).

    .venv/bin/python examples/generate.py examples/credit-risk
    .venv/bin/python benchmarks/pipeline_bench.py

Everything runs on loopback with a throwaway MLC_HOME and PREFECT_HOME; the bench's own
Prefect server runs without auth. `mlc submit` goes through the control-plane API as the
enrolled service `bench`; approvals resume as `rita` with her current one-time code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import yaml

from mlc_tasks import credentials, evaluation
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.lifecycle import State
from mlc_tasks.packages import ModelType
from mlc_tasks.people import PrincipalKind
from mlc_tasks.policy import Threshold
from mlc_tasks.registry import Registry
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.runtimes import RuntimeClient, deploy_version
from mlc_tasks.scan import scan_version
from mlc_tasks.serialization import load_artifact
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import package_member, submit_package
from mlc_tasks.task_records import HumanTask
from mlc_tasks.training import train_artifact

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "credit-risk"
RUNS = 3
TOKEN = "bench-token"
BIN = Path(sys.executable).parent
POLICY = {"people": [{"id": "rita", "groups": ["risk"]}],
          "approvals": [{"match": {"risk_tier": ["high"]}, "groups": ["risk"], "deadline": "1h"},
                        {"auto_approve": True}],
          "thresholds": {"classification": {"roc_auc": {"min": 0.6}}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def training_package(root: Path, seed: int, risk_tier: str = "low") -> Path:
    """The credit-risk example, trained by the pipeline (low risk: auto-approved). High risk
    is its own model: a registered model's risk tier is not changed by a package."""
    folder = root / f"pkg-{seed}"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("model.skops"))
    spec = yaml.safe_load((folder / "model.yaml").read_text())
    spec.pop("artifact"), spec.pop("lineage")
    spec.update(name=model_name(risk_tier), risk_tier=risk_tier, training={
        "estimator": "gradient_boosting", "data": "data/train.csv", "seed": seed,
        "params": {"n_estimators": 60, "max_depth": 3}})
    (folder / "model.yaml").write_text(yaml.safe_dump(spec))
    return folder


def model_name(risk_tier: str) -> str:
    return "bench-risk" if risk_tier == "low" else f"bench-risk-{risk_tier}"


class Stack:
    """A Prefect server, a QA and a prod runtime, and the served deployments."""

    def __init__(self, root: Path, prefect_db: str | None) -> None:
        self.home, self.children = root / "home", []
        port = free_port()
        self.api = f"http://127.0.0.1:{port}/api"
        (root / "policy.yaml").write_text(yaml.safe_dump(POLICY))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("MLC_",
                                                                               "PREFECT_"))}
        self.env.update(MLC_HOME=str(self.home), MLC_ADMIN_TOKEN=TOKEN, MLC_USER="bench",
                        MLC_DATA_ROOTS=json.dumps([str(root / "daily")]),
                        MLC_POLICY_FILE=str(root / "policy.yaml"), PREFECT_API_URL=self.api,
                        PREFECT_HOME=str(root / "prefect"), PREFECT_SERVER_API_PORT=str(port),
                        MLC_API_PORT=str(free_port()), PREFECT_RUNNER_POLL_FREQUENCY="1",
                        PREFECT_SERVER_ANALYTICS_ENABLED="false")
        if prefect_db:
            self.env["PREFECT_API_DATABASE_CONNECTION_URL"] = prefect_db
        for name in ("MLC_HOME", "MLC_DATA_ROOTS"):  # the bare script checks locations as the
            os.environ[name] = self.env[name]  # stack does
        self.spawn([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                    "--port", str(port)])
        wait_healthy(f"{self.api}/health")
        self.runtimes = {}
        for name in ("qa", "prod"):
            rport = free_port()
            self.spawn([str(BIN / "mlc"), "runtime", "start", name, "--tags", f"env={name}",
                        "--port", str(rport)])
            self.runtimes[name] = f"http://127.0.0.1:{rport}"
            wait_healthy(f"{self.runtimes[name]}/health")
        self.spawn([sys.executable, "-m", "deployments.serve"])
        self.spawn([sys.executable, "-m", "deployments.api"])
        wait_healthy(f"http://127.0.0.1:{self.env['MLC_API_PORT']}/health")
        deadline = time.monotonic() + 120
        while not httpx.post(f"{self.api}/automations/filter", json={}).json():
            if time.monotonic() > deadline:
                raise RuntimeError("the deployments' triggers did not appear")
            time.sleep(0.5)
        time.sleep(2)  # the trigger service loads new automations
        self.registry = Registry(f"sqlite:///{self.home / 'registry.db'}",  # the stack's key
                                 audit_key=MlcSettings(home=self.home).resolved_audit_key())
        book = PrincipalBook(self.registry)  # as `mlc people enroll` does
        self.env["MLC_TOKEN"] = book.enroll("bench", PrincipalKind.SERVICE, "bench").token
        uri = str(book.enroll("rita", PrincipalKind.PERSON, "bench").otpauth_uri)
        self.rita_secret = parse_qs(urlsplit(uri).query)["secret"][0]
        self.rita_step = 0  # each step's code is accepted once, and only after older ones

    def spawn(self, command: list[str]) -> None:
        log = open(self.home.parent / f"{len(self.children)}.log", "wb")  # noqa: SIM115
        self.children.append(subprocess.Popen(command, env=self.env, stdout=log,
                                              stderr=subprocess.STDOUT,
                                              start_new_session=True))

    def submit_to_production(self, folder: Path) -> dict[str, float]:
        """Seconds: total, the `mlc submit` command, event → flow run running, the run."""
        start = time.perf_counter()
        done = subprocess.run([str(BIN / "mlc"), "submit", str(folder)], env=self.env,
                              capture_output=True, text=True, check=True)
        submitted = time.perf_counter()
        number = int(done.stdout.split(":")[1].split()[0])
        while self.registry.get_version("bench-risk", number).state != State.DEPLOYED:
            if time.perf_counter() - start > 300:
                raise RuntimeError(f"bench-risk:{number} did not reach production")
            time.sleep(0.05)
        total = time.perf_counter() - start
        return {"total": total, "submit": submitted - start, "run": self.run_seconds(number)}

    def run_seconds(self, number: int) -> float:
        """The run time Prefect recorded for this version's on-model-changed run, once it
        has ended (production is reached a moment before the run finishes)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            runs = httpx.post(f"{self.api}/flow_runs/filter", json={
                "flows": {"name": {"any_": ["on-model-changed"]}}}).json()
            mine = [r for r in runs if r["parameters"] == {"model": "bench-risk",
                                                           "number": number}]
            if mine and mine[0]["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED"):
                return float(mine[0]["total_run_time"])
            time.sleep(0.1)
        raise RuntimeError(f"the on-model-changed run of bench-risk:{number} did not end")

    def approval_latency(self, folder: Path) -> float:
        """Seconds from the approval's resume call until the flow has recorded it and moved
        the version to approved (then waits for production, so runs do not overlap)."""
        done = subprocess.run([str(BIN / "mlc"), "submit", str(folder)], env=self.env,
                              capture_output=True, text=True, check=True)
        number = int(done.stdout.split(":")[1].split()[0])
        task = self.wait_for_pause(number)
        code = self.rita_code()
        start = time.perf_counter()
        answer = httpx.post(f"{self.api}/flow_runs/{task.flow_run_id}/resume", json={
            "run_input": {"decision": "approve", "approver": "rita", "one_time_code": code,
                          "comment": "bench"}})
        assert answer.status_code in (200, 201) and answer.json()["status"] == "ACCEPT", (
            answer.status_code, answer.text)
        name = model_name("high")
        while self.registry.get_version(name, number).state == State.TESTED:
            if time.perf_counter() - start > 120:
                raise RuntimeError(f"{name}:{number}: rita's approval was not accepted")
            time.sleep(0.02)
        latency = time.perf_counter() - start
        while self.registry.get_version(name, number).state != State.DEPLOYED:
            time.sleep(0.1)
        return latency

    def rita_code(self) -> str:
        """Rita's code of the first step later than her last one (the next step's code is
        accepted too, for clock skew), waiting when even that was used."""
        while (step := max(credentials.totp_counter(), self.rita_step + 1)) > \
                credentials.totp_counter() + credentials.TOTP_DRIFT_STEPS:
            time.sleep(0.5)
        self.rita_step = step
        return credentials.totp_code(self.rita_secret, step)

    def wait_for_pause(self, number: int) -> HumanTask:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for task in TaskBook(self.registry).list(model=model_name("high")):
                if task.number == number and task.flow_run_id and httpx.get(
                        f"{self.api}/flow_runs/{task.flow_run_id}").json()["state"][
                        "type"] == "PAUSED":
                    return task
            time.sleep(0.1)
        raise RuntimeError(f"{model_name('high')}:{number} did not wait for approval")

    def stop(self) -> None:
        self.registry.close()
        for child in reversed(self.children):
            os.killpg(child.pid, signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def bare_script(stack: Stack, folder: Path) -> tuple[float, float]:
    """The same steps with no Prefect: returns (total seconds, ML seconds: train + test)."""
    registry, store = stack.registry, ArtifactStore(f"file://{stack.home / 'artifacts'}")
    start = time.perf_counter()
    version, _ = submit_package(folder, registry, store, list(REVIEWED_TYPES), "bench")
    ml_start = time.perf_counter()
    artifact = train_artifact(version, ModelType.CLASSIFICATION, list(REVIEWED_TYPES), store)
    version = registry.attach_artifact(version.id, artifact, "bare", "training job")
    raw = package_member(str(version.package_uri), "data/test.csv")
    model = load_artifact(store_bytes(version.artifact_uri), "", version.trusted_types,
                          version.trusted_types)
    result = evaluation.test_version(version, model, pd.read_csv(io.BytesIO(raw)), "test.csv",
                                     hashlib.sha256(raw).hexdigest(),
                                     {"roc_auc": Threshold(min=0.6)})
    ml = time.perf_counter() - ml_start
    registry.add_test_result(result, "bare")
    registry.transition(version.id, State.TESTED, "bare")
    runtimes = {r.name: r for r in registry.list_runtimes()}
    assert scan_version(version, {}, list(runtimes.values())).passed
    version = registry.transition(version.id, State.APPROVED, "bare")
    for name in ("qa", "prod"):
        client = RuntimeClient(stack.runtimes[name], TOKEN)
        deploy_version(registry, client, runtimes[name], registry.get_version_by_id(
            version.id), "bare")
    return time.perf_counter() - start, ml


def store_bytes(uri: str | None) -> bytes:
    return Path(str(uri)).read_bytes()


def measure(label: str, prefect_db: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "home").mkdir()
        stack = Stack(root, prefect_db)
        try:
            flows = [stack.submit_to_production(training_package(root, 100 + i))
                     for i in range(RUNS)]
            bare = [bare_script(stack, training_package(root, 200 + i)) for i in range(RUNS)]
            approvals = [stack.approval_latency(training_package(root, 300 + i, "high"))
                         for i in range(RUNS)]
        finally:
            stack.stop()
    def median(key: str) -> float:
        return statistics.median(f[key] for f in flows)

    flow_s, bare_s = median("total"), statistics.median(b[0] for b in bare)
    ml_s = statistics.median(b[1] for b in bare)
    print(f"{label} (median of {RUNS})\n"
          f"  submit → production    {flow_s:6.2f} s   bare script {bare_s:5.2f} s   "
          f"ratio {flow_s / bare_s:4.1f}x\n"
          f"  ML work (train + test) {ml_s:6.2f} s   orchestration {flow_s - ml_s:6.2f} s\n"
          f"  of which: `mlc submit` {median('submit'):5.2f} s, event → flow run running "
          f"{flow_s - median('submit') - median('run'):5.2f} s, flow run {median('run'):5.2f} s\n"
          f"  approval → flow goes on (version approved) {statistics.median(approvals):.2f} s "
          f"(max {max(approvals):.2f} s)")


def main() -> None:
    if not (EXAMPLE / "data" / "train.csv").exists():
        sys.exit("run examples/generate.py first (make examples)")
    measure("Prefect server on SQLite", None)
    pg = os.environ.get("MLC_BENCH_PREFECT_PG_URL")
    if pg:
        measure("Prefect server on PostgreSQL", pg)
    else:
        print("(set MLC_BENCH_PREFECT_PG_URL=postgresql+asyncpg://… for the PostgreSQL row)")


if __name__ == "__main__":
    main()
