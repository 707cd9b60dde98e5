"""The `mlc` command through its installed entry point, as a person runs it: a thin client of
a running control-plane API (a real process per test), acting as the holder of MLC_TOKEN;
admin commands (`mlc audit verify`, `mlc audit anchor`) work on MLC_HOME directly."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from mlc_tasks.registry import Registry
from mlc_tasks.registry.store import create_registry_engine
from mlc_tasks.settings import MlcSettings
from tests.conftest import ApiProcess, enroll, mlc_bin, mlc_env, runtime_serving
from tests.mlc_tasks.audit_attack import rewrite_chain, truncate_chain

COMMANDS = [[], ["submit"], ["import-mlflow"], ["models"], ["versions"], ["runtimes"],
            ["deploy"], ["audit"], ["deployments"],
            ["up"], ["runtime"], ["runtime", "start"], ["tasks"], ["approve"], ["reject"],
            ["review"], ["rollback"], ["people"], ["people", "enroll"], ["login"],
            ["model", "update"], ["retrain"], ["alerts", "ack"], ["alerts", "snooze"]]
ANA = "ana.lopez@bank.example"


def start_api(settings: MlcSettings, **env: str) -> ApiProcess:
    Registry(settings.registry_url(), audit_key=settings.resolved_audit_key()).close()
    return ApiProcess(settings, **env).start()


@pytest.fixture
def api(local_settings: MlcSettings):
    """The control-plane API with no Prefect server (its events fail fast)."""
    started = start_api(local_settings)
    yield started
    started.stop()


def mlc_as_ana(settings: MlcSettings, api: ApiProcess):
    """`mlc` as Ana, who holds a person's token."""
    env = {**mlc_env(settings), "MLC_API_URL": api.url, "MLC_TOKEN": enroll(settings, ANA)}

    def run(*args: str, ok: bool = True, token: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        given = env if token is None else {**env, "MLC_TOKEN": token}
        done = subprocess.run([mlc_bin(), *args], env=given, text=True, capture_output=True,
                              timeout=120)
        assert (done.returncode == 0) == ok, f"{args}: {done.returncode}\n{done.stderr}"
        return done

    return run


@pytest.fixture
def mlc(local_settings: MlcSettings, api: ApiProcess):
    return mlc_as_ana(local_settings, api)


@pytest.fixture
def mlc_flows(local_settings: MlcSettings, prefect_server: str):
    """`mlc` as Ana against an API with a Prefect server: its deploys and rollbacks are runs
    of deploy-model and rollback-model there."""
    started = start_api(local_settings, PREFECT_API_URL=prefect_server)
    yield mlc_as_ana(local_settings, started)
    started.stop()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mlc")
def test_help_everywhere(local_settings: MlcSettings, command: list[str]) -> None:
    done = subprocess.run([mlc_bin(), *command, "--help"], env=mlc_env(local_settings),
                          text=True, capture_output=True, timeout=60)
    assert "Usage" in done.stdout and "--as" not in done.stdout


def test_nobody_acts_as_someone_else_by_typing_a_name(mlc, examples_dir: Path) -> None:
    refused = mlc("submit", str(examples_dir / "credit-risk"), "--as", "rita", ok=False)
    assert "No such option: --as" in refused.stderr
    assert json.loads(mlc("models", "--json").stdout) == []


def test_submit_list_and_audit(mlc, examples_dir: Path) -> None:
    done = mlc("submit", str(examples_dir / "credit-risk"))
    version_id = done.stdout.strip().splitlines()[-1]
    assert "registered credit-risk:1" in done.stdout
    assert "did not take the event" in done.stderr  # no Prefect server in this test
    again = mlc("submit", str(examples_dir / "credit-risk"))
    assert again.stdout.strip().splitlines()[-1] == version_id
    assert "already registered" in again.stdout

    models = json.loads(mlc("models", "--json").stdout)
    assert [m["name"] for m in models] == ["credit-risk"]
    assert json.loads(mlc("models", "credit-risk", "--json").stdout)[0]["risk_tier"] == "high"
    versions = json.loads(mlc("versions", "credit-risk", "--json").stdout)
    assert [(v["number"], v["id"], v["state"]) for v in versions] == [(1, version_id,
                                                                      "submitted")]
    events = json.loads(mlc("audit", "credit-risk", "--json").stdout)
    assert [(e["actor"], e["action"]) for e in events] == [(ANA, "model.created"),
                                                          (ANA, "version.submitted")]
    assert "\n1\tsubmitted\t" in mlc("versions", "credit-risk").stdout  # piped: one line each


def test_bad_package_names_the_field_and_writes_nothing(mlc, package: Path) -> None:
    text = (package / "model.yaml").read_text().replace("type: classification", "type: magic")
    (package / "model.yaml").write_text(text)
    done = mlc("submit", str(package), ok=False)
    assert "field 'type'" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(mlc("models", "--json").stdout) == []


def test_pickle_package_is_refused(mlc, package: Path) -> None:
    import pickle

    (package / "model.skops").write_bytes(pickle.dumps({"a": 1}))
    done = mlc("submit", str(package), ok=False)
    assert "pickle/joblib artifacts are refused" in done.stderr


def test_unknown_names(mlc, local_settings: MlcSettings) -> None:
    Registry(local_settings.registry_url()).close()  # an installation with nothing in it
    assert "no model named 'ghost'" in mlc("versions", "ghost", ok=False).stderr
    assert "no model named 'ghost'" in mlc("deploy", "ghost", "1", "--tags", "env=qa",
                                           ok=False).stderr
    assert "not key=value" in mlc("deploy", "ghost", "1", "--tags", "qa", ok=False).stderr


def test_deploy_and_predict_like_the_readme(mlc_flows, examples_dir: Path, start_runtime,
                                            prefect_server: str) -> None:
    mlc = mlc_flows
    mlc("submit", str(examples_dir / "credit-risk"))
    runtime = start_runtime("qa", "env=qa")
    start_runtime("prod", "env=prod")
    runtimes = json.loads(mlc("runtimes", "--json").stdout)
    assert sorted(r["name"] for r in runtimes) == ["prod", "qa"]

    done = mlc("deploy", "credit-risk", "1", "--tags", "env=qa").stdout
    assert "deployed credit-risk:1 on qa" in done
    run_id = done.split("/runs/flow-run/")[1].strip()  # a run of deploy-model, as any deploy
    run = httpx.get(f"{prefect_server}/flow_runs/{run_id}").json()
    assert (run["state_type"], run["parameters"]["version"]) == ("COMPLETED", 1)
    body = json.loads((examples_dir / "credit-risk" / "sample.json").read_text())
    assert len(httpx.post(f"{runtime.url}/invocations", json=body).json()["predictions"]) == 3
    assert "already deployed" in mlc("deploy", "credit-risk", "1", "--tags", "env=qa").stdout
    history = json.loads(mlc("deployments", "credit-risk", "--json").stdout)
    assert [(d["runtime"], d["deployed_by"], d["replaced_at"]) for d in history] == [
        ("qa", ANA, None)]
    now = history[0]["deployed_at"]
    assert mlc("deployments", "credit-risk", "--env", "qa", "--at", now).stdout.startswith(
        "credit-risk:1")
    assert "nothing served prod" in mlc("deployments", "credit-risk", "--env", "prod",
                                        "--at", now).stdout
    refused = mlc("deploy", "credit-risk", "1", "--tags", "env=prod", ok=False)
    assert "production takes approved versions only" in refused.stderr
    assert "no runtime matches env=staging" in mlc("deploy", "credit-risk", "1", "--tags",
                                                   "env=staging", ok=False).stderr
    trail = [(e["actor"], e["action"]) for e in json.loads(mlc("audit", "--json").stdout)]
    assert trail.count((ANA, "deploy.requested")) == 3  # staging was refused before asking
    assert trail.count(("deploy-model", "deploy.request_taken")) == 3


def test_deploy_to_a_runtime_that_is_down_is_retried_and_alerts(
        mlc_flows, examples_dir: Path, start_runtime) -> None:
    mlc = mlc_flows
    mlc("submit", str(examples_dir / "credit-risk"))
    start_runtime("qa", "env=qa").stop()
    before = json.loads(mlc("audit", "--json").stdout)
    done = mlc("deploy", "credit-risk", "1", "--tags", "env=qa", ok=False)
    assert "did not answer" in done.stderr and "Traceback" not in done.stderr
    after = json.loads(mlc("audit", "--json").stdout)
    assert [(e["actor"], e["action"]) for e in after[len(before):]] == [
        (ANA, "deploy.requested"), ("deploy-model", "deploy.request_taken")]  # nothing deployed
    [alert] = json.loads(mlc("alerts", "--status", "open", "--json").stdout)
    assert (alert["title"], alert["source"]) == ("deploy of credit-risk:1 on qa failed",
                                                 "deploy-model")
    assert "/runs/flow-run/" in alert["run_url"]


def test_audit_verify_fails_after_a_row_is_edited_by_hand(mlc, examples_dir: Path,
                                                          local_settings: MlcSettings) -> None:
    mlc("submit", str(examples_dir / "credit-risk"))
    assert "audit log intact: 3 events" in mlc("audit", "verify").stdout
    with sqlite3.connect(local_settings.home / "registry.db") as db:
        db.execute("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 2")
    broken = mlc("audit", "verify", ok=False)
    assert "BROKEN" in broken.stdout and "event 2 was altered" in broken.stdout


def test_audit_verify_says_broken_for_a_chain_re_sealed_without_the_key(
        mlc, examples_dir: Path, local_settings: MlcSettings) -> None:
    mlc("submit", str(examples_dir / "credit-risk"))
    engine = create_registry_engine(local_settings.registry_url())
    rewrite_chain(engine, 2, reason="nothing to see")  # and every hash to the end, as before
    engine.dispose()
    broken = mlc("audit", "verify", ok=False).stdout
    assert broken.startswith("audit log BROKEN: 3 events; event 2 was re-sealed without the "
                             "audit key (plain sha256)")
    assert not json.loads(mlc("audit", "verify", "--json", ok=False).stdout)["chain_ok"]


def test_audit_verify_names_an_edited_version_state(mlc, examples_dir: Path,
                                                    local_settings: MlcSettings) -> None:
    version_id = mlc("submit", str(examples_dir / "credit-risk")).stdout.split()[-1]
    with sqlite3.connect(local_settings.home / "registry.db") as db:
        db.execute("UPDATE versions SET state = 'approved'")  # the chain is untouched
    broken = mlc("audit", "verify", ok=False).stdout
    assert (f"audit log BROKEN: 3 events; versions row credit-risk:1 (id {version_id}) is "
            "'approved', but its events leave it 'submitted' (last: event 3)") in broken


def test_audit_anchor_then_verify_against_it(mlc, examples_dir: Path,
                                             local_settings: MlcSettings) -> None:
    mlc("submit", str(examples_dir / "credit-risk"))
    assert "anchor: none yet at" in mlc("audit", "verify").stdout
    done = mlc("audit", "anchor")
    sink = local_settings.home / "audit-anchors"
    [written] = sink.iterdir()
    assert done.stdout.strip() == f"anchored event 3 in {written}"
    assert mlc("audit", "anchor").stdout.startswith("already anchored event 3 in")
    verified = mlc("audit", "verify").stdout
    assert "audit log intact: 3 events" in verified and f"anchor: {written} (event 3" in verified

    engine = create_registry_engine(local_settings.registry_url())
    truncate_chain(engine, 2)  # the last row removed and the head made to fit
    engine.dispose()
    broken = mlc("audit", "verify", ok=False).stdout
    assert f"anchor {written}" in broken
    assert "vouches for event 3, but the log ends at event 2: rows were removed" in broken
    refused = mlc("audit", "anchor", ok=False)
    assert "error: the audit log is not anchored" in refused.stderr
    assert list(sink.iterdir()) == [written]


def test_rollback_redeploys_the_version_served_before(mlc_flows, package: Path, start_runtime,
                                                      local_settings: MlcSettings) -> None:
    import skops.io as sio

    from mlc_tasks.lifecycle import State
    from mlc_tasks.registry import Registry

    mlc = mlc_flows
    prod = start_runtime("prod", "env=prod")
    mlc("submit", str(package))
    model = sio.load(package / "model.skops", trusted=list(local_settings.trusted_types))
    model.mlc_variant = 2  # other bytes, other version
    sio.dump(model, package / "model.skops")
    mlc("submit", str(package))
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    for number in (1, 2):
        version = registry.get_version("credit-risk", number)
        for state in (State.TESTED, State.APPROVED):
            registry.transition(version.id, state, "tester", "for the test")
        mlc("deploy", "credit-risk", str(number), "--tags", "env=prod")
    assert runtime_serving(prod.url)["number"] == 2

    done = mlc("rollback", "credit-risk", "--reason", "v2 scores badly")
    assert "rolled back prod to credit-risk:1" in done.stdout
    assert "/runs/flow-run/" in done.stdout  # a run of rollback-model
    assert runtime_serving(prod.url)["number"] == 1
    last = registry.deployments("credit-risk")[-1]
    assert (last.version_number, last.deployed_by, last.reason) == (
        1, ANA, "v2 scores badly: back to credit-risk:1")
    [asked] = [e for e in registry.audit_events("credit-risk")
               if e.action == "rollback.requested"]
    assert (asked.actor, asked.detail["env"], asked.detail["reason"]) == (
        ANA, "prod", "v2 scores badly")
    registry.close()


def test_decisions_need_an_existing_open_task(mlc, local_settings: MlcSettings) -> None:
    Registry(local_settings.registry_url()).close()
    assert "no human task 7" in mlc("approve", "7", ok=False).stderr
    assert "--action: 'maybe'" in mlc("review", "7", "--action", "maybe", ok=False).stderr
    service = enroll(local_settings, "ci-bot", service=True)
    refused = mlc("approve", "7", ok=False, token=service)
    assert "error: ci-bot (service) lacks the 'decide' scope" in refused.stderr
    assert "no human task 7" not in refused.stderr
