"""The installation's API as a real process: the control-plane API that every person's action
goes through (who calls is proved by a token or a trusted proxy, never typed), the commands in
another folder and another HOME that reach it, and the stored reports it serves as sandboxed
HTML (nothing else in the store is reachable)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deployments import api_upload
from deployments.api import installation
from deployments.api_upload import pack
from mlc_tasks import credentials
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.errors import InvalidPackageError
from mlc_tasks.lifecycle import State
from mlc_tasks.registry import Registry
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from tests.conftest import ApiProcess, enroll, free_port, mlc_bin, mlc_env, runtime_serving
from tests.receivers import Reply, serve

RITA = "rita.risk@bank.example"
POLICY = {"people": [{"id": RITA, "name": "Rita Risk", "groups": ["model-risk"]},
                     {"id": "ana.lopez@bank.example", "name": "Ana Lopez"}]}
# every /v1 route with a body it would accept: none may answer without credentials
ROUTES = [("GET", "/v1/whoami"), ("GET", "/v1/models"), ("GET", "/v1/models/credit-risk"),
          ("GET", "/v1/models/credit-risk/versions"), ("GET", "/v1/champions"),
          ("GET", "/v1/models/credit-risk/deployments"),
          ("GET", "/v1/models/credit-risk/comparisons"), ("GET", "/v1/audit"),
          ("GET", "/v1/tasks"), ("GET", "/v1/tasks/1"), ("GET", "/v1/alerts"),
          ("GET", "/v1/runtimes"), ("GET", "/v1/runtimes/serving"), ("POST", "/v1/packages"),
          ("POST", "/v1/tasks/1/decision"), ("POST", "/v1/alerts/1/ack"),
          ("POST", "/v1/alerts/1/snooze"), ("POST", "/v1/alerts/1/resolve"),
          ("POST", "/v1/models/credit-risk/retrain"),
          ("POST", "/v1/models/credit-risk/deploy"), ("POST", "/v1/models/credit-risk/rollback"),
          ("PATCH", "/v1/models/credit-risk")]
BODIES: dict[str, Any] = {"decision": {"decision": "approve"}, "snooze": {"minutes": 60},
                          "deploy": {
    "version": 1, "tags": {"env": "qa"}}, "credit-risk": {"risk_tier": "high"}}


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(POLICY))
    return path


def start_api(settings: MlcSettings, policy_file: Path, **env: str) -> ApiProcess:
    Registry(settings.registry_url(), audit_key=settings.resolved_audit_key()).close()
    return ApiProcess(settings, MLC_POLICY_FILE=str(policy_file), **env).start()


@pytest.fixture
def api_process(local_settings: MlcSettings, policy_file: Path) -> Iterator[ApiProcess]:
    started = start_api(local_settings, policy_file)
    yield started
    started.stop()


@pytest.fixture
def api(api_process: ApiProcess) -> str:
    return api_process.url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def body_for(path: str) -> Any:
    return next((b for k, b in BODIES.items() if path.endswith(k)), {})


def outsider_env(tmp_path: Path, api_url: str, token: str | None = None) -> dict[str, str]:
    """A second terminal somewhere else: no MLC_HOME, another HOME, maybe a token."""
    home = tmp_path / "someone-else"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in mlc_env(MlcSettings()).items()
           if k not in ("MLC_HOME", "MLC_DATABASE_URL", "PREFECT_API_URL")}
    return {**env, "HOME": str(home), "MLC_API_URL": api_url,
            **({"MLC_TOKEN": token} if token else {})}


def fake_prefect(receiver: Any) -> None:
    """A loopback stand-in for Prefect's events API (CSRF off, as the test harness runs)."""
    receiver.script("/api/csrf-token", Reply(422, json={"detail": "CSRF protection is disabled"}))
    receiver.script("/api/events", Reply(204, body=b""))


def registered_models(settings: MlcSettings) -> list[str]:
    registry = Registry(settings.registry_url())
    try:
        return [m.name for m in registry.list_models()]
    finally:
        registry.close()


# ---- who calls: tokens ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=lambda r: str(r))
def test_every_route_refuses_a_caller_without_credentials(api: str, method: str,
                                                          path: str) -> None:
    answer = httpx.request(method, f"{api}{path}", json=body_for(path))
    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["detail"].startswith("no credentials: send 'Authorization: Bearer")


