"""The scoring runtime as a real uvicorn process on loopback, deployed through the registry."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
import skops.io as sio
from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel
from sqlalchemy import update

from deployments.runtime_server import BoundedBody
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import MlcError, RuntimeFullError, RuntimeUnavailableError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry, VersionRecord
from mlc_tasks.registry.tables import VersionRow
from mlc_tasks.resources import Resources
from mlc_tasks.runtimes import (
    SMOKE_TEST_HEADER,
    DeployRequest,
    RuntimeClient,
    deploy_version,
    retire_version,
    rollback_target,
)
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import TOKEN, RuntimeProcess, mlc_bin, mlc_env


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
    assert served(runtime, "credit-risk")["version_id"] == versions["credit-risk"].id
    assert health["capacity"]["models"] == 1 and health["capacity"]["memory_bytes"] > 10_000
    split = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json()
    rows = sample(examples_dir)["dataframe_split"]
    records = [dict(zip(rows["columns"], row, strict=True)) for row in rows["data"]]
    by_records = httpx.post(f"{runtime.url}/invocations",
                            json={"dataframe_records": records}).json()
    assert split == by_records and len(split["predictions"]) == 3
    assert set(split["predictions"]) <= {0, 1}
    # the two requests above are kept for the drift monitor; the deploy's smoke test is not
    kept = captured_rows(runtime, 6)
    assert list(kept.columns) == [c.name for c in versions["credit-risk"].input_schema]


@pytest.mark.parametrize(
    ("change", "column"),
    [({"drop": "age"}, "age"), ({"set": ("income", "lots")}, "income"),
     ({"set": ("employment_years", 2.5)}, "employment_years")],
)
def test_bad_input_is_400_in_mlflows_shape_naming_the_column(start_runtime, local_registry,
                                                            versions,
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
    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert f"column '{column}'" in response.json()["message"]


def test_admin_endpoints_need_the_token(start_runtime, versions) -> None:
    runtime = start_runtime()
    for token in ("wrong-token", TOKEN[:-1]):
        client = RuntimeClient(runtime.url, token)
        with pytest.raises(MlcError, match="401"):
            client.revert("credit-risk")
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
    assert httpx.get(f"{runtime.url}/health").json()["models"] == {}


def test_runtime_down_is_clear_and_registry_unchanged(start_runtime, local_registry,
                                                      versions) -> None:
    runtime = start_runtime()
    runtime.stop()
    audit_before = len(local_registry.audit_events())
    with pytest.raises(RuntimeUnavailableError, match="did not answer"):
        deploy(local_registry, runtime, versions["credit-risk"])
    assert local_registry.deployments("credit-risk") == []
    assert len(local_registry.audit_events()) == audit_before


def test_two_models_answer_side_by_side_and_one_reverts_alone(
        start_runtime, local_registry, versions, examples_dir) -> None:
    runtime = start_runtime()
    credit, house = versions["credit-risk"], versions["house-prices"]
    deploy(local_registry, runtime, credit)
    deploy(local_registry, runtime, house)
    assert sorted(health(runtime)["models"]) == ["credit-risk", "house-prices"]
    assert {d.model for d in local_registry.served_on("qa")} == {"credit-risk", "house-prices"}
    expected = {name: score(runtime, name, sample(examples_dir, name))
                for name in ("credit-risk", "house-prices")}
    assert len(expected["credit-risk"]) == 3 and len(expected["house-prices"]) == 2
    ambiguous = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir))
    assert ambiguous.status_code == 400
    assert "credit-risk, house-prices" in ambiguous.text and "/models/" in ambiguous.text
    # undoing house-prices' deploy (its first) unloads it and leaves credit-risk alone
    assert RuntimeClient(runtime.url, TOKEN).revert("house-prices")["current"] is None
    assert list(health(runtime)["models"]) == ["credit-risk"]
    assert score(runtime, "credit-risk", sample(examples_dir)) == expected["credit-risk"]
    assert httpx.post(f"{runtime.url}/models/house-prices/invocations",
                      json=sample(examples_dir, "house-prices")).status_code == 404


def test_two_models_are_served_again_after_a_restart(start_runtime, local_registry, versions,
                                                     examples_dir) -> None:
    runtime = start_runtime()
    for name in ("credit-risk", "house-prices"):
        deploy(local_registry, runtime, versions[name])
    before = {n: score(runtime, n, sample(examples_dir, n)) for n in versions}
    runtime.stop()
    runtime.start()
    assert {n: score(runtime, n, sample(examples_dir, n)) for n in versions} == before


def second_version(examples_dir: Path, registry: Registry, settings: MlcSettings
                   ) -> VersionRecord:
    """credit-risk:2: the same model saved with another (unused) parameter: a new artifact
    that scores like the first (beside the first: its data location stays the same)."""
    package = examples_dir / "credit-risk-2"
    shutil.copytree(examples_dir / "credit-risk", package)
    artifact = package / "model.skops"
    model = sio.loads(artifact.read_bytes(), trusted=list(REVIEWED_TYPES) + sio.get_untrusted_types(
        data=artifact.read_bytes()))
    model.steps[-1][1].verbose = 1
    sio.dump(model, artifact)
    version, created = submit_package(package, registry, ArtifactStore(settings.artifact_url()),
                                      list(REVIEWED_TYPES), "ana")
    assert created and version.number == 2
    return version


def test_revert_only_to_a_version_the_registry_still_allows(
        start_runtime, local_registry, versions, examples_dir, local_settings) -> None:
    runtime = start_runtime()
    first = versions["credit-risk"]
    second = second_version(examples_dir, local_registry, local_settings)
    deploy(local_registry, runtime, versions["house-prices"])
    deploy(local_registry, runtime, first)
    deploy(local_registry, runtime, second)
    assert health(runtime)["models"]["credit-risk"]["previous"]["number"] == 1
    house = score(runtime, "house-prices", sample(examples_dir, "house-prices"))
    # a rollback of credit-risk (what `mlc rollback` does: the version before, deployed again)
    target = rollback_target(local_registry.deployments("credit-risk"), "qa")
    assert target.version_number == 1 and deploy(local_registry, runtime, first)
    assert served(runtime, "credit-risk")["number"] == 1
    assert score(runtime, "house-prices", sample(examples_dir, "house-prices")) == house
    deploy(local_registry, runtime, second)
    local_registry.transition(first.id, State.REJECTED, "risk-officer", "leaks the label")
    with pytest.raises(MlcError, match=r"refused \(409\).*credit-risk:1 as rejected"):
        RuntimeClient(runtime.url, TOKEN).revert("credit-risk")
    assert served(runtime, "credit-risk")["number"] == 2
    assert served(runtime, "house-prices")["number"] == 1


def test_restarted_runtime_serves_what_the_registry_says(start_runtime, local_registry,
                                                         versions, examples_dir) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    before = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json()
    runtime.stop()
    runtime.start()
    assert served(runtime, "credit-risk")["number"] == 1
    assert httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json() == before


def test_prod_refuses_an_unapproved_version_before_touching_the_runtime(
    start_runtime, local_registry, versions
) -> None:
    runtime = start_runtime("prod", "env=prod")
    with pytest.raises(MlcError, match="production takes approved versions"):
        deploy(local_registry, runtime, versions["credit-risk"])
    assert httpx.get(f"{runtime.url}/health").json()["models"] == {}
    version = versions["credit-risk"]
    local_registry.transition(version.id, State.TESTED, "ci")
    approved = local_registry.transition(version.id, State.APPROVED, "risk-officer")
    deploy(local_registry, runtime, approved)
    assert local_registry.get_version("credit-risk", 1).state == State.DEPLOYED




def edit_version(registry: Registry, version: VersionRecord, **values) -> VersionRecord:
    """Change a registered version behind the registry's back (a bad registration)."""
    with registry.transaction() as session:
        session.execute(update(VersionRow).where(VersionRow.id == version.id).values(**values))
    return registry.get_version_by_id(version.id)


