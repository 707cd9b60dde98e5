"""The Command Center's doors, attacked over real HTTP (the installation's API as a process):
no session sees no data; forged, tampered, expired cookies and a revoked person's session are
refused; a form without its session's CSRF token or from another origin changes nothing; a
service sees pages but may not act; what a package, an alert or a comment says is escaped;
`next=` never leads off the site; an upload over the limit is refused before it is read."""

from __future__ import annotations

import re
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from deployments.api_upload import pack
from deployments.command_center import session as cc_session
from mlc_tasks.alert_records import AlertSignal, AlertStatus, Severity
from mlc_tasks.locations import LocationPolicy
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.resources import Resources
from mlc_tasks.settings import REVIEWED_TYPES, MlcSettings
from mlc_tasks.submission import submit_package
from mlc_tasks.task_records import TaskKind
from tests.conftest import TOKEN, ApiProcess

RITA, ANA, BOT = "rita.risk@bank.example", "ana.lopez@bank.example", "ci-bot"
MARKDOWN_ATTACK = ("[click](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n"
                   "| metric | v1 |\n|---|---|\n| roc_auc | 0.81 |")
EVIL = '<script>alert("x")</script>'
POLICY = {"people": [{"id": RITA, "name": "Rita Risk", "groups": ["model-risk"]},
                     {"id": ANA, "name": "Ana Lopez"}]}
PAGES = ["/center/", "/center/models/credit-risk", "/center/tasks", "/center/tasks/1",
         "/center/alerts", "/center/submit", "/center/models/credit-risk/versions/1/packet"]


class Center:
    """The running API, its registry, and the records the tests look at."""

    def __init__(self, settings: MlcSettings, api: ApiProcess, registry: Registry,
                 alert_id: int, task_id: int) -> None:
        self.settings, self.api, self.registry = settings, api, registry
        self.url, self.alert_id, self.task_id = api.url, alert_id, task_id

    def token(self, who: str, service: bool = False) -> str:
        kind = PrincipalKind.SERVICE if service else PrincipalKind.PERSON
        return PrincipalBook(self.registry).enroll(who, kind, "local:test").token

    def client(self, token: str | None = None) -> httpx.Client:
        """A browser-like client, logged in with `token` when given."""
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        if token is not None:
            answer = login(client, token)
            assert answer.status_code == 303, answer.text
        return client

    def new_alert(self, title: str = "AUC below threshold") -> int:
        signal = AlertSignal(severity=Severity.WARNING, model="credit-risk", source="test",
                             monitor="threshold", metric="roc_auc", window=str(time.time_ns()),
                             title=title, run_url="javascript:alert(1)")
        return AlertBook(self.registry).raise_alert(signal, [], timedelta(hours=1))[0].id


def login_csrf(client: httpx.Client) -> str:
    form = client.get("/center/login")
    return re.search(r'name="csrf" value="([^"]+)"', form.text)[1]  # type: ignore[index]


def login(client: httpx.Client, token: str, next_: str = "", **headers: str) -> httpx.Response:
    csrf = login_csrf(client)
    return client.post("/center/login", data={"token": token, "csrf": csrf, "next": next_},
                       headers=headers)


def csrf_of(client: httpx.Client, path: str = "/center/alerts") -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get(path).text)
    assert found, "no form on the page"
    return found[1]


