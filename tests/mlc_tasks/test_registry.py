"""The inventory against a real database (SQLite; PostgreSQL when MLC_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import multiprocessing
import shutil
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import (
    IllegalTransitionError,
    InvalidPackageError,
    NotFoundError,
    RuntimeFullError,
    UnsafeArtifactError,
)
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, TestResult, ThresholdCheck
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.registry.migrate import alembic_config
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tables import Base
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package


def submit(package: Path, registry: Registry, store: ArtifactStore, actor: str = "ana"):
    return submit_package(package, registry, store, list(REVIEWED_TYPES), actor)


def test_submit_registers_model_and_version(package, registry, store) -> None:
    version, created = submit(package, registry, store)
    assert created and version.number == 1 and version.state == State.SUBMITTED
    assert version.artifact_sha256 and Path(version.artifact_uri).exists()
    assert version.training_data_sha256 and version.seed == 7
    assert version.parameters == {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1}
    assert "sklearn.tree._tree.Tree" in version.artifact_types
    assert version.sensitive_attributes == ["gender"]
    model = registry.get_model("credit-risk")
    assert (model.type, model.risk_tier, model.tags["team"]) == ("classification", "high",
                                                                  "lending")
    actions = [e.action for e in registry.audit_events("credit-risk")]
    assert actions == ["model.created", "version.submitted"]


def test_same_artifact_twice_is_one_version(package, registry, store) -> None:
    first, _ = submit(package, registry, store)
    again, created = submit(package, registry, store, actor="bob")
    assert not created and again.id == first.id
    assert [v.number for v in registry.list_versions("credit-risk")] == [1]


def test_new_artifact_is_next_version(package, examples_dir, registry, store) -> None:
    submit(package, registry, store)
    (package / "model.skops").write_bytes((examples_dir / "house-prices" /
                                           "model.skops").read_bytes())
    second, created = submit(package, registry, store)
    assert created and second.number == 2


def test_bad_package_writes_nothing(package, registry, store, settings: MlcSettings) -> None:
    (package / "model.yaml").write_text((package / "model.yaml").read_text()
                                        .replace("risk_tier: high", "risk_tier: extreme"))
    with pytest.raises(InvalidPackageError, match="risk_tier"):
        submit(package, registry, store)
    assert registry.list_models() == []
    assert registry.audit_events() == []
    assert not Path(settings.artifact_url()).exists()


@pytest.mark.parametrize("artifact", ["pickle", "unreviewed"])
def test_unsafe_artifact_writes_nothing(package, registry, store, settings, artifact) -> None:
    import pickle

    import skops.io as sio

    from tests.mlc_tasks.custom_estimator import HomeMadeEstimator

    data = pickle.dumps({"a": 1}) if artifact == "pickle" else sio.dumps(HomeMadeEstimator())
    (package / "model.skops").write_bytes(data)
    with pytest.raises(UnsafeArtifactError):
        submit(package, registry, store)
    assert registry.list_models() == [] and registry.audit_events() == []
    assert not Path(settings.artifact_url()).exists()


def test_missing_lineage_file_writes_nothing(package, registry, store, settings) -> None:
    (package / "data" / "train.csv").unlink()
    with pytest.raises(InvalidPackageError, match="data/train.csv"):
        submit(package, registry, store)
    assert registry.list_models() == [] and not Path(settings.artifact_url()).exists()


def test_illegal_transition_changes_nothing(package, registry, store) -> None:
    version, _ = submit(package, registry, store)
    events_before = len(registry.audit_events())
    with pytest.raises(IllegalTransitionError, match="submitted → approved"):
        registry.transition(version.id, State.APPROVED, "ana")
    assert registry.get_version("credit-risk", 1).state == State.SUBMITTED
    assert len(registry.audit_events()) == events_before


def test_legal_transitions_are_audited_with_reason(package, registry, store) -> None:
    version, _ = submit(package, registry, store)
    registry.transition(version.id, State.TESTED, "ci", "all thresholds met")
    registry.transition(version.id, State.APPROVED, "risk-officer", "reviewed evidence")
    last = registry.audit_events("credit-risk")[-1]
    assert (last.actor, last.action, last.reason) == ("risk-officer", "version.approved",
                                                      "reviewed evidence")
    assert last.detail == {"number": 1, "from": "tested", "to": "approved"}


def test_test_result_is_stored_whole_and_audited(package, registry, store) -> None:
    version, _ = submit(package, registry, store)
    result = TestResult(
        id=uuid.uuid4().hex, version_id=version.id, kind="test", dataset_uri="data/test.csv",
        dataset_sha256="ab" * 32, metrics={"accuracy": 0.91, "roc_auc": 0.83},
        thresholds=[ThresholdCheck(metric="roc_auc", op=">=", threshold=0.8, value=0.83,
                                   passed=True)],
        passed=True, report_uri=None, created_at=utcnow())
    registry.add_test_result(result, "ci")
    assert registry.test_results(version.id) == [result]
    last = registry.audit_events("credit-risk")[-1]
    assert (last.action, last.evidence_sha256) == ("test_result.recorded", "ab" * 32)


@pytest.mark.postgres
def test_a_window_result_replaces_the_last_and_nan_is_absent(package, registry, store) -> None:
    version, _ = submit(package, registry, store)

    def fairness(outcome: str, value: float) -> TestResult:
        return TestResult(
            id=uuid.uuid4().hex, version_id=version.id, kind="fairness:a_sensitive_attribute",
            dataset_uri="daily", dataset_sha256="", metrics={"roc_auc": value, "n": 3.0},
            thresholds=[ThresholdCheck(metric="roc_auc", op=">=", threshold=0.7, value=value,
                                       passed=False)],
            passed=False, report_uri=None, created_at=utcnow(), window="2026-11-19..2026-11-25",
            outcome=outcome)

    registry.add_test_result(fairness("insufficient data", float("nan")), "monitor")
    registry.add_test_result(fairness("insufficient data", float("nan")), "monitor")
    [stored] = registry.test_results(version.id)
    assert stored.outcome == "insufficient data" and stored.metrics == {"n": 3.0}
    assert stored.thresholds[0].value is None
    assert registry.audit_events("credit-risk")[-1].detail["replaced"] == 1


def test_unknown_names_are_clear(registry) -> None:
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.list_versions("nope")
    with pytest.raises(NotFoundError, match="no runtime named 'mars'"):
        registry.get_runtime("mars")


def test_which_version_was_in_production_at_time_t(package, examples_dir, registry, store):
    registry.upsert_runtime("prod", "http://127.0.0.1:1", {"env": "prod"}, {})
    registry.upsert_runtime("qa", "http://127.0.0.1:2", {"env": "qa"}, {})
    v1, _ = submit(package, registry, store)
    (package / "model.skops").write_bytes((examples_dir / "house-prices" /
                                           "model.skops").read_bytes())
    v2, _ = submit(package, registry, store)
    for v in (v1, v2):
        registry.transition(v.id, State.TESTED, "ci")
        registry.transition(v.id, State.APPROVED, "boss")
    before_any = utcnow()
    registry.record_deployment(v1.id, "prod", "ops", "first release")
    during_v1 = utcnow()
    registry.record_deployment(v2.id, "qa", "ops", "try v2")
    registry.record_deployment(v2.id, "prod", "ops", "second release")
    during_v2 = utcnow()

    assert registry.version_in_env_at("credit-risk", "prod", before_any - timedelta(1)) is None
    assert registry.version_in_env_at("credit-risk", "prod", during_v1).number == 1
    assert registry.version_in_env_at("credit-risk", "prod", during_v2).number == 2
    assert registry.version_in_env_at("credit-risk", "qa", during_v1) is None
    assert registry.get_version("credit-risk", 1).state == State.DEPLOYED
    history = registry.deployments("credit-risk")
    assert [(d.runtime, d.version_number, d.replaced_at is None) for d in history] == [
        ("prod", 1, False), ("qa", 2, True), ("prod", 2, True)]


def test_production_refuses_unapproved_versions(package, registry, store) -> None:
    registry.upsert_runtime("prod", "http://127.0.0.1:1", {"env": "prod"}, {})
    version, _ = submit(package, registry, store)
    with pytest.raises(IllegalTransitionError, match="production takes approved versions"):
        registry.record_deployment(version.id, "prod", "ops", "")
    assert registry.deployments("credit-risk") == []


def test_production_is_whatever_tags_the_policy_names(package, registry, store) -> None:
    """With the policy's production stage {env: production}, a runtime tagged so takes approved
    versions only, and what it serves becomes the champion; env=prod is then just a tag."""
    production = {"env": "production"}
    registry.upsert_runtime("live", "http://127.0.0.1:1", production, {})
    registry.upsert_runtime("legacy", "http://127.0.0.1:2", {"env": "prod"}, {})
    version, _ = submit(package, registry, store)
    registry.transition(version.id, State.TESTED, "ci")
    with pytest.raises(IllegalTransitionError, match="production takes approved versions only; "
                                                     "this version is tested"):
        registry.record_deployment(version.id, "live", "ops", "", production)
    assert registry.deployments("credit-risk") == []
    registry.record_deployment(version.id, "legacy", "ops", "not production here", production)
    assert registry.get_version("credit-risk", 1).state == State.TESTED
    registry.transition(version.id, State.APPROVED, "boss")
    registry.record_deployment(version.id, "live", "ops", "release", production)
    assert registry.get_version("credit-risk", 1).state == State.DEPLOYED
    assert ChampionBook(registry).champion("credit-risk").id == version.id
    assert registry.verify_audit().ok  # the replay agrees on the champion


def test_audit_verify_finds_an_edited_row(package, registry, store) -> None:
    version, _ = submit(package, registry, store)
    registry.transition(version.id, State.TESTED, "ci")
    assert registry.verify_audit().ok
    with registry.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    report = registry.verify_audit()
    assert not report.ok and "event 2 was altered" in report.problem


def test_audit_verify_finds_a_deleted_row(package, registry, store) -> None:
    version, _ = submit(package, registry, store)
    registry.transition(version.id, State.TESTED, "ci")
    with registry.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = 3"))
    report = registry.verify_audit()
    assert not report.ok and "rows removed" in report.problem


def test_migrations_apply_once(settings: MlcSettings) -> None:
    Registry(settings.registry_url()).close()
    again = Registry(settings.registry_url())
    with again.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0010"
        # the migrations build exactly the tables the code declares
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    again.close()


def _submit_in_process(package: str, url: str, store_url: str, key: str, barriers,
                       queue) -> None:
    opened, ready = barriers
    opened.wait(60)  # both open a brand-new database together: migrations race too
    registry = Registry(url, audit_key=key)
    ready.wait(60)   # ... and then both register the same artifact at once
    version, _ = submit_package(package, registry, ArtifactStore(store_url),
                                list(REVIEWED_TYPES), "racer")
    queue.put(version.id)


def test_concurrent_submissions_from_two_processes_make_one_version(
    package, settings: MlcSettings
) -> None:
    spawn = multiprocessing.get_context("spawn")
    queue = spawn.Queue()
    barriers = (spawn.Barrier(2), spawn.Barrier(2))
    args = (str(package), settings.registry_url(), settings.artifact_url(),
            settings.resolved_audit_key(), barriers, queue)
    racers = [spawn.Process(target=_submit_in_process, args=args) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(120)
        assert racer.exitcode == 0
    ids = {queue.get(timeout=5), queue.get(timeout=5)}
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    assert len(ids) == 1 and len(registry.list_versions("credit-risk")) == 1
    assert [e.action for e in registry.audit_events()] == ["model.created", "version.submitted"]
    assert registry.verify_audit().ok
    registry.close()


# ---- a runtime serves many models --------------------------------------------------------------

def two_models_on_qa(examples_dir: Path, registry: Registry, store) -> dict[str, str]:
    ids = {}
    for name in ("credit-risk", "house-prices"):
        version, _ = submit_package(examples_dir / name, registry, store, list(REVIEWED_TYPES),
                                    "ana")
        ids[name] = version.id
    registry.upsert_runtime("qa", "http://127.0.0.1:1", {"env": "qa"}, {"max_models": 2})
    for version_id in ids.values():
        registry.record_deployment(version_id, "qa", "ops", "go")
    return ids


def test_a_deploy_closes_only_its_own_models_deployment(examples_dir, registry, store) -> None:
    ids = two_models_on_qa(examples_dir, registry, store)
    assert [(d.model, d.replaced_at) for d in registry.served_on("qa")] == [
        ("credit-risk", None), ("house-prices", None)]
    assert registry.current_deployment("qa", "credit-risk").version_id == ids["credit-risk"]
    registry.record_deployment(ids["credit-risk"], "qa", "ops", "again")
    assert len(registry.served_on("qa")) == 2 and registry.verify_audit().ok
    assert [d.replaced_at is None for d in registry.deployments("credit-risk")] == [False, True]


def test_a_third_model_on_a_full_runtime_is_refused_with_nothing_written(
        examples_dir, registry, store, tmp_path) -> None:
    two_models_on_qa(examples_dir, registry, store)
    third = Path(shutil.copytree(examples_dir / "house-prices", tmp_path / "third"))
    (third / "model.yaml").write_text((third / "model.yaml").read_text().replace(
        "name: house-prices", "name: house-rents"))
    version, _ = submit_package(third, registry, store, list(REVIEWED_TYPES), "ana")
    events = len(registry.audit_events())
    with pytest.raises(RuntimeFullError, match="runtime qa serves 2 of its 2 models "
                                               r"\(MLC_RUNTIME_MAX_MODELS\); house-rents"):
        registry.record_deployment(version.id, "qa", "ops", "go")
    assert registry.get_version_by_id(version.id).state == State.SUBMITTED
    assert len(registry.audit_events()) == events and len(registry.served_on("qa")) == 2


def test_retiring_a_version_closes_its_deployments_audited(examples_dir, registry, store
                                                          ) -> None:
    ids = two_models_on_qa(examples_dir, registry, store)
    for state in (State.TESTED, State.APPROVED, State.DEPLOYED, State.RETIRED):
        registry.transition(ids["house-prices"], state, "rita", "superseded")
    assert [d.model for d in registry.served_on("qa")] == ["credit-risk"]
    closed = [e for e in registry.audit_events() if e.action == "version.undeployed_from"]
    assert [(e.entity_id, e.actor, e.detail["runtime"]) for e in closed] == [
        (ids["house-prices"], "rita", "qa")]
    assert registry.verify_audit().ok
    assert registry.record_undeployment(ids["house-prices"], "qa", "rita", "again") is None


def test_the_open_deployment_index_refuses_a_second_open_row(examples_dir, registry, store
                                                             ) -> None:
    two_models_on_qa(examples_dir, registry, store)
    with pytest.raises(IntegrityError), registry.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO deployments (version_id, model_id, runtime_id, env, deployed_at, "
            "deployed_by, reason) SELECT version_id, model_id, runtime_id, env, deployed_at, "
            "'mallory', '' FROM deployments WHERE replaced_at IS NULL"))


def test_migration_0009_keeps_the_deployment_history(examples_dir, registry, store,
                                                     settings: MlcSettings) -> None:
    two_models_on_qa(examples_dir, registry, store)
    rows = "SELECT id, version_id, model_id, runtime_id, replaced_at FROM deployments ORDER BY id"
    with registry.engine.connect() as conn:
        before = conn.execute(text(rows)).all()
    config = alembic_config(registry.engine)
    with registry.engine.begin() as conn:  # back to one open deployment per runtime's schema
        config.attributes["connection"] = conn
        command.downgrade(config, "0008")
    registry.close()
    again = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    with again.engine.connect() as conn:
        assert conn.execute(text(rows)).all() == before  # model_id copied from the versions
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    assert again.verify_audit().ok
    again.close()
