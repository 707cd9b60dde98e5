"""The keyed audit log of a real registry (SQLite; PostgreSQL when MLC_TEST_DATABASE_URL is
set), attacked the way someone with write access to its database would: rows edited and
re-sealed, rows removed, state tables edited with the chain untouched, another key."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from mlc_tasks.audit import GENESIS, KEYED, plain_seal
from mlc_tasks.errors import AuditKeyError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.registry.migrate import alembic_config
from mlc_tasks.registry.store import create_registry_engine, utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import Decision, TaskKind
from tests.mlc_tasks.audit_attack import rewrite_chain


@pytest.fixture
def served(examples_dir: Path, registry: Registry, store) -> VersionRecord:
    """house-prices:1 tested, approved by a person through a task, deployed on prod (so it is
    the champion): every state table the replay checks has a row."""
    version, _ = submit_package(examples_dir / "house-prices", registry, store,
                                list(REVIEWED_TYPES), "ana")
    registry.transition(version.id, State.TESTED, "ci")
    book = TaskBook(registry)
    task, _ = book.open_task(TaskKind.APPROVAL, version.id, "approval", groups=["risk"],
                             quorum=1, deadline=None, detail={}, flow_run_id=None, holder=None,
                             actor="flow")
    assert book.decide(task.id, "rita", Decision.APPROVE, "fine", "cli", {"rita"}).accepted
    registry.upsert_runtime("prod", "http://127.0.0.1:1", {"env": "prod"}, {})
    registry.record_deployment(version.id, "prod", "ops", "go")
    served = registry.get_version_by_id(version.id)
    assert served.state == State.DEPLOYED and registry.verify_audit().ok
    return served


def test_a_new_log_is_keyed_from_its_first_event(served, registry) -> None:
    report = registry.verify_audit()
    assert report.ok and report.keyed_from == 1 and report.disagreements == []
    assert KEYED not in [e.action for e in registry.audit_events()]


def test_a_chain_re_sealed_with_plain_sha256_is_broken_and_takes_no_more_writes(
        served, registry) -> None:
    events = len(registry.audit_events())
    rewrite_chain(registry.engine, 2, actor="mallory")  # and every hash to the end, as before
    report = registry.verify_audit()
    assert not report.ok and not report.chain_ok
    assert "event 2 was re-sealed without the audit key" in str(report.problem)
    with pytest.raises(AuditKeyError, match=f"last event \\({events}\\) is not sealed"):
        registry.transition(served.id, State.RETIRED, "ops")
    assert registry.get_version_by_id(served.id).state == State.DEPLOYED
    assert len(registry.audit_events()) == events


def test_a_chain_re_sealed_from_its_first_event_is_broken(served, registry) -> None:
    rewrite_chain(registry.engine, 1, actor="mallory")
    report = registry.verify_audit()
    assert not report.ok and "no event is sealed with the audit key" in str(report.problem)


def test_clearing_where_the_key_starts_is_found(served, registry) -> None:
    with registry.engine.begin() as conn:
        conn.execute(text("UPDATE audit_head SET keyed_seq = NULL"))
    report = registry.verify_audit()
    assert not report.ok and "says it was never keyed" in str(report.problem)


@pytest.mark.parametrize("sql, named", [
    ("UPDATE versions SET state = 'approved'",
     "versions row house-prices:1 (id {id}) is 'approved', but its events leave it 'deployed'"),
    ("UPDATE deployments SET deployed_by = 'mallory'",
     "deployments row 1 (house-prices:1 on prod) differs from event"),
    ("UPDATE deployments SET replaced_at = '2026-01-01 00:00:00'",
     "deployments row 1 (house-prices:1 on prod) differs from event"),
    ("UPDATE models SET champion_version_id = NULL",
     "models row house-prices has champion None, but its events make it {id}"),
    ("UPDATE human_tasks SET status = 'rejected'",
     "human_tasks row 1 is 'rejected', but its events leave it 'approved'"),
], ids=["version state", "deployed by", "replaced", "champion", "task status"])
def test_a_state_table_edited_with_the_chain_untouched_is_named(
        served, registry, sql: str, named: str) -> None:
    with registry.engine.begin() as conn:
        conn.execute(text(sql))
    report = registry.verify_audit()
    assert report.chain_ok and not report.ok
    assert report.problem is not None and report.problem.startswith(named.format(id=served.id))
    assert report.disagreements == [report.problem]


def test_a_row_written_around_the_log_is_named(served, registry) -> None:
    with registry.engine.begin() as conn:
        conn.execute(text(  # "it was on prod for a moment"
            "INSERT INTO deployments (version_id, model_id, runtime_id, env, deployed_at, "
            "replaced_at, deployed_by, reason) SELECT version_id, model_id, runtime_id, env, "
            "deployed_at, deployed_at, 'mallory', '' FROM deployments"))
    report = registry.verify_audit()
    assert not report.ok and report.problem == (
        "deployments row 2 (house-prices:1 on prod) has no version.deployed_to event: written "
        "around the log")


def test_the_first_disagreement_is_named_first(served, registry) -> None:
    with registry.engine.begin() as conn:
        conn.execute(text("UPDATE human_tasks SET status = 'open'"))
        conn.execute(text("UPDATE versions SET state = 'retired'"))
    report = registry.verify_audit()
    assert [d.split(" ")[0] for d in report.disagreements] == ["versions", "human_tasks"]


def test_a_registry_without_the_key_writes_nothing(examples_dir, settings: MlcSettings,
                                                    store) -> None:
    keyless = Registry(settings.registry_url())
    with pytest.raises(AuditKeyError, match="opened without the audit key and cannot write"):
        submit_package(examples_dir / "house-prices", keyless, store, list(REVIEWED_TYPES), "ana")
    assert keyless.list_models() == [] and keyless.audit_events() == []
    with pytest.raises(AuditKeyError, match="cannot check"):
        keyless.verify_audit()
    keyless.close()


def test_a_registry_with_another_key_writes_nothing(served, settings: MlcSettings) -> None:
    other = Registry(settings.registry_url(), audit_key="another-key-" + "x" * 32)
    events = len(other.audit_events())
    with pytest.raises(AuditKeyError, match="not sealed with this audit key"):
        other.transition(served.id, State.RETIRED, "ops")
    assert len(other.audit_events()) == events
    assert "or is sealed with another key" in str(other.verify_audit().problem)
    other.close()


def test_a_configured_audit_key_is_long() -> None:
    with pytest.raises(ValueError, match="audit_key"):
        MlcSettings(audit_key="short")


def test_the_generated_audit_key_is_private_and_kept(settings: MlcSettings) -> None:
    key = settings.resolved_audit_key()
    assert len(key) >= 32 and settings.resolved_audit_key() == key
    assert (settings.home / "audit-key").stat().st_mode & 0o077 == 0


# ---- a log from before the key ------------------------------------------------------------

def legacy_log(url: str, events: int) -> list[str]:
    """A registry at 0006 whose log was written by the code before keys: plain sha256."""
    engine = create_registry_engine(url)
    with engine.begin() as conn:
        config = alembic_config(engine)
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
    hashes, prev = [], GENESIS
    with engine.begin() as conn:
        for seq in range(1, events + 1):
            fields = {"seq": seq, "at": utcnow(), "actor": "runtime:qa",
                      "action": "runtime.registered", "entity": "runtime", "entity_id": "qa",
                      "model": None, "reason": "", "detail": {"seq": seq},
                      "evidence_sha256": None}
            prev = plain_seal(fields, prev)
            conn.execute(text(
                "INSERT INTO audit_events (seq, at, actor, action, entity, entity_id, model, "
                "reason, detail, evidence_sha256, prev_hash, hash) VALUES (:seq, :at, :actor, "
                ":action, :entity, :entity_id, :model, :reason, :detail, :evidence_sha256, "
                ":prev_hash, :hash)"),
                {**fields, "detail": f'{{"seq": {seq}}}', "prev_hash": hashes[-1] if hashes
                 else GENESIS, "hash": prev})
            hashes.append(prev)
        conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash"),
                     {"seq": events, "hash": prev})
    engine.dispose()
    return hashes


def test_rows_from_before_the_key_are_sealed_once_by_an_audit_keyed_event(
        settings: MlcSettings) -> None:
    old = legacy_log(settings.registry_url(), 3)
    key = settings.resolved_audit_key()
    registry = Registry(settings.registry_url(), audit_key=key)  # migrates to 0007, keys
    Registry(settings.registry_url(), audit_key=key).close()  # once: a second open adds nothing
    events = registry.audit_events()
    assert [e.action for e in events] == ["runtime.registered"] * 3 + [KEYED]
    assert events[3].detail == {"sealed_seq": 3, "sealed_hash": old[-1]}
    report = registry.verify_audit()
    assert report.ok and report.keyed_from == 4
    registry.upsert_runtime("prod", "http://127.0.0.1:1", {"env": "prod"}, {})  # keyed after
    assert registry.verify_audit().ok
    registry.close()


@pytest.mark.parametrize("until, problem", [
    (3, "event 4 does not follow event 3"),  # the old part only: the keyed event sealed it
    (None, "no event is sealed with the audit key"),  # to the end, the keyed events too
], ids=["old rows", "everything"])
def test_old_rows_cannot_be_rewritten_once_the_key_sealed_them(
        settings: MlcSettings, until: int | None, problem: str) -> None:
    legacy_log(settings.registry_url(), 3)
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    registry.upsert_runtime("prod", "http://127.0.0.1:1", {"env": "prod"}, {})
    rewrite_chain(registry.engine, 2, until=until, actor="mallory")  # plain sha256
    report = registry.verify_audit()
    assert not report.ok and problem in str(report.problem)
    registry.close()
