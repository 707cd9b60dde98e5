"""Where model data may be read and written: the one place that decides it. Every location a
package, a person, a notification or a listing names is checked here before anything opens it.

A location is an absolute local path (or a file:// URL), an object-store URL (s3, gs, az) or an
http(s) URL. It is allowed when, after `..` and symbolic links are resolved, it lies under one
of the installation's roots (`MlcSettings.allowed_data_roots`: home/data, the artifact store and
MLC_DATA_ROOTS). Object stores and http(s) are allowed only under a root of that protocol; every
other fsspec protocol (webhdfs, ftp, memory, zip, `::` chains …) never. http(s) locations also
pass the alert channels' outbound checks (`outbound.check_url`: no private or loopback address
unless allow_http_loopback). Credentials in a URL are refused, and so are query strings and
fragments: locations are recorded (on the model, in audit rows and arrivals) and what follows
`?` is often a signature. Inside MLC_HOME (admin token, registry, keys) only roots that are
themselves inside it count, whatever wider root covers it.

Known gaps: a check resolves symbolic links, then the reader opens the path again; a link swapped
in between is followed. Whoever can do that can write a data root; listings and day reads check
each file they open, which narrows it to that window. http(s) reads (`filesystem`) follow no
redirects, but the outbound check's DNS-rebinding gap (mlc_tasks/outbound.py) applies to them.
"""

from __future__ import annotations

import os
import re
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import fsspec
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mlc_tasks.errors import MlcError, UnsafeLocationError
from mlc_tasks.outbound import OutboundPolicy, check_url
from mlc_tasks.settings import MlcSettings

# fsspec protocol → the family roots are compared in (aliases of one store are one family)
FAMILIES = {"file": "file", "local": "file", "s3": "s3", "s3a": "s3", "gs": "gs", "gcs": "gs",
            "az": "az", "abfs": "az", "abfss": "az", "http": "http", "https": "https"}
