"""Outbound HTTP policy: which URLs the alert channels may call, checked before connecting.

Rules, in order: the URL has a host and no credentials; its scheme is https (plain http only
when ``allow_http_loopback`` is set and the host resolves to loopback only); its host is in the
allow-list (when one is set); and every address the host resolves to is public. Messages name
the scheme and host only: a webhook URL's path or query may be the secret itself.

Known gap, not closed here — DNS rebinding: ``check_url`` resolves the host, then the HTTP
client resolves it again when it connects. A name server that answers a public address to the
first lookup and a private one to the second gets through. Closing it means connecting to the
checked address (a custom httpcore network backend, and the same for urllib in slack_sdk).
The allow-list narrows the gap to hosts we chose to trust.

Proxies from the environment (HTTPS_PROXY …) are ignored by the clients built here: through a
proxy the address check would not be the address connected to.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from contextvars import ContextVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlc_tasks.errors import DeliveryFailedError, UnsafeUrlError

logger = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundPolicy(BaseModel):
    """Where the alert channels may send requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="exact hosts or parent domains (a subdomain matches); empty: any public host",
    )
    allow_http_loopback: bool = Field(
        default=False, description="tests only: allow http:// and https:// to 127.0.0.1 / ::1"
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _normalise_hosts(cls, hosts: list[str]) -> list[str]:
        return [host.strip().strip(".").lower() for host in hosts if host.strip(" .")]


def check_url(url: str, policy: OutboundPolicy) -> None:
    """Raise UnsafeUrlError unless the policy allows calling ``url``.

    Resolves the host (after the scheme and allow-list checks pass); a name that does not
    resolve raises DeliveryFailedError, since DNS failures are usually passing.
    """
    scheme, host, port = _split(url)
    where = f"{scheme}://[{host}]" if ":" in host else f"{scheme}://{host}"
    if scheme not in ("https", "http"):
        raise UnsafeUrlError(f"refused {where}: only https is allowed")
    if scheme == "http" and not policy.allow_http_loopback:
        raise UnsafeUrlError(f"refused {where}: plain http is not allowed, use https")
    if not host_allowed(host, policy.allowed_hosts):
        raise UnsafeUrlError(f"refused {where}: host is not in the outbound allow-list")
    addresses = _resolve(host, port, where)
    if scheme == "http" and not all(address.is_loopback for address in addresses):
        raise UnsafeUrlError(f"refused {where}: plain http is only allowed to loopback")
    for address in addresses:
        problem = _address_problem(address, policy.allow_http_loopback)
        if problem:
            raise UnsafeUrlError(f"refused {where}: it resolves to a {problem} address")


def outbound_client(policy: OutboundPolicy, timeout: float) -> httpx.Client:
    """An httpx client that checks every request's URL first and never follows redirects.

    httpx logs each request's full URL at INFO; while one of these clients is sending, the
    ``httpx`` logger shows only the scheme and host (the path may be a webhook's secret).
    """

    def check_request(request: httpx.Request) -> None:
        check_url(str(request.url), policy)
        _HIDING_PATHS.set(True)

    def end_hiding(response: httpx.Response) -> None:
        _HIDING_PATHS.set(False)

    httpx_logger = logging.getLogger("httpx")
    if _HIDE_PATHS not in httpx_logger.filters:
        httpx_logger.addFilter(_HIDE_PATHS)
    return httpx.Client(
        follow_redirects=False,
        timeout=timeout,
        trust_env=False,
        event_hooks={"request": [check_request], "response": [end_hiding]},
    )


_HIDING_PATHS: ContextVar[bool] = ContextVar("mlc_outbound_hiding_paths", default=False)


class _HidePaths(logging.Filter):
    """Replaces httpx.URL arguments of httpx's log records by their scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _HIDING_PATHS.get() and isinstance(record.args, tuple):
            record.args = tuple(
                f"{arg.scheme}://{arg.host}/…" if isinstance(arg, httpx.URL) else arg
                for arg in record.args
            )
        return True


_HIDE_PATHS = _HidePaths()


def _split(url: str) -> tuple[str, str, int]:
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except ValueError as exc:
        raise UnsafeUrlError("refused an outbound URL that does not parse") from exc
    if not host:
        raise UnsafeUrlError(f"refused a {scheme or 'scheme-less'} URL without a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrlError(f"refused {scheme}://{host}: credentials in the URL")
    return scheme, host.rstrip("."), port or (443 if scheme == "https" else 80)


def host_allowed(host: str, allowed: list[str]) -> bool:
    """True when the allow-list is empty, lists ``host``, or lists a domain ``host`` is under."""
    if not allowed:
        return True
    return any(host == entry or host.endswith("." + entry) for entry in allowed)


def _resolve(host: str, port: int, where: str) -> list[IpAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryFailedError(f"{where}: the host name did not resolve") from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise DeliveryFailedError(f"{where}: the host name resolved to no address")
    return addresses


def _address_problem(address: IpAddress, allow_loopback: bool) -> str | None:
    """Why an address may not be called, or None when it is public (or allowed loopback)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:  # before the rest: ::1 also counts as reserved and private
        return None if allow_loopback else "loopback"
    checks = (
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-public", not address.is_global),
    )
    return next((name for name, failed in checks if failed), None)