@pytest.fixture(scope="module")
def center(tmp_path_factory: pytest.TempPathFactory, examples_dir: Path) -> Iterator[Center]:
    base = tmp_path_factory.mktemp("center")
    daily = examples_dir / "daily"
    settings = MlcSettings(home=base / "home", admin_token=TOKEN,
                           data_roots=[str(base), str(daily)])
    policy = base / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    registry = Registry(settings.registry_url(), audit_key=settings.resolved_audit_key())
    package = Path(shutil.copytree(examples_dir / "credit-risk", base / "credit-risk"))
    spec = yaml.safe_load((package / "model.yaml").read_text())
    spec.update(description=f"scores loans {EVIL}", data_location=str(daily / "credit-risk"))
    (package / "model.yaml").write_text(yaml.safe_dump(spec))
    version, _ = submit_package(package, registry, Resources(settings).store(), REVIEWED_TYPES,
                                ANA, LocationPolicy.from_settings(settings))
    task, _ = TaskBook(registry).open_task(
        TaskKind.APPROVAL, version.id, "approval", groups=["model-risk"], quorum=1,
        deadline=None, flow_run_id=None, holder=None, actor="system:test",
        detail={"evidence": f"## Evidence\nroc_auc 0.81 {EVIL}\n\n{MARKDOWN_ATTACK}",
                "run_url": "javascript:x()"})
    TaskBook(registry).decide(task.id, "mallory@evil.example", "approve", f"lgtm {EVIL}",
                              "api", members=set())
    api = ApiProcess(settings, MLC_POLICY_FILE=str(policy)).start()
    made = Center(settings, api, registry, 0, task.id)
    made.alert_id = made.new_alert(f"AUC fell {EVIL}")
    yield made
    api.stop()
    registry.close()


# ---- no session ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_without_a_session_every_page_sends_to_login_and_shows_no_data(
        center: Center, path: str) -> None:
    answer = httpx.get(f"{center.url}{path}")
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/center/login?next={path.replace('/', '%2F')}"
    assert "credit-risk" not in answer.text and "roc_auc" not in answer.text


def test_the_api_root_leads_to_the_command_center(center: Center) -> None:
    assert httpx.get(f"{center.url}/").headers["location"] == "/center/"


@pytest.mark.parametrize("path", ["/center/alerts/{alert}/ack", "/center/alerts/{alert}/resolve",
                                  "/center/tasks/{task}/decision", "/center/logout"])
