"""The scoring runtime as a real uvicorn process on loopback, deployed through the registry."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest

from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import MlcError, RuntimeUnavailableError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.runtimes import DeployRequest, RuntimeClient, deploy_version
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import TOKEN


@pytest.fixture
def local_registry(local_settings: MlcSettings):
    registry = Registry(local_settings.registry_url())
    yield registry
    registry.close()


@pytest.fixture
def versions(examples_dir: Path, local_registry: Registry, local_settings: MlcSettings):
    store = ArtifactStore(local_settings.artifact_url())
    return {name: submit_package(examples_dir / name, local_registry, store,
                                 list(REVIEWED_TYPES), "ana")[0]
            for name in ("credit-risk", "house-prices")}


def sample(examples_dir: Path, name: str = "credit-risk") -> dict:
    return json.loads((examples_dir / name / "sample.json").read_text())


def deploy(registry: Registry, runtime, version):
    record = registry.get_runtime(runtime.name)
    return deploy_version(registry, RuntimeClient(runtime.url, TOKEN), record, version, "bob")


def test_runtime_registers_itself_with_capabilities(start_runtime, local_registry) -> None:
    runtime = start_runtime("qa", "env=qa,zone=eu")
    record = local_registry.get_runtime("qa")
    assert record.url == runtime.url and record.tags == {"env": "qa", "zone": "eu"}
    assert record.capabilities["sklearn"] and "skops" in record.capabilities["formats"]


def test_deploy_then_predict_mlflow_style(start_runtime, local_registry, versions,
                                          examples_dir) -> None:
    runtime = start_runtime()
    assert httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).status_code == 503
    deployment = deploy(local_registry, runtime, versions["credit-risk"])
    assert deployment and deployment.runtime == "qa" and deployment.deployed_by == "bob"

    health = httpx.get(f"{runtime.url}/health").json()
    assert health["deployed"]["version_id"] == versions["credit-risk"].id
    split = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json()
    rows = sample(examples_dir)["dataframe_split"]
    records = [dict(zip(rows["columns"], row, strict=True)) for row in rows["data"]]
    by_records = httpx.post(f"{runtime.url}/invocations",
                            json={"dataframe_records": records}).json()
    assert split == by_records and len(split["predictions"]) == 3
    assert set(split["predictions"]) <= {0, 1}
    # the two requests above are kept for the drift monitor; the deploy's smoke test is not
    captured = list((runtime.settings.capture_dir() / "credit-risk" / "v1").glob("*/qa.csv"))
    assert len(captured) == 1
    kept = pd.read_csv(captured[0])
    assert len(kept) == 6 and list(kept.columns) == [c.name for c in
                                                     versions["credit-risk"].input_schema]


@pytest.mark.parametrize(
    ("change", "column"),
    [({"drop": "age"}, "age"), ({"set": ("income", "lots")}, "income"),
     ({"set": ("employment_years", 2.5)}, "employment_years")],
)
def test_bad_input_is_422_naming_the_column(start_runtime, local_registry, versions,
                                            examples_dir, change, column) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    row = {"income": 1000.0, "debt_ratio": 0.2, "age": 40, "employment_years": 3,
           "region": "north"}
    if "drop" in change:
        row.pop(change["drop"])
    else:
        row[change["set"][0]] = change["set"][1]
    response = httpx.post(f"{runtime.url}/invocations", json={"dataframe_records": [row]})
    assert response.status_code == 422
    assert response.json()["detail"]["column"] == column
    assert column in response.json()["detail"]["message"]


def test_admin_endpoints_need_the_token(start_runtime, versions) -> None:
    runtime = start_runtime()
    for token in ("wrong-token", TOKEN[:-1]):
        client = RuntimeClient(runtime.url, token)
        with pytest.raises(MlcError, match="401"):
            client.rollback()
    assert httpx.post(f"{runtime.url}/admin/deploy", json={}).status_code == 401


def test_rerun_deploys_nothing(start_runtime, local_registry, versions) -> None:
    runtime = start_runtime()
    assert deploy(local_registry, runtime, versions["credit-risk"]) is not None
    assert deploy(local_registry, runtime, versions["credit-risk"]) is None
    assert len(local_registry.deployments("credit-risk")) == 1


def test_altered_artifact_is_refused_and_registry_unchanged(
    start_runtime, local_registry, versions
) -> None:
    runtime = start_runtime()
    Path(versions["house-prices"].artifact_uri).write_bytes(b"PK\x03\x04 tampered")
    audit_before = len(local_registry.audit_events())
    with pytest.raises(MlcError, match="altered after registration"):
        deploy(local_registry, runtime, versions["house-prices"])
    assert local_registry.deployments("house-prices") == []
    assert len(local_registry.audit_events()) == audit_before
    assert httpx.get(f"{runtime.url}/health").json()["deployed"] is None


def test_runtime_down_is_clear_and_registry_unchanged(start_runtime, local_registry,
                                                      versions) -> None:
    runtime = start_runtime()
    runtime.stop()
    audit_before = len(local_registry.audit_events())
    with pytest.raises(RuntimeUnavailableError, match="did not answer"):
        deploy(local_registry, runtime, versions["credit-risk"])
    assert local_registry.deployments("credit-risk") == []
    assert len(local_registry.audit_events()) == audit_before


def test_rollback_serves_the_previous_version(start_runtime, local_registry, versions,
                                              examples_dir) -> None:
    runtime = start_runtime()
    credit, house = versions["credit-risk"], versions["house-prices"]
    deploy(local_registry, runtime, credit)
    deploy(local_registry, runtime, house)
    health = httpx.get(f"{runtime.url}/health").json()
    assert health["deployed"]["model"] == "house-prices"
    assert health["previous"]["model"] == "credit-risk"
    RuntimeClient(runtime.url, TOKEN).rollback()
    predictions = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json()
    assert len(predictions["predictions"]) == 3


def test_restarted_runtime_serves_what_the_registry_says(start_runtime, local_registry,
                                                         versions, examples_dir) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    before = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json()
    runtime.stop()
    runtime.start()
    assert httpx.get(f"{runtime.url}/health").json()["deployed"]["number"] == 1
    assert httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json() == before


def test_prod_refuses_an_unapproved_version_before_touching_the_runtime(
    start_runtime, local_registry, versions
) -> None:
    runtime = start_runtime("prod", "env=prod")
    with pytest.raises(MlcError, match="production takes approved versions"):
        deploy(local_registry, runtime, versions["credit-risk"])
    assert httpx.get(f"{runtime.url}/health").json()["deployed"] is None
    version = versions["credit-risk"]
    local_registry.transition(version.id, State.TESTED, "ci")
    approved = local_registry.transition(version.id, State.APPROVED, "risk-officer")
    deploy(local_registry, runtime, approved)
    assert local_registry.get_version("credit-risk", 1).state == State.DEPLOYED




def test_failed_warm_up_keeps_the_served_version(start_runtime, local_registry, versions,
                                                 examples_dir) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    # house-prices' artifact declared with credit-risk's schema cannot score its sample rows
    request = DeployRequest.for_version(versions["house-prices"]).model_copy(
        update={"input_schema": versions["credit-risk"].input_schema,
                "sample_rows": versions["credit-risk"].sample_rows})
    with pytest.raises(MlcError, match="warm-up on the sample rows failed"):
        RuntimeClient(runtime.url, TOKEN).deploy(request)
    assert httpx.get(f"{runtime.url}/health").json()["deployed"]["model"] == "credit-risk"


def test_runtime_trusts_only_types_it_reviewed(start_runtime, versions) -> None:
    runtime = start_runtime()
    request = DeployRequest.for_version(versions["credit-risk"]).model_copy(
        update={"trusted_types": ["os.system"]})
    with pytest.raises(MlcError, match=r"types not reviewed on this runtime: \['os.system'\]"):
        RuntimeClient(runtime.url, TOKEN).deploy(request)


def test_runtime_restarted_as_prod_does_not_restore_an_unapproved_version(
    start_runtime, local_registry, versions
) -> None:
    runtime = start_runtime("edge", "env=qa")
    deploy(local_registry, runtime, versions["credit-risk"])
    runtime.stop()
    runtime.tags = "env=prod"
    runtime.start()
    assert httpx.get(f"{runtime.url}/health").json()["deployed"] is None


def test_malformed_bodies_are_422(start_runtime, local_registry, versions) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    for body in ({"dataframe_split": {"columns": ["a"], "data": [5]}}, {"rows": []}, [1]):
        assert httpx.post(f"{runtime.url}/invocations", json=body).status_code == 422
    bad_json = httpx.post(f"{runtime.url}/invocations", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422