def test_failed_warm_up_keeps_the_served_version(start_runtime, local_registry, versions,
                                                 examples_dir) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    # house-prices' artifact registered with credit-risk's schema cannot score its sample rows
    credit = versions["credit-risk"]
    bad = edit_version(local_registry, versions["house-prices"],
                       input_schema=[c.model_dump() for c in credit.input_schema],
                       sample_rows=credit.sample_rows)
    with pytest.raises(MlcError, match="warm-up on the sample rows failed"):
        RuntimeClient(runtime.url, TOKEN).deploy(DeployRequest.for_version(bad))
    assert list(health(runtime)["models"]) == ["credit-risk"]


def test_runtime_trusts_only_types_it_reviewed(start_runtime, local_registry, versions) -> None:
    runtime = start_runtime()
    bad = edit_version(local_registry, versions["credit-risk"], trusted_types=["os.system"])
    with pytest.raises(MlcError, match=r"types not reviewed on this runtime: \['os.system'\]"):
        RuntimeClient(runtime.url, TOKEN).deploy(DeployRequest.for_version(bad))


def test_runtime_restarted_as_prod_does_not_restore_an_unapproved_version(
    start_runtime, local_registry, versions
) -> None:
    runtime = start_runtime("edge", "env=qa")
    deploy(local_registry, runtime, versions["credit-risk"])
    runtime.stop()
    runtime.tags = "env=prod"
    runtime.start()
    assert httpx.get(f"{runtime.url}/health").json()["models"] == {}


