"""The newcomer's path with `mlc up`: a submitted high-risk version waits for approval; the
pending approval survives a restart of everything; a resume through Prefect's API with a
member's name is refused as unverified; the member approves in the Prefect UI in a real
browser with the code of her authenticator; the flow goes on without redoing finished steps
and production serves it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx

from mlc_tasks import credentials
from mlc_tasks.lifecycle import State
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import MlcSettings
from mlc_tasks.task_records import HumanTask, TaskDecision, TaskStatus
from tests.browser import page_shows, require_chromium, resume_in_ui
from tests.conftest import REPO, free_port, mlc_bin, mlc_env
from tests.deployments.test_up import PrefectApi

RITA, ANA = "rita.risk@bank.example", "ana.lopez@bank.example"


class Up:
    """`mlc up` as a real process: Prefect server, two runtimes, the served deployments."""

    def __init__(self, env: dict[str, str], api: PrefectApi | str, submit: list[Path]) -> None:
        args = [mlc_bin(), "up"] + [a for p in submit for a in ("--submit", str(p))]
        self.process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.output = ""
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.output += line
            if "Ctrl-C here stops everything" in line:
                break
        assert self.process.poll() is None, self.output
        self.api = api

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)


def recorded(registry: Registry, task_id: int, seen: int, seconds: float = 60) -> TaskDecision:
    """The attempt the flow records after the `seen` ones before it."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        made = TaskBook(registry).decisions(task_id)[seen:]
        if made:
            return made[0]
        time.sleep(0.3)
    raise AssertionError("the flow recorded no attempt")


def current_code(otpauth_uri: str | None) -> str:
    secret = parse_qs(urlparse(str(otpauth_uri)).query)["secret"][0]
    return credentials.totp_code(secret, credentials.totp_counter())


def flow_run_state(api: PrefectApi, run_id: str) -> str:
    return api.get(f"/flow_runs/{run_id}").json()["state"]["type"]


def waiting(registry: Registry, api: PrefectApi, other_than: str | None = None,
            seconds: float = 180) -> HumanTask:
    """The open approval task once its (new) flow run is paused."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for task in TaskBook(registry).list(model="credit-risk"):
            if (task.flow_run_id and task.flow_run_id != other_than
                    and flow_run_state(api, task.flow_run_id) == "PAUSED"):
                return task
        time.sleep(0.5)
    raise AssertionError("no approval task waits for input")


def test_pending_approval_survives_restart_and_is_approved_in_the_prefect_ui(
        local_settings: MlcSettings, examples_dir: Path, tmp_path: Path) -> None:
    require_chromium()
    prefect_port, qa_port, prod_port = free_port(), free_port(), free_port()
    policy = tmp_path / "policy.yaml"
    shutil.copy(REPO / "examples" / "policy.yaml", policy)
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(prefect_port), MLC_POLICY_FILE=str(policy),
               MLC_RUNTIMES=json.dumps([
                   {"name": "qa", "tags": {"env": "qa"}, "port": qa_port},
                   {"name": "prod", "tags": {"env": "prod"}, "port": prod_port}]))
    api = PrefectApi(prefect_port, local_settings.home)
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())

    first = Up(env, api, [examples_dir / "credit-risk"])
    try:
        task = waiting(registry, api)
    finally:
        first.stop()
    assert first.process.returncode == 0
    old_run = task.flow_run_id

    second = Up(env, api, [])
    try:
        assert "restarted as flow run" in second.output, second.output
        task = waiting(registry, api, other_than=old_run)
        assert task.status == TaskStatus.OPEN
        people = PrincipalBook(registry)
        ana = people.enroll(ANA, PrincipalKind.PERSON, "local:test")
        listed = subprocess.run([mlc_bin(), "tasks", "--json"], env={**env, "MLC_TOKEN":
                                ana.token}, capture_output=True, text=True, check=True)
        assert [t["id"] for t in json.loads(listed.stdout)] == [task.id]
        assert flow_run_state(api, str(old_run)) in ("CANCELLED", "CRASHED")
        # no token: the CLI says how to get one, and nothing is sent
        anonymous = subprocess.run([mlc_bin(), "approve", str(task.id)], env=env,
                                   capture_output=True, text=True)
        assert anonymous.returncode == 1 and "MLC_TOKEN" in anonymous.stderr
        # an insider with Prefect's auth string resumes with Rita's name: Prefect takes the
        # input, the flow does not, and the run waits again
        cheat = api.post(f"/flow_runs/{task.flow_run_id}/resume", {"run_input": {
            "decision": "approve", "approver": RITA, "comment": "trust me"}})
        assert cheat.json()["status"] == "ACCEPT", cheat.text
        refused = recorded(registry, task.id, 0)
        assert not refused.accepted and refused.actor == RITA
        assert str(refused.refusal).startswith("unverified: no one-time code")
        task = waiting(registry, api)
        assert TaskBook(registry).get(task.id).status == TaskStatus.OPEN

        rita = people.enroll(RITA, PrincipalKind.PERSON, "local:test")
        sent = resume_in_ui(f"{api.ui}/runs/flow-run/{task.flow_run_id}", api.auth_string,
                            {"Approver": RITA,
                             "One Time Code (Optional)": lambda: current_code(rita.otpauth_uri),
                             "Comment (Optional)": "evidence reviewed in the UI"},
                            ("Decision", "approve"))
        assert sent["status"] == 201 and sent["answer"]["status"] == "ACCEPT", sent
        assert "Approve credit-risk:1 for production?" in sent["description"]
        assert "roc_auc" in sent["description"]
        announced = [a for a in AlertBook(registry).list(model="credit-risk")
                   if a.monitor == "approval"]
        assert len(announced) == 1, "one approval-waiting alert, also across the restart"
        assert page_shows(f"{api.ui}/artifacts/key/alert-{announced[0].id}-credit-risk",
                          api.auth_string, "needs 1 approval(s) from model-risk")

        deadline = time.monotonic() + 120
        while (registry.get_version("credit-risk", 1).state != State.DEPLOYED
               and time.monotonic() < deadline):
            time.sleep(0.5)
        version = registry.get_version("credit-risk", 1)
        assert version.state == State.DEPLOYED
        body = json.loads((examples_dir / "credit-risk" / "sample.json").read_text())
        scored = httpx.post(f"http://127.0.0.1:{prod_port}/invocations", json=body, timeout=10)
        assert len(scored.json()["predictions"]) == 3
    finally:
        second.stop()

    tests = [r for r in registry.test_results(version.id) if r.kind == "test"]
    assert len(tests) == 1, "the restarted run reused the test result"
    prod = [d for d in registry.deployments("credit-risk") if d.env == "prod"]
    assert len(prod) == 1
    trail = registry.audit_events("credit-risk")
    decision = next(e for e in trail if e.action == "task.decision")
    assert (decision.actor, decision.reason) == (RITA, "evidence reviewed in the UI")
    assert decision.detail["via"] == "prefect-form" and decision.evidence_sha256
    unverified = next(e for e in trail if e.action == "task.decision_unverified")
    assert (unverified.actor, unverified.detail["claimed"]) == ("unverified", RITA)
    assert next(v for v in registry.list_versions("credit-risk")).created_by == "mlc-up"
    assert sum(e.action == "version.scanned" for e in trail) == 1
    assert sum(e.action == "task.approval.opened" for e in trail) == 1
    registry.close()
