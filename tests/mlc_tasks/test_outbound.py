"""Outbound URL policy: refused before any connection, messages without paths or queries."""

from collections.abc import Iterator

import pytest

from mlc_tasks.errors import UnsafeUrlError
from mlc_tasks.outbound import OutboundPolicy, check_url, host_allowed, outbound_client
from tests.receivers import Receiver, Reply, serve

STRICT = OutboundPolicy()
LOOPBACK = OutboundPolicy(allow_http_loopback=True)
SLACK_ONLY = OutboundPolicy(allowed_hosts=["hooks.slack.com"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serve() as running:
        yield running


@pytest.mark.parametrize(
    ("url", "policy", "reason"),
    [
        ("https://10.0.0.1/hook", STRICT, "private"),
        ("https://169.254.169.254/latest/meta-data/", STRICT, "link-local"),
        ("https://192.168.1.1/x", STRICT, "private"),
        ("https://172.16.5.4/x", STRICT, "private"),
        ("https://[::1]/x", STRICT, "loopback"),
        ("https://127.0.0.1:8443/x", STRICT, "loopback"),
        ("https://[fe80::1]/x", STRICT, "link-local"),
        ("https://[fd00::1]/x", STRICT, "private"),
        ("https://[::ffff:10.0.0.1]/x", STRICT, "private"),
        ("https://224.0.0.1/x", STRICT, "multicast"),
        ("https://0.0.0.0/x", STRICT, "unspecified"),
        ("https://240.0.0.1/x", STRICT, "reserved"),
        ("https://100.64.0.1/x", STRICT, "non-public"),
        ("https://2130706433/x", STRICT, "loopback"),  # 127.0.0.1 spelled as one number
        ("http://hooks.slack.com/services/x", STRICT, "plain http is not allowed"),
        ("http://10.0.0.1/x", LOOPBACK, "only allowed to loopback"),
        ("https://10.0.0.1/x", LOOPBACK, "private"),
        ("https://evil.example.org/x", SLACK_ONLY, "not in the outbound allow-list"),
        ("https://hooks.slack.com.evil.org/x", SLACK_ONLY, "not in the outbound allow-list"),
        ("ftp://hooks.slack.com/x", STRICT, "only https"),
        ("https://user:pw@hooks.slack.com/x", STRICT, "credentials in the URL"),
        ("https:///x", STRICT, "without a host"),
        ("https://hooks.slack.com:99999/x", STRICT, "does not parse"),
    ],
)
def test_check_url_refuses(url: str, policy: OutboundPolicy, reason: str) -> None:
    with pytest.raises(UnsafeUrlError, match=reason):
        check_url(url, policy)


def test_refusal_names_scheme_and_host_but_not_path_or_query() -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        check_url("https://10.0.0.1/services/T0/B0/PATHSECRET?token=QUERYSECRET", STRICT)
    assert "https://10.0.0.1" in str(caught.value)
    assert "PATHSECRET" not in str(caught.value)
    assert "QUERYSECRET" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "policy"),
    [
        ("https://93.184.215.14/hook", STRICT),
        ("https://[2606:4700::6810:84e5]/hook", STRICT),
        ("http://127.0.0.1:9/hook", LOOPBACK),
        ("https://[::1]:9/hook", LOOPBACK),
        ("http://localhost:9/hook", LOOPBACK),
        ("https://93.184.215.14/hook", OutboundPolicy(allowed_hosts=["93.184.215.14"])),
    ],
)
def test_check_url_allows(url: str, policy: OutboundPolicy) -> None:
    check_url(url, policy)


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("hooks.slack.com", [], True),
        ("hooks.slack.com", ["hooks.slack.com"], True),
        ("hooks.slack.com", ["slack.com"], True),
        ("a.b.service-now.com", ["service-now.com"], True),
        ("evilslack.com", ["slack.com"], False),
        ("slack.com.evil.org", ["slack.com"], False),
        ("slack.com", ["hooks.slack.com"], False),
    ],
)
def test_host_allowed(host: str, allowed: list[str], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


def test_policy_normalises_the_allow_list() -> None:
    policy = OutboundPolicy(allowed_hosts=[" Hooks.Slack.COM. ", ".service-now.com", ""])
    assert policy.allowed_hosts == ["hooks.slack.com", "service-now.com"]


def test_client_checks_each_request_before_connecting(receiver: Receiver) -> None:
    with outbound_client(STRICT, timeout=2) as client, pytest.raises(UnsafeUrlError):
        client.get(receiver.url + "/anything")
    assert receiver.requests == []


def test_client_does_not_follow_redirects(receiver: Receiver) -> None:
    receiver.script("/start", Reply.redirect(receiver.url + "/target"))
    with outbound_client(LOOPBACK, timeout=2) as client:
        response = client.post(receiver.url + "/start", json={})
    assert response.status_code == 302
    assert [request.path for request in receiver.requests] == ["/start"]