def test_malformed_bodies_are_400_bad_request(start_runtime, local_registry, versions) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    for body in ({"dataframe_split": {"columns": ["a"], "data": [5]}}, {"rows": []}, [1]):
        answer = httpx.post(f"{runtime.url}/invocations", json=body)
        assert answer.status_code == 400 and answer.json()["error_code"] in (
            "BAD_REQUEST", "INVALID_PARAMETER_VALUE"), answer.text
    bad_json = httpx.post(f"{runtime.url}/invocations", content=b"{not json",
                          headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error_code"] == "BAD_REQUEST"


# ---- runtimes check what they are told --------------------------------------------------------

def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def health(runtime) -> dict:
    return httpx.get(f"{runtime.url}/health").json()


def captured_rows(runtime, count: int, model: str = "credit-risk") -> pd.DataFrame:
    """The scoring inputs the runtime kept (written off the request path): once `count` rows
    are there, and then no more."""
    deadline = time.monotonic() + 30
    while True:
        files = list((runtime.settings.capture_dir() / model / "v1").glob("*/qa.csv"))
        kept = pd.concat([pd.read_csv(f) for f in files]) if files else pd.DataFrame()
        if len(kept) >= count or time.monotonic() > deadline:
            assert len(kept) == count, f"{len(kept)} rows kept, not {count}"
            return kept
        time.sleep(0.1)


def served(runtime, model: str) -> dict:
    """The summary of the version `runtime` serves of `model`."""
    return health(runtime)["models"][model]["current"]


def score(runtime, model: str, body: dict) -> list:
    answer = httpx.post(f"{runtime.url}/models/{model}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def approve(registry: Registry, version: VersionRecord) -> VersionRecord:
    registry.transition(version.id, State.TESTED, "ci")
    return registry.transition(version.id, State.APPROVED, "risk-officer")


def test_deploy_of_a_rejected_version_with_a_valid_token_is_refused_naming_the_state(
        start_runtime, local_registry, versions) -> None:
    prod, qa = start_runtime("prod", "env=prod"), start_runtime("qa", "env=qa")
    house = versions["house-prices"]
    request = DeployRequest.for_version(house).model_dump(mode="json")  # the request has no state
    local_registry.transition(house.id, State.REJECTED, "risk-officer", "overfits")
    audit_before = len(local_registry.audit_events())
    for runtime in (prod, qa):
        answer = httpx.post(f"{runtime.url}/admin/deploy", json=request, headers=bearer(TOKEN))
        assert answer.status_code == 409
        assert "the registry has house-prices:1 as rejected" in answer.json()["detail"]
        assert health(runtime)["models"] == {}
    assert local_registry.deployments("house-prices") == []
    assert len(local_registry.audit_events()) == audit_before


def test_prod_refuses_an_unapproved_version_that_qa_takes(start_runtime, versions) -> None:
    prod, qa = start_runtime("prod", "env=prod"), start_runtime("qa", "env=qa")
    request = DeployRequest.for_version(versions["credit-risk"]).model_dump(mode="json")
    refused = httpx.post(f"{prod.url}/admin/deploy", json=request, headers=bearer(TOKEN))
    assert refused.status_code == 409
    assert "as submitted: production takes approved versions only" in refused.json()["detail"]
    taken = httpx.post(f"{qa.url}/admin/deploy", json=request, headers=bearer(TOKEN))
    assert taken.status_code == 200 and served(qa, "credit-risk")["number"] == 1


def test_a_request_that_is_not_the_registrys_version_is_refused(start_runtime, versions) -> None:
    runtime = start_runtime()
    credit, house = versions["credit-risk"], versions["house-prices"]
    genuine = DeployRequest.for_version(credit)
    swapped = genuine.model_copy(update={"artifact_uri": house.artifact_uri,
                                         "artifact_sha256": house.artifact_sha256})
    unknown = genuine.model_copy(update={"version_id": "0" * 32})
    for request, message in [
        (swapped, "differs from the registry's credit-risk:1 in artifact_uri, artifact_sha256"),
        (unknown, f"the registry has no version {'0' * 32}")]:
        answer = httpx.post(f"{runtime.url}/admin/deploy", json=request.model_dump(mode="json"),
                            headers=bearer(TOKEN))
        assert answer.status_code == 409 and message in answer.json()["detail"]
    assert health(runtime)["models"] == {}


@pytest.fixture
def own_tokens(local_settings: MlcSettings):
    """Runtimes started without MLC_ADMIN_TOKEN: each generates its own token under home."""
    settings = MlcSettings(home=local_settings.home)
    started: list[RuntimeProcess] = []

    def start(name: str, tags: str) -> RuntimeProcess:
        started.append(RuntimeProcess(settings, name, tags).start())
        return started[-1]

    yield settings, start
    for runtime in started:
        runtime.stop()


def test_each_runtime_has_its_own_token_and_the_qa_token_does_not_open_prod(
        own_tokens, local_registry, versions) -> None:
    settings, start = own_tokens
    qa, prod = start("qa", "env=qa"), start("prod", "env=prod")
    qa_token, prod_token = (settings.resolved_runtime_token(n) for n in ("qa", "prod"))
    assert len({qa_token, prod_token, TOKEN}) == 3
    version = approve(local_registry, versions["house-prices"])
    request = DeployRequest.for_version(version).model_dump(mode="json")
    for token in (qa_token, TOKEN):
        assert httpx.post(f"{prod.url}/admin/deploy", json=request,
                          headers=bearer(token)).status_code == 401
        assert httpx.post(f"{prod.url}/admin/models/house-prices/revert",
                          headers=bearer(token)).status_code == 401
    assert health(prod)["models"] == {}
    # the deploying code holds the token of the runtime it deploys to
    ctx = Resources(settings)
    record = local_registry.get_runtime("prod")
    assert deploy_version(local_registry, ctx.runtime_client(record), record, version, "flow")
    assert ctx.runtime_client(prod.url).serving("house-prices")["version_id"] == version.id
    with pytest.raises(MlcError, match=r"refused \(409\): this runtime serves no model"):
        ctx.runtime_client(qa.url).revert("house-prices")


def test_the_smoke_test_header_counts_only_with_the_admin_token(start_runtime, local_registry,
                                                                versions, examples_dir) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    for headers in ({SMOKE_TEST_HEADER: "1"}, {SMOKE_TEST_HEADER: "1", **bearer("guess")},
                    {SMOKE_TEST_HEADER: "1", **bearer(TOKEN)}):
        answer = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir),
                            headers=headers)
        assert answer.status_code == 200
    assert len(captured_rows(runtime, 6)) == 6  # the two without the token: ordinary traffic


