"""One Prefect test server per test session (per xdist worker); a QA and a production runtime
per test module that asks for `stack`, and the control-plane API for its home (`people_api`:
people decide with their own tokens); and a model in production with daily labelled data for
the monitoring flows."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness
from typer.testing import CliRunner, Result

from flows.model_testing import run_test_job
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import TOKEN, ApiProcess, RuntimeProcess


@pytest.fixture(scope="session", autouse=True)
def prefect_server() -> Iterator[str]:
    from prefect.settings import PREFECT_API_URL

    with prefect_test_harness(server_startup_timeout=60):
        yield str(PREFECT_API_URL.value())


class Stack:
    """One MLC home with a QA and a production runtime, shared by a module's tests (each test
    uses its own model name)."""

    def __init__(self, home: Path) -> None:
        self.settings = MlcSettings(home=home, admin_token=TOKEN)
        self.policy_file = home.parent / "policy.yaml"
        self.runtimes = {name: RuntimeProcess(self.settings, name, f"env={name}").start()
                         for name in ("qa", "prod")}
        self.registry = Registry(self.settings.registry_url(),
                                 audit_key=self.settings.resolved_audit_key())
        self.store = ArtifactStore(self.settings.artifact_url())

    def stop(self) -> None:
        for runtime in self.runtimes.values():
            runtime.stop()
        self.registry.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = Stack(tmp_path_factory.mktemp("flows") / "home")
    yield started
    started.stop()


class PeopleApi:
    """The control-plane API of a stack's home as a real process; each person gets a token
    (`mlc people enroll`) the first time they act, and acts through the `mlc` command with it."""

    COMMANDS = {"approve": ("approve", "--comment"), "reject": ("reject", "--reason"),
                "retry": ("review", "--comment"), "abort": ("review", "--comment")}

    def __init__(self, stack: Stack, prefect_api: str) -> None:
        self.stack, self.tokens = stack, {}
        self.process = ApiProcess(stack.settings, MLC_POLICY_FILE=str(stack.policy_file),
                                  PREFECT_API_URL=prefect_api).start()

    def token(self, person: str) -> str:
        from mlc_tasks.people import PrincipalKind
        from mlc_tasks.registry.principals import PrincipalBook

        if person not in self.tokens:
            self.tokens[person] = PrincipalBook(self.stack.registry).enroll(
                person, PrincipalKind.PERSON, "local:tester").token
        return self.tokens[person]

    def mlc(self, person: str, *args: str) -> Result:
        """`mlc ARGS` run by `person` (in this process, as a terminal of theirs would)."""
        from deployments.cli import app

        return CliRunner().invoke(app, list(args), env={"MLC_API_URL": self.process.url,
                                                        "MLC_TOKEN": self.token(person)})

    def decide(self, person: str, decision: str, task_id: int, comment: str = "") -> Result:
        command, why = self.COMMANDS[decision]
        action = ["--action", decision] if command == "review" else []
        return self.mlc(person, command, str(task_id), *action, why, comment)


@pytest.fixture(scope="module")
def people_api(stack: Stack, prefect_server: str) -> Iterator[PeopleApi]:
    api = PeopleApi(stack, prefect_server)
    yield api
    api.process.stop()


@pytest.fixture
def in_prod(local_settings: MlcSettings, examples_dir: Path, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> tuple[Registry, Path]:
    """credit-risk:1 serving production (as the registry records it), its daily data in a
    private copy (the one data root: tmp/pkg/daily), and a policy with reachable thresholds."""
    package = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "pkg" / "credit-risk"))
    daily = Path(shutil.copytree(examples_dir / "daily" / "credit-risk",
                                 tmp_path / "pkg" / "daily" / "credit-risk"))
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"thresholds": {"classification": {
        "roc_auc": {"min": 0.6}}}}))
    for key, value in {"MLC_HOME": str(local_settings.home), "MLC_ADMIN_TOKEN": TOKEN,
                       "MLC_POLICY_FILE": str(policy),
                       "MLC_DATA_ROOTS": json.dumps([str(daily.parent)])}.items():
        monkeypatch.setenv(key, value)
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    version, _ = submit_package(package, registry, ArtifactStore(local_settings.artifact_url()),
                                list(REVIEWED_TYPES), "ana")
    registry.add_test_result(run_test_job.fn(version), "tester")  # its own test: the baseline
    for state in (State.TESTED, State.APPROVED):
        registry.transition(version.id, state, "tester")
    registry.upsert_runtime("prod", "http://127.0.0.1:9", {"env": "prod"}, {})
    registry.record_deployment(version.id, "prod", "tester", "for the backtest")
    return registry, daily