def test_an_id_past_64_bits_is_bad_input_not_a_crash(api: str,
                                                     local_settings: MlcSettings) -> None:
    headers = bearer(enroll(local_settings, RITA))
    huge = "9" * 30
    for method, path in (("GET", f"/v1/tasks/{huge}"), ("POST", f"/v1/alerts/{huge}/ack"),
                         ("POST", f"/v1/alerts/{huge}/snooze")):
        answer = httpx.request(method, f"{api}{path}", headers=headers, json={"minutes": 60})
        assert answer.status_code == 400, (path, answer.text)
        assert "out of range" in answer.json()["detail"]


@pytest.mark.parametrize("header", [
    "Bearer not-a-token", "Bearer mlc_short", "Basic cml0YTpwYXNzd29yZA==", "Bearer",
    "mlc_" + "a" * 43, "Bearer mlc_" + "a" * 40 + "' OR 1=1 --"])
def test_a_malformed_token_is_refused(api: str, header: str) -> None:
    answer = httpx.get(f"{api}/v1/models", headers={"Authorization": header})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert "token" in answer.json()["detail"] or "malformed" in answer.json()["detail"]


def test_an_unknown_token_and_a_revoked_token_are_refused(
        api: str, local_settings: MlcSettings) -> None:
    unknown = httpx.get(f"{api}/v1/whoami", headers=bearer(credentials.new_token()))
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == "unknown, revoked or malformed token"
    token = enroll(local_settings, RITA)
    assert httpx.get(f"{api}/v1/whoami", headers=bearer(token)).json()["id"] == RITA
    done = subprocess.run([mlc_bin(), "people", "revoke", RITA], env=mlc_env(local_settings),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    revoked = httpx.get(f"{api}/v1/whoami", headers=bearer(token))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["detail"]


def test_a_service_token_may_read_and_submit_but_not_decide_or_operate(
        api: str, local_settings: MlcSettings, examples_dir: Path) -> None:
    token = enroll(local_settings, "ci-bot", service=True)
    assert httpx.get(f"{api}/v1/models", headers=bearer(token)).json() == []
    for path in ("/v1/tasks/1/decision", "/v1/alerts/1/ack", "/v1/alerts/1/snooze",
                 "/v1/models/credit-risk/rollback"):
        refused = httpx.post(f"{api}{path}", headers=bearer(token), json=body_for(path))
        assert refused.status_code == 403, path
        scope = "decide" if "decision" in path else "operate"
        assert refused.json()["detail"] == f"ci-bot (service) lacks the '{scope}' scope"
    submitted = httpx.post(f"{api}/v1/packages", headers=bearer(token),
                           content=pack(examples_dir / "house-prices"), timeout=120)
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["version"]["created_by"] == "ci-bot"


# ---- who calls: a single-sign-on proxy -----------------------------------------------------


def test_the_sso_header_from_an_untrusted_address_is_refused(
        local_settings: MlcSettings, policy_file: Path) -> None:
    api = start_api(local_settings, policy_file, MLC_TRUSTED_USER_HEADER="X-Forwarded-User",
                    MLC_TRUSTED_PROXIES='["10.0.0.1"]')
    try:
        token = enroll(local_settings, "ana.lopez@bank.example")
        for headers in ({"X-Forwarded-User": RITA},
                        {"X-Forwarded-User": RITA, **bearer(token)}):  # no fallback either
            answer = httpx.get(f"{api.url}/v1/whoami", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["detail"] == (
                "the X-Forwarded-User header is accepted only from a trusted proxy "
                "(MLC_TRUSTED_PROXIES); 127.0.0.1 is not one")
        assert httpx.get(f"{api.url}/v1/whoami", headers=bearer(token)).status_code == 200
    finally:
        api.stop()


@pytest.mark.parametrize("forwarded", [
    {"X-Forwarded-For": "10.0.0.1"}, {"X-Forwarded-For": "10.0.0.1, 10.0.0.1"},
    {"X-Forwarded-For": "10.0.0.1", "X-Forwarded-Proto": "https"},
    {"Forwarded": "for=10.0.0.1"}, {"X-Real-IP": "10.0.0.1"}])
def test_a_local_process_cannot_pass_for_the_trusted_proxy(
        local_settings: MlcSettings, policy_file: Path, forwarded: dict[str, str]) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 unless told not to: the API is served
    without proxy headers, so the trusted-proxy check sees the real peer."""
    api = start_api(local_settings, policy_file, MLC_TRUSTED_USER_HEADER="X-Forwarded-User",
                    MLC_TRUSTED_PROXIES='["10.0.0.1"]')
    try:
        answer = httpx.get(f"{api.url}/v1/whoami",
                           headers={"X-Forwarded-User": RITA, **forwarded})
        assert answer.status_code == 401, answer.text
        assert answer.json()["detail"].endswith("127.0.0.1 is not one")
    finally:
        api.stop()


def test_the_sso_header_from_a_trusted_proxy_names_a_person_of_the_policy(
        local_settings: MlcSettings, policy_file: Path) -> None:
    api = start_api(local_settings, policy_file, MLC_TRUSTED_USER_HEADER="X-Forwarded-User",
                    MLC_TRUSTED_PROXIES='["127.0.0.1"]')
    try:
        me = httpx.get(f"{api.url}/v1/whoami",
                       headers={"X-Forwarded-User": "Rita.Risk@Bank.example"})
        assert me.status_code == 200, me.text
        assert (me.json()["id"], me.json()["scopes"]) == (
            RITA, ["read", "submit", "decide", "operate"])
        for stranger in ("mallory@evil.example", ""):
            refused = httpx.get(f"{api.url}/v1/models", headers={"X-Forwarded-User": stranger})
            assert refused.status_code == 401
            assert refused.json()["detail"] == (
                f"X-Forwarded-User: '{stranger}' is not a person in the policy")
    finally:
        api.stop()


# ---- uploads -------------------------------------------------------------------------------


def crafted(package: Path, member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    """The package's archive with one more member, as an attacker would write it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(pack(package))) as good, \
            tarfile.open(fileobj=buffer, mode="w:gz") as evil:
        for item in good.getmembers():
            evil.addfile(item, good.extractfile(item) if item.isfile() else None)
        member.size = len(data) if member.isfile() else 0
        evil.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize(("evil", "refusal"), [
    (member("../x"), "package member '../x': a path out of the package"),
    (member("data/../../x"), "package member 'data/../../x': a path out of the package"),
    (member("/etc/cron.d/x"), "package member '/etc/cron.d/x': an absolute path"),
    (member("link", tarfile.SYMTYPE, "/etc/passwd"), "package member 'link': not a regular"),
    (member("hard", tarfile.LNKTYPE, "model.yaml"), "package member 'hard': not a regular"),
    (member("dev", tarfile.CHRTYPE), "package member 'dev': not a regular"),
    (member("fifo", tarfile.FIFOTYPE), "package member 'fifo': not a regular")],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "device", "fifo"])
def test_a_package_with_a_dangerous_member_is_refused_and_nothing_registered(
        api: str, local_settings: MlcSettings, package: Path, tmp_path: Path,
        evil: tarfile.TarInfo, refusal: str) -> None:
    token = enroll(local_settings, "ana.lopez@bank.example")
    answer = httpx.post(f"{api}/v1/packages", headers=bearer(token),
                        content=crafted(package, evil, b"* * * * * root evil"), timeout=120)
    assert answer.status_code == 400, answer.text
    assert answer.json()["detail"].startswith(refusal)
    assert registered_models(local_settings) == []
    assert not (tmp_path.parent / "x").exists()


def with_pax_header(package: Path, pax_bytes: int) -> bytes:
    """The package's archive whose model.yaml carries a pax header of that size: a few hundred
    KiB of gzip that tarfile would read whole into memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(pack(package))) as good, \
            tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as evil:
        for item in good.getmembers():
            if item.name == "model.yaml":
                item.pax_headers = {"comment": "x" * pax_bytes}
            evil.addfile(item, good.extractfile(item) if item.isfile() else None)
    return buffer.getvalue()


def test_a_huge_pax_header_is_refused_before_it_is_read(
        api: str, local_settings: MlcSettings, package: Path) -> None:
    token = enroll(local_settings, "ana.lopez@bank.example")
    body = with_pax_header(package, 64 << 20)
    assert len(body) < 1 << 20
    answer = httpx.post(f"{api}/v1/packages", headers=bearer(token), content=body, timeout=120)
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert re.fullmatch(r"package: an extended \(pax or GNU long-name\) header of (\d+) "
                        r"bytes; at most 64 KiB", detail), detail
    assert int(detail.split(" of ")[1].split()[0]) > 64 << 20
    assert registered_models(local_settings) == []
    assert httpx.get(f"{api}/health", timeout=10).json() == {"status": "ok"}
    small = httpx.post(f"{api}/v1/packages", headers=bearer(token),
                       content=with_pax_header(package, 1000), timeout=120)
    assert small.status_code == 200, small.text  # a modest pax header is still fine


@pytest.mark.parametrize(("build", "refusal"), [
    ("longname", "package: an extended (pax or GNU long-name) header of 200001 bytes"),
    ("sparse", "package member 'holes': a sparse file"),
    ("pax-sparse", "package member 'holes': a sparse file")])
def test_long_gnu_names_and_sparse_files_are_refused(tmp_path: Path, build: str,
                                                     refusal: str) -> None:
    buffer = io.BytesIO()
    fmt = tarfile.PAX_FORMAT if build == "pax-sparse" else tarfile.GNU_FORMAT
    with tarfile.open(fileobj=buffer, mode="w:gz", format=fmt) as archive:
        info = tarfile.TarInfo("a" * 200_000 if build == "longname" else "holes")
        if build == "sparse":
            info.type = tarfile.GNUTYPE_SPARSE
        if build == "pax-sparse":
            info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                                "GNU.sparse.name": "holes", "GNU.sparse.realsize": "9"}
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(InvalidPackageError, match=f"^{re.escape(refusal)}"):
        api_upload.unpack(buffer.getvalue(), tmp_path / "package")
    assert not (tmp_path / "package").exists()


def test_a_body_that_decompresses_past_the_limit_is_refused(
        package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_upload, "MAX_UNPACKED_BYTES", 4 << 20)
    monkeypatch.setattr(api_upload, "HEADER_ALLOWANCE", 1 << 20)
    (package / "data" / "zeros.bin").write_bytes(bytes(6 << 20))  # compresses to a few KiB
    body = pack(package)
    assert len(body) < 1 << 20
    with pytest.raises(InvalidPackageError, match=r"^package: over 5 MB once decompressed "
                                                  r"\(at most 4 MB of files"):
        api_upload.unpack(body, tmp_path / "package")
    assert [p.name for p in tmp_path.iterdir()] == ["credit-risk"]  # nothing left behind


def test_not_a_tar_and_an_archive_without_model_yaml_are_refused(
        api: str, local_settings: MlcSettings, tmp_path: Path) -> None:
    token = enroll(local_settings, "ci-bot", service=True)
    for body, refusal in [(b"not gzip at all", "package: not a readable tar.gz archive"),
                          (pack(tmp_path), "package: no model.yaml at the archive's root")]:
        answer = httpx.post(f"{api}/v1/packages", headers=bearer(token), content=body)
        assert answer.status_code == 400 and answer.json()["detail"].startswith(refusal)
    assert registered_models(local_settings) == []


def test_the_submitter_is_the_token_holder_whatever_is_typed(
        local_settings: MlcSettings, policy_file: Path, examples_dir: Path,
        tmp_path: Path) -> None:
    """MLC_USER and a model.yaml cannot name the submitter: the token's holder is it."""
    with serve() as prefect:
        fake_prefect(prefect)
        api = start_api(local_settings, policy_file, PREFECT_API_URL=f"{prefect.url}/api")
        try:
            token = enroll(local_settings, "ana.lopez@bank.example")
            env = {**outsider_env(tmp_path, api.url, token), "MLC_USER": RITA}
            done = subprocess.run([mlc_bin(), "submit", str(examples_dir / "credit-risk")],
                                  env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, done.stderr
            assert "registered credit-risk:1" in done.stdout and done.stderr == ""
            [event] = prefect.requests_to("/api/events")
        finally:
            api.stop()
    registry = Registry(local_settings.registry_url())
    version = registry.get_version("credit-risk", 1)
    assert version.created_by == "ana.lopez@bank.example"
    assert event.json()[0]["payload"]["submitted_by"] == "ana.lopez@bank.example"
    registry.close()


# ---- actions for the caller ----------------------------------------------------------------


def test_a_retraining_request_records_who_asked_and_passes_its_id(
        local_settings: MlcSettings, policy_file: Path, examples_dir: Path) -> None:
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    submit_package(examples_dir / "credit-risk", registry,
                   ArtifactStore(local_settings.artifact_url()), list(REVIEWED_TYPES), "ana")
    with serve() as prefect:
        fake_prefect(prefect)
        api = start_api(local_settings, policy_file, PREFECT_API_URL=f"{prefect.url}/api")
        try:
            token = enroll(local_settings, RITA)
            asked = httpx.post(f"{api.url}/v1/models/credit-risk/retrain", headers=bearer(token),
                               json={"data": None})
            unknown = httpx.post(f"{api.url}/v1/models/ghost/retrain", headers=bearer(token),
                                 json={})
        finally:
            api.stop()
        [event] = prefect.requests_to("/api/events")
    assert asked.status_code == 200, asked.text
    request = asked.json()["request"]
    payload = event.json()[0]["payload"]
    assert (payload["model"], payload["trigger"], payload["request"]) == (
        "credit-risk", "manual", request)
    [recorded] = [e for e in registry.audit_events("credit-risk")
                  if e.action == "model.retrain_requested"]
    assert (recorded.actor, recorded.detail) == (RITA, {"request": request, "data": None})
    assert unknown.status_code == 404 and "no model named 'ghost'" in unknown.json()["detail"]
    registry.close()


def test_a_manual_deploy_to_production_needs_approval_whatever_production_is_called(
        local_settings: MlcSettings, tmp_path: Path, package: Path, start_runtime,
        prefect_server: str) -> None:
    """The policy's production stage is {env: production}: an operator deploying a merely
    tested version there is refused and production is unchanged; QA takes it as before, and
    production takes it once approved."""
    policy = tmp_path / "production-policy.yaml"
    policy.write_text(yaml.safe_dump({**POLICY, "deployment": {
        "qa": {"env": "qa"}, "prod": {"env": "production"}}}))
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    version, _ = submit_package(package, registry, ArtifactStore(local_settings.artifact_url()),
                                list(REVIEWED_TYPES), "ana")
    registry.transition(version.id, State.TESTED, "ci", "tested")
    live, qa = start_runtime("live", "env=production"), start_runtime("qa", "env=qa")
    api = start_api(local_settings, policy, PREFECT_API_URL=prefect_server)
    try:
        token = enroll(local_settings, RITA)

        def deploy(tags: str) -> httpx.Response:
            return httpx.post(f"{api.url}/v1/models/credit-risk/deploy", headers=bearer(token),
                              json={"version": 1, "tags": tags}, timeout=120)

        refused = deploy("env=production")
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"] == (
            "production takes approved versions only; this version is tested")
        assert runtime_serving(live.url) is None
        assert registry.deployments("credit-risk") == []
        assert registry.get_version("credit-risk", 1).state == State.TESTED

        assert deploy("env=qa").status_code == 200  # QA tries what is not yet approved
        assert registry.get_version("credit-risk", 1).state == State.TESTED
        registry.transition(version.id, State.APPROVED, "boss", "approved")
        released = deploy("env=production")
        assert released.status_code == 200, released.text
    finally:
        api.stop()
    assert runtime_serving(live.url)["number"] == 1
    assert runtime_serving(qa.url)["number"] == 1
    assert registry.get_version("credit-risk", 1).state == State.DEPLOYED
    [*_, last] = registry.deployments("credit-risk")
    assert (last.runtime, last.deployed_by) == ("live", RITA)
    registry.close()


def test_a_model_change_is_requested_as_the_caller(
        api: str, local_settings: MlcSettings, examples_dir: Path) -> None:
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    submit_package(examples_dir / "house-prices", registry,
                   ArtifactStore(local_settings.artifact_url()), list(REVIEWED_TYPES), "li")
    token = enroll(local_settings, RITA)
    raised = httpx.patch(f"{api}/v1/models/house-prices", headers=bearer(token),
                         json={"risk_tier": "high"})
    assert raised.status_code == 200, raised.text
    assert [c["field"] for c in raised.json()["applied"]] == ["risk_tier"]
    assert registry.get_model("house-prices").risk_tier == "high"
    actors = {e.actor for e in registry.audit_events("house-prices") if "change" in e.action
              or "governance" in e.action or "model.updated" in e.action}
    assert actors == {RITA}, registry.audit_events("house-prices")
    typo = httpx.patch(f"{api}/v1/models/house-prices", headers=bearer(token),
                       json={"risk": "low"})
    assert typo.status_code == 422 and registry.get_model("house-prices").risk_tier == "high"
    registry.close()


def test_our_errors_are_clear_http_answers(api: str, local_settings: MlcSettings) -> None:
    token = enroll(local_settings, RITA)
    missing = httpx.get(f"{api}/v1/models/ghost", headers=bearer(token))
    assert (missing.status_code, missing.json()) == (404, {"detail": "no model named 'ghost'"})
    bad = httpx.post(f"{api}/v1/tasks/1/decision", headers=bearer(token),
                     json={"decision": "Maybe; drop"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "decision"]
    unknown = httpx.post(f"{api}/v1/tasks/1/decision", headers=bearer(token),
                         json={"decision": "maybe"})
    assert (unknown.status_code, unknown.json()) == (
        404, {"detail": "no human task 1 (see `mlc tasks`)"})
    assert httpx.get(f"{api}/docs").status_code == 200
    assert "/v1/packages" in httpx.get(f"{api}/openapi.json").json()["paths"]


# ---- enrolment (admin, on the installation's host) -----------------------------------------


def test_people_enroll_issues_a_token_the_api_takes_and_revoke_ends_it(
        api: str, local_settings: MlcSettings, policy_file: Path) -> None:
    env = {**mlc_env(local_settings), "MLC_POLICY_FILE": str(policy_file)}

    def mlc(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([mlc_bin(), *args], env=env, capture_output=True, text=True)
        assert (done.returncode == 0) == ok, done.stderr
        return done

    shown = mlc("people", "enroll", "Rita.Risk@Bank.example")
    assert f"enrolled {RITA} (person: read, submit, decide, operate)" in shown.stdout
    assert "otpauth://totp/mlc:rita.risk%40bank.example?secret=" in shown.stdout
    assert "█" in shown.stdout or "▀" in shown.stdout  # the QR code, in the terminal
    made = json.loads(mlc("people", "enroll", RITA, "--json").stdout)
    assert set(made) == {"id", "kind", "scopes", "token", "otpauth_uri"}
    assert made["otpauth_uri"].startswith("otpauth://totp/")
    me = httpx.get(f"{api}/v1/whoami", headers=bearer(made["token"]))
    assert me.status_code == 200 and me.json()["id"] == RITA
    old = shown.stdout.split("token (shown once; hand it over privately): ")[1].split()[0]
    assert httpx.get(f"{api}/v1/whoami", headers=bearer(old)).status_code == 401  # replaced

    ci = json.loads(mlc("people", "enroll", "ci-bot", "--service", "--json").stdout)
    assert (ci["kind"], ci["scopes"], ci["otpauth_uri"]) == ("service", ["read", "submit"], None)
    assert "not a person in the policy" in mlc("people", "enroll", "mallory@evil.example",
                                               ok=False).stderr
    assert "may hold only read, submit" in mlc("people", "enroll", "ci-bot", "--service",
                                               "--scope", "decide", ok=False).stderr
    assert "is a person in the policy" in mlc("people", "enroll", RITA, "--service",
                                              ok=False).stderr
    listed = mlc("people", "list").stdout.splitlines()
    assert listed[0] == "id\tkind\tscopes\tauthenticator\tenrolled (UTC)\trevoked (UTC)"
    assert listed[2].startswith(f"{RITA}\tperson\tread, submit, decide, operate\tyes\t")
    mlc("people", "revoke", RITA)
    assert httpx.get(f"{api}/v1/whoami", headers=bearer(made["token"])).status_code == 401
    assert mlc("people", "list").stdout.splitlines()[2].split("\t")[3:4] == ["no"]
    assert "nobody is enrolled as ghost" in mlc("people", "revoke", "ghost", ok=False).stderr


# ---- the installation, found from anywhere -------------------------------------------------


def test_another_folder_and_home_reaches_the_running_installation(
        local_settings: MlcSettings, examples_dir: Path, api: str, tmp_path: Path) -> None:
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    submit_package(examples_dir / "credit-risk", registry,
                   ArtifactStore(local_settings.artifact_url()), list(REVIEWED_TYPES), "ana")
    env = outsider_env(tmp_path, api, enroll(local_settings, "ci-bot", service=True))
    listed = subprocess.run([mlc_bin(), "models"], env=env, cwd=env["HOME"],
                            capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].startswith("credit-risk\tclassification\thigh\t-\t")
    versions = subprocess.run([mlc_bin(), "versions", "credit-risk"], env=env, cwd=env["HOME"],
                              capture_output=True, text=True)
    assert versions.returncode == 0, versions.stderr
    assert versions.stdout.splitlines()[0] == \
        "version\tstate\tchampion\tsha256\tcreated by\tcreated (UTC)\tid"
    assert versions.stdout.splitlines()[1].startswith("1\tsubmitted\t"), versions.stdout
    assert not (Path(env["HOME"]) / ".mlc").exists()
    no_token = subprocess.run([mlc_bin(), "models"], env={**env, "MLC_TOKEN": ""},
                              cwd=env["HOME"], capture_output=True, text=True)
    assert no_token.returncode == 1
    assert "no credentials" in no_token.stderr and "`mlc login`" in no_token.stderr
    registry.close()


def test_login_keeps_the_token_private_and_logout_forgets_it(
        local_settings: MlcSettings, api: str, tmp_path: Path) -> None:
    token = enroll(local_settings, RITA)
    env = outsider_env(tmp_path, api)
    stored = Path(env["HOME"]) / ".config" / "mlc" / "token"
    wrong = subprocess.run([mlc_bin(), "login"], env=env, input=credentials.new_token(),
                           capture_output=True, text=True)
    assert wrong.returncode == 1 and "unknown, revoked or malformed token" in wrong.stderr
    assert not stored.exists()
    done = subprocess.run([mlc_bin(), "login"], env=env, input=token + "\n",
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"as {RITA} (person" in done.stdout and token not in done.stdout
    assert stored.read_text().strip() == token and stored.stat().st_mode & 0o777 == 0o600
    whoami = subprocess.run([mlc_bin(), "whoami"], env=env, capture_output=True, text=True)
    assert whoami.stdout.startswith(RITA)
    stored.chmod(0o644)
    opened = subprocess.run([mlc_bin(), "whoami"], env=env, capture_output=True, text=True)
    assert opened.returncode == 1 and "is open to group or others" in opened.stderr
    assert subprocess.run([mlc_bin(), "logout"], env=env, capture_output=True,
                          text=True).returncode == 0
    assert not stored.exists()


def test_with_none_running_commands_say_so_and_create_nothing(tmp_path: Path) -> None:
    env = outsider_env(tmp_path, f"http://127.0.0.1:{free_port()}")
    for command in (["models"], ["versions", "credit-risk"], ["tasks"], ["audit", "verify"]):
        done = subprocess.run([mlc_bin(), *command], env=env, cwd=env["HOME"],
                              capture_output=True, text=True)
        assert done.returncode == 1, (command, done.stdout)
        assert "no running installation answers at http://127.0.0.1:" in done.stderr
        assert "start one with `make run`" in done.stderr
    configured = {**env, "MLC_HOME": str(tmp_path / "never-used")}
    done = subprocess.run([mlc_bin(), "audit", "verify"], env=configured, capture_output=True,
                          text=True)
    assert done.returncode == 1 and "no registry at" in done.stderr
    assert not (Path(env["HOME"]) / ".mlc").exists()
    assert not (tmp_path / "never-used").exists()


def test_reports_open_as_sandboxed_html_and_nothing_else_is_served(
        local_settings: MlcSettings, api: str) -> None:
    store = ArtifactStore(local_settings.artifact_url())
    html = b"<html><body><h1>Data drift</h1></body></html>"
    _, digest = store.put(html, ".html")
    shown = httpx.get(f"{api}/reports/{digest}.html")
    assert shown.status_code == 200 and shown.content == html
    assert shown.headers["content-type"] == "text/html; charset=utf-8"
    assert shown.headers["content-security-policy"].startswith("sandbox allow-scripts")
    assert shown.headers["x-content-type-options"] == "nosniff"

    _, artifact = store.put(b"the bytes of a model artifact")  # stored without a media type
    admin = local_settings.resolved_admin_token()
    for name in (f"{artifact}.html", artifact, digest, digest.upper() + ".html",
                 f"..%2F..%2F{digest}.html", "..%2F..%2Fadmin-token",
                 hashlib.sha256(b"never stored").hexdigest() + ".html"):
        answer = httpx.get(f"{api}/reports/{name}")
        assert answer.status_code == 404, name
        assert admin not in answer.text


def test_the_installation_answer_names_no_password(tmp_path: Path) -> None:
    settings = MlcSettings(home=tmp_path,
                           database_url="postgresql+psycopg://mlc:s3cret@db.internal:5432/mlc")
    found = installation(settings, "http://127.0.0.1:4200/api")
    assert "s3cret" not in str(found)
    assert found["registry_url"].startswith("postgresql+psycopg://mlc:***@")


def test_the_installation_answer_carries_no_credentials_in_any_url(
        local_settings: MlcSettings, policy_file: Path) -> None:
    """GET /installation answers anyone: user info and query strings (where an fsspec URL
    carries its keys) are gone from every URL, and only what a command reads is there."""
    api = start_api(local_settings, policy_file,
                    MLC_AUDIT_ANCHOR_URL="s3://key:secret@bucket/x?token=abc",
                    MLC_DATA_ROOTS='["s3://ak:sk@data-bucket/in?sig=zzz", "/srv/data"]')
    try:
        found = httpx.get(f"{api.url}/installation").json()
    finally:
        api.stop()
    urls = json.dumps([found["audit_anchor_url"], found["data_roots"], found["registry_url"]])
    for secret in ("key", "secret", "token", "abc", "ak:", "sk@", "sig", "zzz"):
        assert secret not in urls, secret
    assert found["audit_anchor_url"] == "s3://bucket/x"
    assert found["data_roots"] == ["s3://data-bucket/in", "/srv/data"]
    assert set(found) == {"home", "registry_url", "prefect_api_url", "policy_file",
                          "trusted_types", "audit_anchor_url", "data_roots"}
    settings = MlcSettings(home=local_settings.home, data_roots=[], database_url=(
        "postgresql+psycopg://mlc:pw@db.internal:5432/mlc?sslkey=/k&password=pw2"))
    assert installation(settings, "http://u:p@127.0.0.1:4200/api?t=1") | {"home": ""} == {
        "home": "", "registry_url": "postgresql+psycopg://mlc:***@db.internal:5432/mlc",
        "prefect_api_url": "http://127.0.0.1:4200/api", "policy_file": "",
        "trusted_types": settings.trusted_types,
        "audit_anchor_url": str(local_settings.home / "audit-anchors"), "data_roots": []}


def test_a_submitter_cannot_trust_types_for_the_installation(
        local_settings: MlcSettings, examples_dir: Path, api: str, tmp_path: Path) -> None:
    """`MLC_TRUSTED_TYPES='["builtins.exec"]' mlc submit` with a crafted artifact: the running
    installation's reviewed list decides, and nothing is registered."""
    import skops.io as sio

    package = Path(shutil.copytree(examples_dir / "credit-risk", tmp_path / "evil"))
    (package / "model.skops").write_bytes(sio.dumps({"call": exec}))
    env = {**outsider_env(tmp_path, api, enroll(local_settings, "ci-bot", service=True)),
           "MLC_TRUSTED_TYPES": '["builtins.exec"]'}
    done = subprocess.run([mlc_bin(), "submit", str(package)], env=env, cwd=env["HOME"],
                          capture_output=True, text=True)
    assert done.returncode == 1, done.stdout
    assert "types not reviewed: builtins.exec" in done.stderr
    assert registered_models(local_settings) == []