def test_a_runtime_cannot_move_to_another_url_unless_an_admin_repins_it(
        start_runtime, local_settings, local_registry) -> None:
    first = start_runtime("prod", "env=prod")
    first.stop()
    moved = RuntimeProcess(local_settings, "prod", "env=prod")  # another port
    with pytest.raises(RuntimeError, match=f"error: runtime 'prod' is pinned to {first.url}; "
                                           f"it cannot register at {moved.url}") as refused:
        moved.start()
    assert "Traceback" not in str(refused.value)
    assert local_registry.get_runtime("prod").url == first.url
    process = subprocess.Popen(
        [mlc_bin(), "runtime", "start", "prod", "--tags", "env=prod", "--port", str(moved.port),
         "--repin"], env=mlc_env(local_settings))
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"{moved.url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        assert health(moved)["name"] == "prod"
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert local_registry.get_runtime("prod").url == moved.url
    [repin] = [e for e in local_registry.audit_events() if e.action == "runtime.repinned"]
    # an admin command acts as the host account that owns MLC_HOME, not as a typed $MLC_USER
    assert repin.actor == f"local:{getpass.getuser()}"
    assert repin.detail == {"from": first.url, "to": moved.url}


# ---- predict has limits -----------------------------------------------------------------------

ROW = [1000.0, 0.2, 40, 3, "north"]


