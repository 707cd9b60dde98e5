"""Champion pointer and comparisons in the inventory (SQLite, and PostgreSQL when configured):
one champion per model, moved only from the champion a challenger was compared with."""

from __future__ import annotations

import threading

import pytest

from mlc_tasks.errors import ChampionChangedError
from mlc_tasks.lifecycle import State
from mlc_tasks.packages import load_package
from mlc_tasks.registry import NewVersion, Registry, VersionRecord
from mlc_tasks.registry.champions import ChampionBook
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package


@pytest.fixture
def champion(package, registry, store) -> VersionRecord:
    version, _ = submit_package(package, registry, store, list(REVIEWED_TYPES), "sam")
    for state in (State.TESTED, State.APPROVED):
        registry.transition(version.id, state, "test")
    registry.upsert_runtime("prod", "http://127.0.0.1:9", {"env": "prod"}, {})
    registry.record_deployment(version.id, "prod", "test", "first champion")
    return version


def challenger(registry: Registry, package, champion: VersionRecord, tag: str) -> VersionRecord:
    """Another version of the model, trained from the champion (its bytes do not matter)."""
    fields = {k: getattr(champion, k) for k in NewVersion.model_fields}
    fields.update(source_sha256=f"{tag:0>64}", parent_version_id=champion.id)
    version, _ = registry.register_version(load_package(package).spec, NewVersion(**fields),
                                           "retrain")
    return version


def test_a_production_deploy_makes_the_champion(registry, champion) -> None:
    assert ChampionBook(registry).champion(champion.model).id == champion.id


def test_a_comparison_is_recorded_once_on_both_versions(registry, package, champion) -> None:
    book, rival = ChampionBook(registry), challenger(registry, package, champion, "a")
    args = (champion, rival, "file:///new.csv (held-out)", "f" * 64, 900, "promote",
            "roc_auc better", {"rows": 900}, "retrain")
    first, again = book.record_comparison(*args), book.record_comparison(*args)
    assert again.id == first.id and len(book.comparisons(champion.model)) == 1
    compared = [e for e in registry.audit_events(champion.model)
                if e.action == "version.compared"]
    assert {(e.entity_id, e.detail["role"]) for e in compared} == {
        (champion.id, "champion"), (rival.id, "challenger")}
    assert book.comparison(rival.id).outcome == "promote"


@pytest.mark.postgres
def test_two_challengers_racing_make_exactly_one_champion(registry, package, champion) -> None:
    rivals = [challenger(registry, package, champion, tag) for tag in ("a", "b")]
    start, outcomes = threading.Barrier(2), {}

    def claim(rival: VersionRecord) -> None:
        start.wait(10)
        try:
            ChampionBook(registry).claim(rival, champion.id, "retrain")
            outcomes[rival.id] = "champion"
        except ChampionChangedError as exc:
            outcomes[rival.id] = str(exc)

    threads = [threading.Thread(target=claim, args=(r,)) for r in rivals]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    winners = [r for r in rivals if outcomes[r.id] == "champion"]
    assert len(winners) == 1, outcomes
    loser = next(r for r in rivals if r.id != winners[0].id)
    assert f"the champion is now v{winners[0].number}" in outcomes[loser.id]
    assert ChampionBook(registry).champion(champion.model).id == winners[0].id


def test_an_aborted_promotion_gives_the_place_back(registry, package, champion) -> None:
    book, rival = ChampionBook(registry), challenger(registry, package, champion, "c")
    book.claim(rival, champion.id, "retrain")
    book.claim(rival, champion.id, "retrain")  # a rerun: no-op
    book.release(rival, champion.id, "on-model-changed", "deploy aborted")
    assert book.champion(champion.model).id == champion.id
    moves = [e.detail for e in registry.audit_events(champion.model)
             if e.action == "model.champion"]
    assert moves == [{"champion": rival.number, "previous": champion.number},
                     {"champion": champion.number, "previous": rival.number}]