def test_without_a_session_no_action_is_taken(center: Center, path: str) -> None:
    url = path.format(alert=center.alert_id, task=center.task_id)
    answer = httpx.post(f"{center.url}{url}", data={"decision": "approve"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/center/login")
    assert AlertBook(center.registry).get(center.alert_id).status == AlertStatus.OPEN
    assert len(TaskBook(center.registry).decisions(center.task_id)) == 1


# ---- login and the session cookie ----------------------------------------------------------


def test_login_gives_a_strict_http_only_session_and_logout_ends_it(center: Center) -> None:
    client = httpx.Client(base_url=center.url, follow_redirects=False, timeout=30)
    answer = login(client, center.token(RITA), "/center/tasks")
    assert answer.status_code == 303 and answer.headers["location"] == "/center/tasks"
    cookie = next(c for c in answer.headers.get_list("set-cookie")
                  if c.startswith(f"{cc_session.COOKIE}="))
    assert {"HttpOnly", "Path=/center", "SameSite=strict"} <= {
        p.strip() for p in cookie.split(";")}
    shown = client.get("/center/")
    assert shown.status_code == 200 and "Rita Risk" in shown.text
    policy = shown.headers["content-security-policy"]
    for part in ("default-src 'none'", "style-src 'self'", "form-action 'self'",
                 "frame-ancestors 'none'"):
        assert part in policy
    out = client.post("/center/logout", data={"csrf": csrf_of(client)})
    assert out.status_code == 303 and out.headers["location"] == "/center/login"
    assert client.get("/center/").status_code == 303


def test_an_unknown_token_is_refused(center: Center) -> None:
    client = httpx.Client(base_url=center.url, follow_redirects=False)
    answer = login(client, "mlc_" + "x" * 40)
    assert answer.status_code == 401 and "unknown, revoked or malformed" in answer.text
    assert cc_session.COOKIE not in answer.headers.get("set-cookie", "")


def test_a_login_form_from_elsewhere_or_without_its_token_is_refused(center: Center) -> None:
    token = center.token(RITA)
    client = httpx.Client(base_url=center.url, follow_redirects=False)
    for data, headers in [({"token": token}, {}),
                          ({"token": token, "csrf": "f" * 64}, {}),
                          ({"token": token, "csrf": login_csrf(client)},
                           {"Origin": "https://evil.example"})]:
        answer = client.post("/center/login", data=data, headers=headers)
        assert answer.status_code == 403, data
        assert cc_session.COOKIE not in answer.headers.get("set-cookie", "")


def cookie_parts(client: httpx.Client) -> list[str]:
    return str(client.cookies.get(cc_session.COOKIE)).split(".")


def with_cookie(center: Center, value: str) -> httpx.Response:
    return httpx.get(f"{center.url}/center/", cookies={cc_session.COOKIE: value})


def test_forged_tampered_and_expired_cookies_are_refused(center: Center) -> None:
    client = center.client(center.token(ANA))
    good = ".".join(cookie_parts(client))
    assert with_cookie(center, good).status_code == 200
    encoded, expiry, nonce, mac = cookie_parts(client)
    rita = cc_session._b64(RITA)
    key = center.settings.resolved_session_key()
    principal = PrincipalBook(center.registry).get(ANA)
    assert principal is not None
    expired = cc_session.session_cookie(key, principal, time.time() - 2 * 86400)
    for forged in (f"{rita}.{expiry}.{nonce}.{mac}",  # another person, Ana's seal
                   f"{encoded}.{int(expiry) + 86400}.{nonce}.{mac}",  # a longer life
                   f"{encoded}.{expiry}.{nonce}.{'0' * 64}",  # a made-up seal
                   cc_session.session_cookie("not-the-key", principal),  # someone else's key
                   expired, "garbage", "", "a.b.c.d"):
        answer = with_cookie(center, forged)
        assert answer.status_code == 303, forged
        assert "credit-risk" not in answer.text


def test_a_revoked_or_re_enrolled_person_is_logged_out(center: Center) -> None:
    client = center.client(center.token(ANA))
    assert client.get("/center/").status_code == 200
    center.token(ANA)  # enrolled again (the old token leaked): old sessions end
    assert client.get("/center/").status_code == 303
    client = center.client(center.token(ANA))
    assert client.get("/center/").status_code == 200
    PrincipalBook(center.registry).revoke(ANA, "local:test")
    assert client.get("/center/").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/center/",
                                    "/\\evil.example", "\\\\evil.example", "http:evil.example",
                                    "/center/../v1/whoami/../..//evil.example",
                                    "/reports/x", "javascript:alert(1)", "/center/login"])
def test_next_never_leads_off_the_command_center(center: Center, target: str) -> None:
    client = httpx.Client(base_url=center.url, follow_redirects=False)
    answer = login(client, center.token(RITA), target)
    location = answer.headers["location"]
    assert location in ("/center/", target) and location.startswith("/center/"), location
    assert "evil" not in location and ".." not in location


# ---- acting: CSRF, origin, scope -----------------------------------------------------------


def test_a_post_without_or_with_a_wrong_csrf_token_or_from_elsewhere_changes_nothing(
        center: Center) -> None:
    alert = center.new_alert()
    rita = center.client(center.token(RITA))
    other = center.client(center.token(ANA))
    ack = f"/center/alerts/{alert}/ack"
    for data, headers in [({}, {}), ({"csrf": ""}, {}), ({"csrf": csrf_of(other)}, {}),
                          ({"csrf": csrf_of(rita)}, {"Origin": "https://evil.example"}),
                          ({"csrf": csrf_of(rita)}, {"Origin": "null"}),
                          ({"csrf": csrf_of(rita)}, {"Referer": "https://evil.example/x"})]:
        answer = rita.post(ack, data=data, headers=headers)
        assert answer.status_code == 403, (data, headers)
        assert AlertBook(center.registry).get(alert).status == AlertStatus.OPEN
    done = rita.post(ack, data={"csrf": csrf_of(rita)}, headers={"Origin": center.url})
    assert done.status_code == 303 and done.headers["location"] == "/center/alerts"
    acknowledged = AlertBook(center.registry).get(alert)
    assert (acknowledged.status, acknowledged.acknowledged_by) == (AlertStatus.ACKNOWLEDGED,
                                                                   RITA)
    page = rita.get("/center/alerts")
    assert f"Alert {alert} acknowledged" in page.text
    assert f"Alert {alert} acknowledged" not in rita.get("/center/alerts").text  # shown once


