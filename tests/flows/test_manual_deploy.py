"""deploy-model and rollback-model at a person's request, on a real Prefect server with real
runtimes: the control-plane API records who asked for what (here: record_request, as the API
calls it) and the flow carries it out once, as that person, production included. Anyone who
reaches Prefect can run these flows with any `request`: a made-up one, one already carried out,
or one for another model, version, stage or reason is refused, the refusal is in the audit log,
and production serves what it served."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import skops.io as sio

from flows.deploy_model import deploy_model, rollback_model
from mlc_tasks import runtimes
from mlc_tasks.errors import DeployRefusedError, InvalidInputError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import VersionRecord
from mlc_tasks.run_requests import RequestKind, record_request
from mlc_tasks.runtimes import RuntimeClient
from mlc_tasks.settings import REVIEWED_TYPES
from mlc_tasks.submission import submit_package
from tests.conftest import TOKEN, runtime_serving
from tests.flows.conftest import Stack

RITA = "rita.risk@bank.example"
PROD = {"env": "prod"}


@pytest.fixture
def md(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """The flows read their settings from the environment, as served runs do (the built-in
    policy: production is env=prod)."""
    monkeypatch.setenv("MLC_HOME", str(stack.settings.home))
    monkeypatch.setenv("MLC_ADMIN_TOKEN", TOKEN)
    return stack


def approved(stack: Stack, package: Path, name: str, variants: int = 1) -> list[VersionRecord]:
    """Versions 1..variants of a copy of credit-risk named `name`, each approved."""
    (package / "model.yaml").write_text((package / "model.yaml").read_text().replace(
        "name: credit-risk", f"name: {name}"))
    found = []
    for variant in range(1, variants + 1):
        if variant > 1:  # other bytes, other version
            model = sio.load(package / "model.skops", trusted=list(REVIEWED_TYPES))
            model.mlc_variant = variant
            sio.dump(model, package / "model.skops")
        version, _ = submit_package(package, stack.registry, stack.store, list(REVIEWED_TYPES),
                                    "ana")
        for state in (State.TESTED, State.APPROVED):
            version = stack.registry.transition(version.id, state, "tester", "for the test")
        found.append(version)
    return found


def serving(stack: Stack, env: str, model: str) -> str | None:
    deployed = runtime_serving(stack.runtimes[env].url, model)
    return deployed["version_id"] if deployed else None


def on_prod(stack: Stack, *versions: VersionRecord) -> None:
    """Deploy each in turn to production, as on-model-changed would (the setup)."""
    prod = stack.registry.get_runtime("prod")
    for version in versions:
        runtimes.deploy_version(stack.registry, RuntimeClient(prod.url, TOKEN), prod, version,
                                "on-model-changed", "released")


def refusals(stack: Stack, model: str, action: str) -> list[dict[str, Any]]:
    return [e.detail for e in stack.registry.audit_events(model) if e.action == action]


def test_a_persons_request_deploys_to_production_once_as_them(md: Stack, package: Path) -> None:
    [version] = approved(md, package, "manual-prod")
    asked = {"version": 1, "tags": PROD, "reason": "release by hand"}
    request = record_request(md.registry, RequestKind.DEPLOY, "manual-prod", RITA, asked)
    assert deploy_model("manual-prod", 1, PROD, "release by hand", request=request) == (
        "manual-prod:1 deployed on prod")
    assert serving(md, "prod", version.model) == version.id
    [deployed] = md.registry.deployments("manual-prod")
    assert (deployed.deployed_by, deployed.reason) == (RITA, "release by hand")
    assert md.registry.get_version("manual-prod", 1).state == State.DEPLOYED

    with pytest.raises(DeployRefusedError, match="^request: .* was already taken by a run"):
        deploy_model("manual-prod", 1, PROD, "release by hand", request=request)
    [refused] = refusals(md, "manual-prod", "deploy.refused")
    assert refused["request"] == request and refused["flow_run"]
    assert len(md.registry.deployments("manual-prod")) == 1


@pytest.mark.parametrize("given,refusal", [
    ({"request": "forged"}, "no deploy was requested as 'forged'"),
    ({"model": "someone-else"}, "asked to deploy {name}, not someone-else"),
    ({"version": 2}, "asked for version 1, not 2"),
    ({"tags": {"env": "prod", "zone": "eu"}}, "asked for tags"),
    ({"reason": "rita said so"}, "asked for reason 'qa first', not 'rita said so'"),
])
def test_a_request_is_not_a_key_to_production(md: Stack, package: Path, given: dict[str, Any],
                                              refusal: str, request: pytest.FixtureRequest
                                              ) -> None:
    """Rita asked for credit-risk:1 on QA; someone with Prefect access reuses her request's id
    (it is in the run's parameters) for production, another version or another model, or
    makes one up. Each is refused and recorded; her request still works for what she asked."""
    name = f"manual-attack-{request.node.callspec.indices['given']}"  # one model per case
    [version] = approved(md, package, name)
    asked = record_request(md.registry, RequestKind.DEPLOY, name, RITA,
                           {"version": 1, "tags": {"env": "qa"}, "reason": "qa first"})
    params = {"model": name, "version": 1, "tags": {"env": "qa"}, "reason": "qa first",
              "request": asked, **given}
    prod_before = serving(md, "prod", name)
    with pytest.raises(DeployRefusedError, match=f"^request: .*{refusal.format(name=name)}"):
        deploy_model(**params)
    [refused] = refusals(md, params["model"], "deploy.refused")
    assert refused["request"] == params["request"]
    assert md.registry.deployments(name) == []
    assert serving(md, "prod", name) == prod_before != version.id

    assert deploy_model(name, 1, {"env": "qa"}, "qa first", request=asked) == (
        f"{name}:1 deployed on qa")
    assert md.registry.deployments(name)[-1].deployed_by == RITA


def test_a_rollback_request_does_not_deploy(md: Stack, package: Path) -> None:
    approved(md, package, "manual-kind")
    request = record_request(md.registry, RequestKind.ROLLBACK, "manual-kind", RITA,
                             {"env": "prod", "reason": "rollback"})
    with pytest.raises(DeployRefusedError, match="^request: no deploy was requested as"):
        deploy_model("manual-kind", 1, PROD, "rollback", request=request)
    assert md.registry.deployments("manual-kind") == []


def test_rollback_model_puts_back_the_version_before_at_a_persons_request(
        md: Stack, package: Path) -> None:
    first, second = approved(md, package, "manual-back", variants=2)
    on_prod(md, first, second)
    with pytest.raises(DeployRefusedError, match="^env: env=prod is production .*rollback-model "
                                                 "goes there only at a person's request"):
        rollback_model("manual-back")  # anyone with Prefect access, no request
    deploy = record_request(md.registry, RequestKind.DEPLOY, "manual-back", RITA,
                            {"version": 1, "tags": PROD, "reason": "rollback"})
    with pytest.raises(DeployRefusedError, match="^request: no rollback was requested as"):
        rollback_model("manual-back", "prod", "rollback", request=deploy)
    assert serving(md, "prod", "manual-back") == second.id
    assert [d["request"] for d in refusals(md, "manual-back", "rollback.refused")] == ["", deploy]

    request = record_request(md.registry, RequestKind.ROLLBACK, "manual-back", RITA,
                             {"env": "prod", "reason": "v2 scores badly"})
    assert rollback_model("manual-back", "prod", "v2 scores badly", request=request) == (
        "manual-back:1 back on prod")
    assert serving(md, "prod", "manual-back") == first.id
    last = md.registry.deployments("manual-back")[-1]
    assert (last.version_number, last.deployed_by, last.reason) == (
        1, RITA, "v2 scores badly: back to manual-back:1")
    with pytest.raises(DeployRefusedError, match="already taken"):  # not back and forth
        rollback_model("manual-back", "prod", "v2 scores badly", request=request)
    assert serving(md, "prod", "manual-back") == first.id


def test_rollback_model_on_qa_needs_no_request(md: Stack, package: Path) -> None:
    first, second = approved(md, package, "manual-qa", variants=2)
    qa = md.registry.get_runtime("qa")
    for version in (first, second):
        runtimes.deploy_version(md.registry, RuntimeClient(qa.url, TOKEN), qa, version, "tester",
                                "trying")
    assert rollback_model("manual-qa", env="qa") == "manual-qa:1 back on qa"
    assert md.registry.deployments("manual-qa")[-1].deployed_by == "rollback-model"
    with pytest.raises(InvalidInputError, match="^env: 'staging' is not prod or qa"):
        rollback_model("manual-qa", env="staging")