def records_body(**row) -> bytes:
    return json.dumps({"dataframe_records": [{"income": 1000.0, "debt_ratio": 0.2, "age": 40,
                                              "employment_years": 3, "region": "north",
                                              **row}]}).encode()


def refusals(columns: list[str]) -> list[tuple[bytes, str, int, str]]:
    """(body, content type, status, what the answer names) for each request refused."""
    rows = json.dumps({"dataframe_split": {"columns": columns, "data": [ROW] * 200_000}})
    csv_head = ",".join(columns)
    return [
        (rows.encode(), "application/json", 413, "200000 rows; a request takes at most 10000"),
        (records_body(), "text/plain", 415, "content type 'text/plain' is not read here"),
        (records_body(), "application/x-www-form-urlencoded", 415, "not read here"),
        (records_body(), "", 415, "content type 'none'"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400, "nested too deep"),
        (records_body().replace(b"1000.0", b"9" * 400), "application/json", 400,
         "a number of 400 digits is out of range"),
        (records_body().replace(b"1000.0", b"NaN"), "application/json", 400, "NaN is not"),
        (records_body().replace(b"1000.0", b"1e999"), "application/json", 400,
         "1e999 is out of range for a float"),
        (records_body(age=2**63), "application/json", 400, "column 'age'"),
        (f"{csv_head}\ninf,0.2,40,3,north\n".encode(), "text/csv", 400,
         "column 'income', CSV line 2: 'inf' is not a finite number"),
        (f"{csv_head}\nlots,0.2,40,3,north\n".encode(), "text/csv", 400,
         "column 'income', CSV line 2: expects float, got 'lots'"),
        (b"income,age\n1,2\n", "text/csv", 400, "column 'debt_ratio' is missing"),
    ]


def test_invocations_refuse_what_they_do_not_read_and_never_fail(
        start_runtime, local_registry, versions, examples_dir) -> None:
    runtime = start_runtime()
    credit = versions["credit-risk"]
    deploy(local_registry, runtime, credit)
    for body, content_type, status, named in refusals([c.name for c in credit.input_schema]):
        answer = httpx.post(f"{runtime.url}/invocations", content=body,
                            headers={"Content-Type": content_type}, timeout=60)
        assert (answer.status_code, named in answer.text) == (status, True), answer.text[:300]
    assert not list((runtime.settings.capture_dir()).rglob("*.csv"))  # nothing kept
    good = httpx.post(f"{runtime.url}/invocations", json=sample(examples_dir)).json()
    split = sample(examples_dir)["dataframe_split"]
    lines = [",".join(split["columns"])] + [",".join(map(str, r)) for r in split["data"]]
    as_csv = httpx.post(f"{runtime.url}/invocations", content="\n".join(lines) + "\n",
                        headers={"Content-Type": "text/csv; charset=utf-8"})
    assert as_csv.status_code == 200 and as_csv.json() == good


