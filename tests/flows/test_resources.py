"""The resources of a run: built once per flow run (its tasks and subflows share them), swapped
whole or in part by a test (an in-memory store, a loopback channel) instead of environment
variables, and the policy read again only when its file changed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from prefect import flow, task

from flows.alerts import raise_alert
from mlc_tasks.alert_records import Alert, AlertSignal, Severity
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.channels import Kind
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.resources import Resources, resources, using
from mlc_tasks.settings import MlcSettings


class LoopbackChannel:
    """A real channel that keeps what it is sent (the Channel protocol of mlc_tasks/channels)."""

    name = "slack"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, alert: Alert, kind: Kind) -> str | None:
        self.sent.append((alert.title, kind))
        return None


@task
def seen_by_a_task() -> int:
    return id(resources())


@flow
def inner() -> int:
    return id(resources())


@flow
def outer() -> list[int]:
    return [id(resources()), seen_by_a_task(), inner()]


def test_a_run_builds_its_resources_once(local_settings: MlcSettings,
                                         monkeypatch: Any) -> None:
    monkeypatch.setenv("MLC_HOME", str(local_settings.home))
    first, second = outer(), outer()
    assert len(set(first)) == 1, "the flow, its task and its subflow share one"
    assert set(first) != set(second), "each run has its own"


@flow
def alerting(store_bytes: bytes) -> str:
    uri, _ = resources().store().put(store_bytes)
    raise_alert(AlertSignal(severity=Severity.CRITICAL, model="credit-risk", source="test",
                            monitor="m", metric="x", window="w", title="swapped", detail=""))
    return uri


def test_a_test_swaps_the_store_and_a_channel(local_settings: MlcSettings) -> None:
    loopback = LoopbackChannel()
    memory = ArtifactStore("memory://mlc-resources-test")
    with using(Resources(local_settings, store=memory, channels={"slack": loopback})) as res:
        uri = alerting(b"model bytes")
        assert uri.startswith("memory://") and memory.fs.cat(uri) == b"model bytes"
        assert loopback.sent == [("swapped", "opened")]
        assert [a.title for a in AlertBook(res.registry).list()] == ["swapped"]
    assert not Path(local_settings.artifact_url()).exists(), "nothing reached the disk store"


def test_the_policy_is_read_again_only_when_its_file_changes(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    text = "people: [{id: p@bank.example, groups: [GROUP]}]\nreviews: {groups: [GROUP]}\n"
    policy.write_text(text.replace("GROUP", "a"))
    old = time.time() - 60
    os.utime(policy, (old, old))  # settled: older than the racy window
    res = Resources(MlcSettings(home=tmp_path / "home", policy_file=policy))
    first = res.policy()
    assert res.policy() is first, "an unchanged file is not parsed again"
    policy.write_text(text.replace("GROUP", "b"))  # the same size, written just now
    assert res.policy().reviews.groups == ["b"], "a fresh write is always read"
    os.utime(policy, (old + 1, old + 1))
    settled = res.policy()
    assert settled.reviews.groups == ["b"] and res.policy() is settled
