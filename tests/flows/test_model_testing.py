"""test-model on a real Prefect server: the standard test record, thresholds, alerts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from flows.model_testing import model_test as run_test_model
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import REPO, TOKEN


@pytest.fixture
def registry_env(local_settings: MlcSettings, examples_dir: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("MLC_HOME", str(local_settings.home))
    monkeypatch.setenv("MLC_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("MLC_POLICY_FILE", str(REPO / "examples" / "policy.yaml"))
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    store = ArtifactStore(local_settings.artifact_url())
    for name in ("credit-risk", "house-prices"):
        submit_package(examples_dir / name, registry, store, list(REVIEWED_TYPES), "ana")
    return registry


def test_passing_version_is_tested(registry_env: Registry, prefect_server: str) -> None:
    assert run_test_model("credit-risk", 1) is True
    version = registry_env.get_version("credit-risk", 1)
    [result] = registry_env.test_results(version.id)
    assert version.state == State.TESTED and result.passed
    assert set(result.metrics) == {"accuracy", "precision", "recall", "f1", "roc_auc",
                                   "log_loss", "cost_per_applicant", "approval_rate"}
    assert 0 < result.metrics["approval_rate"] < 1  # the package's own metrics function
    assert {c.metric for c in result.thresholds} == {"roc_auc", "accuracy"}
    assert result.dataset_uri.endswith("#data/test.csv") and len(result.dataset_sha256) == 64
    table = httpx.post(f"{prefect_server}/artifacts/filter",
                       json={"artifacts": {"key": {"any_": ["test-credit-risk-v1"]}},
                             "sort": "CREATED_DESC"}).json()
    assert "roc_auc" in str(table[0]["data"])


def test_missed_threshold_alerts_once_and_keeps_state(registry_env: Registry) -> None:
    assert run_test_model("house-prices", 1) is False
    assert run_test_model("house-prices", 1) is False  # a rerun: same result, same alert
    version = registry_env.get_version("house-prices", 1)
    assert version.state == State.SUBMITTED
    assert len(registry_env.test_results(version.id)) == 1
    [alert] = AlertBook(registry_env).list()
    assert alert.title.startswith("house-prices:1 mae ") and "above threshold 40000" in alert.title
    assert alert.count == 2 and alert.value and alert.value > 40000