def read_response(sock: socket.socket) -> bytes:
    """One whole HTTP response: headers and body may arrive in separate packets."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"content-length: (\d+)", data.lower()).group(1)):  # type: ignore[union-attr]
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(
        start_runtime, local_registry, versions) -> None:
    runtime = start_runtime()
    deploy(local_registry, runtime, versions["credit-risk"])
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=30) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{")
        answer = read_response(sock)  # the server answers without waiting for the 100 MB
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"at most 10485760 bytes (MLC_MAX_REQUEST_BYTES)" in answer
    assert health(runtime)["status"] == "ok"


# ---- no route reads more than the limit (in process: the middleware itself) -------------------

class Body(BaseModel):
    rows: list[int]


def bounded_app(limit: int) -> FastAPI:
    def refuse() -> None:
        raise HTTPException(401, "no token")

    app = FastAPI()
    app.add_middleware(BoundedBody, limit=limit)

    @app.post("/admin/deploy", dependencies=[Depends(refuse)])
    def admin(body: Body) -> dict:
        return {}

    return app


def call(app: FastAPI, chunks: list[bytes], declared: int | None = None) -> tuple[int, int]:
    """POST the chunks to /admin/deploy: (status, how many chunks the app took)."""
    taken: list[int] = []
    sent: list[dict] = []
    headers = [(b"content-type", b"application/json")]
    if declared is not None:
        headers.append((b"content-length", str(declared).encode()))
    scope = {"type": "http", "method": "POST", "path": "/admin/deploy", "raw_path":
             b"/admin/deploy", "query_string": b"", "headers": headers, "http_version": "1.1",
             "scheme": "http", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
             "root_path": ""}

    async def receive() -> dict:
        taken.append(1)
        return {"type": "http.request", "body": chunks[len(taken) - 1],
                "more_body": len(taken) < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], len(taken)


def test_a_body_is_read_only_up_to_the_limit_even_where_the_token_is_wrong() -> None:
    app = bounded_app(limit=20)
    assert call(app, [b'{"rows": ', b"[1]}"]) == (401, 2)  # small: read, then refused
    assert call(app, [b"[1, 2, 3, "] * 100) == (413, 3)  # stopped at the chunk past the limit
    assert call(app, [b"[1, 2, 3, "] * 100, declared=1000) == (413, 0)  # nothing read


# ---- retirement unloads; capacity refuses before anything changes ------------------------------

def test_retiring_a_version_unloads_it_at_once_and_a_runtime_told_nothing_at_its_heartbeat(
        start_runtime, local_registry, versions, local_settings) -> None:
    prod = start_runtime("prod", "env=prod")
    credit, house = (approve(local_registry, versions[n]) for n in ("credit-risk", "house-prices"))
    for version in (credit, house):
        deploy(local_registry, prod, version)
    ctx = Resources(local_settings)
    retired = retire_version(local_registry, ctx.runtime_client, local_registry.get_version(
        "house-prices", 1), "rita", "superseded")
    assert retired.state == State.RETIRED
    assert list(health(prod)["models"]) == ["credit-risk"]  # unloaded before retire returned
    assert [d.model for d in local_registry.served_on("prod")] == ["credit-risk"]
    # retired behind the runtime's back (it is not told): its heartbeat (1 s here) unloads it
    local_registry.transition(credit.id, State.RETIRED, "rita", "end of life")
    deadline = time.monotonic() + 30
    while health(prod)["models"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert health(prod)["models"] == {}
    assert local_registry.verify_audit().ok


def test_a_full_runtime_refuses_another_model_before_anything_changes(
        local_settings, local_registry, versions) -> None:
    runtime = RuntimeProcess(local_settings, "qa", "env=qa")
    runtime.env_extra = {"MLC_RUNTIME_MAX_MODELS": "1"}
    try:
        runtime.start()
        deploy(local_registry, runtime, versions["credit-risk"])
        events = len(local_registry.audit_events())
        with pytest.raises(RuntimeFullError, match=r"runtime qa serves 1 of its 1 models "
                                                   r"\(MLC_RUNTIME_MAX_MODELS\); house-prices"):
            deploy(local_registry, runtime, versions["house-prices"])
        # the runtime itself refuses too, when asked directly
        answer = httpx.post(f"{runtime.url}/admin/deploy", headers=bearer(TOKEN), json=(
            DeployRequest.for_version(versions["house-prices"]).model_dump(mode="json")))
        assert answer.status_code == 409 and "serves 1 of its 1 models" in answer.text
        assert list(health(runtime)["models"]) == ["credit-risk"]
        assert len(local_registry.audit_events()) == events
        # a new version of a served model still fits
        assert deploy(local_registry, runtime, versions["credit-risk"]) is None
    finally:
        runtime.stop()