HTTP = ("http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class Location(BaseModel):
    """A checked location: `url` is what to open (symbolic links and `..` resolved)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    protocol: str = Field(description="the family: file, s3, gs, az, http or https")


class _Place(NamedTuple):
    protocol: str
    key: str  # what roots are compared on: a resolved path, bucket/key or host:port/path
    url: str


class LocationPolicy(BaseModel):
    """The roots data may lie under, and what may never be read as data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    roots: list[str] = Field(min_length=1, description="allowed prefixes: folders or URLs")
    protected: list[str] = Field(
        default_factory=list,
        description="local folders and files readable only through a root inside them")
    allow_http_loopback: bool = Field(default=False, description="tests: http to 127.0.0.1")
    _roots: list[_Place] = PrivateAttr(default_factory=list)
    _protected: list[_Place] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        self._roots = [_root(root) for root in self.roots]
        self._protected = [_place(os.path.abspath(path)) for path in self.protected]

    @classmethod
    def from_settings(cls, settings: MlcSettings) -> LocationPolicy:
        url = settings.registry_url()
        registry = [url.removeprefix("sqlite:///")] if url.startswith("sqlite:///") else []
        # a relative home or folder in the settings means relative to where the process runs
        roots = [root if not root or "://" in root else os.path.abspath(root)
                 for root in settings.allowed_data_roots()]
        return cls(roots=roots, protected=[str(settings.home.absolute()), *registry],
                   allow_http_loopback=settings.allow_http_loopback)

    def refusal(self, field: str, location: str, reason: str) -> UnsafeLocationError:
        return UnsafeLocationError(f"{field}: {redact(location)} is refused: {reason}; data may "
                                   f"only lie under {', '.join(self.roots)}")


def installation_policy() -> LocationPolicy:
    """The policy of the installation's settings (what a flow's resources read), for callers that
    were not handed one."""
    return LocationPolicy.from_settings(MlcSettings())


def check(location: str, policy: LocationPolicy, field: str, within: str | None = None
          ) -> Location:
    """The location, if the policy allows it (and it lies under `within`, when given: e.g. the
    model's data location); else UnsafeLocationError naming the field, the location and the
    roots. Nothing is opened; an http(s) host is resolved to check its addresses."""
    place = _confined(location, policy, field)
    if within is not None:
        base = _parse(within, policy, field)
        if not _under(place, base):
            raise policy.refusal(field, location, f"not under {redact(within)}")
    if place.protocol in HTTP:
        outbound = OutboundPolicy(allow_http_loopback=policy.allow_http_loopback)
        try:
            check_url(place.url, outbound)
        except MlcError as exc:
            raise policy.refusal(field, location, str(exc)) from exc
    return Location(url=place.url, protocol=place.protocol)


def check_listed(url: str, base: Location, policy: LocationPolicy, field: str) -> Location:
    """A file a listing or a glob of `base` found, before it is read: still under `base` once
    its links are resolved (base's host was checked when base was)."""
    place = _confined(url, policy, field)
    if not _under(place, _parse(base.url, policy, field)):
        raise policy.refusal(field, url, f"leads outside {base.url}")
    return Location(url=place.url, protocol=place.protocol)


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem and path of a checked location (or a pattern under one); http(s) reads do
    not follow redirects, which would lead past the checks."""
    options = {"allow_redirects": False} if url.split("://", 1)[0].lower() in HTTP else {}
    return fsspec.core.url_to_fs(url, **options)


def read_bytes(location: Location) -> bytes:
    fs, path = filesystem(location.url)
    return bytes(fs.cat_file(path))


def watched_root(location: str) -> str:
    """The folder a data location names: itself, or what precedes its `{date}` placeholder."""
    root = location.split("{date}", 1)[0]
    return root.rsplit("/", 1)[0] if "{date}" in location else root.rstrip("/")


def form_problem(location: str) -> str | None:
    """Why the location is refused whatever the roots (a protocol never allowed, credentials, a
    query string, a relative path), or None; for validating a field before the roots are known.
    """
    try:
        _place(location, resolve=False)
    except ValueError as exc:
        return str(exc)
    return None


def redact(location: str) -> str:
    """The location without credentials, query or fragment, printable: safe to log and show."""
    text = re.split(r"[?#]", location, maxsplit=1)[0]
    scheme = _SCHEME.match(text)
    if scheme:
        netloc, slash, path = text[scheme.end():].partition("/")
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[1]
        text = f"{scheme.group(0)}{netloc}{slash}{path}"
    return "".join(c if c.isprintable() else "?" for c in text)[:500]


def _confined(location: str, policy: LocationPolicy, field: str) -> _Place:
    place = _parse(location, policy, field)
    matching = [root for root in policy._roots if _under(place, root)]
    if not matching:
        raise policy.refusal(field, location, "outside the allowed locations")
    for guarded in policy._protected:
        if _under(place, guarded) and not any(_under(root, guarded) for root in matching):
            raise policy.refusal(field, location, "inside the installation's own files "
                                                  "(MLC_HOME, the registry)")
    return place


def _parse(location: str, policy: LocationPolicy, field: str) -> _Place:
    try:
        return _place(location)
    except ValueError as exc:
        raise policy.refusal(field, location, str(exc)) from None


def _root(root: str) -> _Place:
    try:
        place = _place(root)
    except ValueError as exc:
        raise UnsafeLocationError(f"data root {redact(root)}: {exc}") from None
    if place.protocol == "file" and place.key == "/":
        raise UnsafeLocationError("data root /: the whole filesystem cannot be a data root")
    return place


def _place(location: str, resolve: bool = True) -> _Place:
    """Parse as fsspec would open it (`resolve`: local links and `..` resolved); ValueError
    saying why it cannot be allowed."""
    if not location or any(not c.isprintable() for c in location):
        raise ValueError("empty, or holds control characters")
    if "::" in location or "\\" in location:
        raise ValueError("'::' chains and backslashes are not allowed")
    if "?" in location:  # a query string, or a glob wildcard in a path
        raise ValueError("query strings and fragments are not allowed (they are recorded)")
    scheme = _SCHEME.match(location)
    if scheme is None:
        if "://" in location:
            raise ValueError("not a path or a URL")
        return _local(location, uri=False, resolve=resolve)
    protocol = FAMILIES.get(scheme.group(1).lower())
    if protocol is None:
        raise ValueError(f"the {scheme.group(1)}:// protocol is not allowed")
    rest = location[scheme.end():]
    if "#" in rest:
        raise ValueError("query strings and fragments are not allowed (they are recorded)")
    if protocol == "file":
        return _local(rest, uri=True, resolve=resolve)
    if protocol in HTTP:
        return _web(location, protocol)
    return _bucket(location, rest, protocol)


def _local(path: str, uri: bool, resolve: bool) -> _Place:
    if not path.startswith("/"):
        raise ValueError("not an absolute path")
    real = os.path.realpath(path) if resolve else path  # `..` and every link resolved
    return _Place("file", real, f"file://{real}" if uri else real)


def _bucket(location: str, rest: str, protocol: str) -> _Place:
    bucket = rest.split("/", 1)[0]
    if not bucket or "@" in bucket:
        raise ValueError("credentials in the URL are not allowed" if "@" in bucket
                         else "no bucket")
    _no_dot_segments(rest)
    return _Place(protocol, rest.rstrip("/"), location.rstrip("/"))


def _web(location: str, protocol: str) -> _Place:
    parts = urlsplit(location)
    if "@" in parts.netloc:
        raise ValueError("credentials in the URL are not allowed")
    try:
        port = parts.port or (443 if protocol == "https" else 80)
    except ValueError as exc:
        raise ValueError("the port is not a number") from exc
    if not parts.hostname:
        raise ValueError("no host")
    path = unquote(parts.path)  # a server decodes %2e%2e: so do the checks
    _no_dot_segments(path)
    return _Place(protocol, f"{parts.hostname.rstrip('.')}:{port}{path.rstrip('/')}",
                  location.rstrip("/"))


def _no_dot_segments(path: str) -> None:
    if any(segment in (".", "..") for segment in path.split("/")):
        raise ValueError("'.' and '..' segments are not allowed in a URL")


def _under(place: _Place, root: _Place) -> bool:
    if place.protocol != root.protocol:
        return False
    prefix = root.key.rstrip("/")
    return place.key == root.key or place.key.startswith(prefix + "/")