def test_a_service_sees_pages_but_may_not_act(center: Center) -> None:
    alert = center.new_alert()
    bot = center.client(center.token(BOT, service=True))
    assert bot.get("/center/").status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', bot.get("/center/").text)[1]  # type: ignore[index]
    for path, data in [(f"/center/alerts/{alert}/ack", {}), (f"/center/alerts/{alert}/resolve", {}),
                       (f"/center/tasks/{center.task_id}/decision", {"decision": "approve"})]:
        answer = bot.post(path, data={"csrf": csrf, **data})
        assert answer.status_code == 403 and "lacks the" in answer.text, path
    assert AlertBook(center.registry).get(alert).status == AlertStatus.OPEN
    assert len(TaskBook(center.registry).decisions(center.task_id)) == 1


def test_resolve_and_snooze_act_as_the_person(center: Center) -> None:
    rita = center.client(center.token(RITA))
    alert = center.new_alert()
    bad = rita.post(f"/center/alerts/{alert}/snooze", data={"csrf": csrf_of(rita),
                                                            "duration": "99y"})
    refused = rita.get("/center/alerts").text  # the field is named in the message
    assert bad.status_code == 303 and "&#39;99y&#39; is not one of" in refused
    rita.post(f"/center/alerts/{alert}/snooze", data={"csrf": csrf_of(rita), "duration": "4h"})
    snoozed: Any = AlertBook(center.registry).get(alert)
    assert snoozed.snoozed_by == RITA and snoozed.snoozed_until is not None
    rita.post(f"/center/alerts/{alert}/resolve", data={"csrf": csrf_of(rita)})
    resolved = AlertBook(center.registry).get(alert)
    assert (resolved.status, resolved.resolved_by) == (AlertStatus.RESOLVED, RITA)


def test_a_decision_that_cannot_be_taken_is_shown_and_changes_nothing(center: Center) -> None:
    rita = center.client(center.token(RITA))
    path = f"/center/tasks/{center.task_id}"
    for decision, said in [("maybe!", "decision: String should match pattern"),
                           ("approve", "has no flow run")]:
        answer = rita.post(f"{path}/decision", data={"csrf": csrf_of(rita, path),
                                                     "decision": decision})
        assert answer.status_code == 303 and answer.headers["location"] == path
        assert said in rita.get(path).text
    assert len(TaskBook(center.registry).decisions(center.task_id)) == 1


# ---- what records say is shown, never run ---------------------------------------------------


def test_names_descriptions_evidence_comments_and_titles_are_escaped(center: Center) -> None:
    rita = center.client(center.token(RITA))
    for path in ("/center/", "/center/models/credit-risk", f"/center/tasks/{center.task_id}",
                 "/center/alerts"):
        shown = rita.get(path)
        assert shown.status_code == 200, path
        assert "<script>" not in shown.text, path
        assert "&lt;script&gt;" in shown.text, path
        assert 'href="javascript:' not in shown.text, path


def test_the_evidence_is_rendered_markdown_without_html_or_script_links(center: Center
                                                                         ) -> None:
    shown = center.client(center.token(RITA)).get(f"/center/tasks/{center.task_id}").text
    evidence = shown.split('<div class="evidence">', 1)[1].split("</section>", 1)[0]
    assert "<table>" in evidence and "<td>roc_auc</td>" in evidence  # as the Prefect form
    assert "<h2>Evidence</h2>" in evidence
    assert "<img" not in evidence and "&lt;img src=x onerror=alert(1)&gt;" in evidence
    assert "javascript:" not in evidence.replace("[click](javascript:alert(1))", "")


