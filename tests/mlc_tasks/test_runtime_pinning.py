"""A runtime's URL is pinned at its first registration (on each registry backend)."""

from __future__ import annotations

import pytest

from mlc_tasks.errors import RuntimePinnedError

PROD, ELSEWHERE = "http://127.0.0.1:8702", "http://127.0.0.1:9999"


def test_another_url_for_a_registered_name_is_refused_and_nothing_changes(registry) -> None:
    registry.upsert_runtime("prod", PROD, {"env": "prod"}, {})
    events = len(registry.audit_events())
    with pytest.raises(RuntimePinnedError, match=f"'prod' is pinned to {PROD}; it cannot "
                                                 f"register at {ELSEWHERE}"):
        registry.upsert_runtime("prod", ELSEWHERE, {"env": "prod"}, {})
    assert registry.get_runtime("prod").url == PROD
    assert len(registry.audit_events()) == events


def test_the_same_url_registers_again_with_new_tags(registry) -> None:
    registry.upsert_runtime("edge", PROD, {"env": "qa"}, {})
    assert registry.upsert_runtime("edge", PROD, {"env": "prod"}, {}).tags == {"env": "prod"}


def test_an_admin_repin_moves_it_and_is_audited(registry) -> None:
    registry.upsert_runtime("prod", PROD, {"env": "prod"}, {})
    moved = registry.upsert_runtime("prod", ELSEWHERE, {"env": "prod"}, {}, repin_by="root")
    assert moved.url == ELSEWHERE == registry.get_runtime("prod").url
    [repin] = [e for e in registry.audit_events() if e.action == "runtime.repinned"]
    assert (repin.actor, repin.detail) == ("root", {"from": PROD, "to": ELSEWHERE})
    assert registry.verify_audit().ok