def test_the_time_picker_says_what_served_and_names_a_bad_field(center: Center) -> None:
    rita = center.client(center.token(RITA))
    then = rita.get("/center/models/credit-risk", params={"env": "prod",
                                                           "at": "2020-01-01T00:00"})
    assert then.status_code == 200 and "prod served" in then.text and "nothing" in then.text
    for params, field in [({"at": "yesterday"}, "at:"), ({"env": "<b>", "at": "2020-01-01"},
                                                         "env:")]:
        answer = rita.get("/center/models/credit-risk", params=params)
        assert answer.status_code == 400 and field in answer.text and "<b>" not in answer.text


# ---- submitting a package ------------------------------------------------------------------


def test_an_upload_over_the_limit_is_refused_before_it_is_read(center: Center) -> None:
    """A body announced as 513 MB, of which a few bytes are sent: the answer comes at once."""
    rita = center.client(center.token(RITA))
    cookie = f"{cc_session.COOKIE}={rita.cookies.get(cc_session.COOKIE)}"
    port = int(center.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall((f"POST /center/submit HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                      f"Cookie: {cookie}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      f"Content-Length: {513 << 20}\r\n\r\n--b\r\n").encode())
        answer = b""
        while b"</html>" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"over 512 MB" in answer


def test_a_package_uploaded_in_the_browser_is_the_persons_and_errors_name_the_file(
        center: Center, examples_dir: Path, tmp_path: Path) -> None:
    rita = center.client(center.token(RITA))
    csrf = csrf_of(rita, "/center/submit")
    broken = rita.post("/center/submit", data={"csrf": csrf},
                       files={"package": ("p.tar.gz", pack(tmp_path), "application/gzip")})
    assert broken.status_code == 303 and broken.headers["location"] == "/center/submit"
    assert "no model.yaml at the archive" in rita.get("/center/submit").text
    forged = rita.post("/center/submit", data={"csrf": "nope"}, files={
        "package": ("p.tar.gz", pack(examples_dir / "house-prices"), "application/gzip")})
    assert forged.status_code == 403
    assert "house-prices" not in [m.name for m in center.registry.list_models()]
    done = rita.post("/center/submit", data={"csrf": csrf}, files={
        "package": ("p.tar.gz", pack(examples_dir / "house-prices"), "application/gzip")})
    assert done.status_code == 303 and done.headers["location"] == "/center/models/house-prices"
    assert "Registered house-prices:1" in rita.get("/center/models/house-prices").text
    assert center.registry.get_version("house-prices", 1).created_by == RITA


# ---- behind a trusted SSO proxy ------------------------------------------------------------


def test_behind_a_trusted_proxy_the_sso_header_is_the_person_and_forms_still_need_csrf(
        local_settings: MlcSettings, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY))
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    signal = AlertSignal(severity=Severity.CRITICAL, model="credit-risk", source="test",
                         monitor="threshold", title="prod is down")
    alert = AlertBook(registry).raise_alert(signal, [], timedelta(hours=1))[0].id
    api = ApiProcess(local_settings, MLC_POLICY_FILE=str(policy),
                     MLC_TRUSTED_USER_HEADER="X-Forwarded-User",
                     MLC_TRUSTED_PROXIES='["127.0.0.1"]').start()
    try:
        sso = httpx.Client(base_url=api.url, follow_redirects=False,
                           headers={"X-Forwarded-User": "Rita.Risk@Bank.example"})
        shown = sso.get("/center/alerts")
        assert shown.status_code == 200 and "Rita Risk" in shown.text
        stranger = httpx.get(f"{api.url}/center/", headers={"X-Forwarded-User": "mallory"})
        assert stranger.status_code == 401 and "is not a person in the policy" in stranger.text
        assert sso.post(f"/center/alerts/{alert}/ack", data={}).status_code == 403
        assert AlertBook(registry).get(alert).status == AlertStatus.OPEN
        csrf = re.search(r'name="csrf" value="([^"]+)"', shown.text)[1]  # type: ignore[index]
        assert sso.post(f"/center/alerts/{alert}/ack", data={"csrf": csrf}).status_code == 303
        assert AlertBook(registry).get(alert).acknowledged_by == RITA
    finally:
        api.stop()
        registry.close()
