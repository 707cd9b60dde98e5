"""Where data may lie: every location is under an allowed root once `..` and links are
resolved; other protocols, credentials and query strings never pass; MLC_HOME stays out of
reach of a wider root. Nothing here opens a location or sends a packet (IP literals only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlc_tasks.errors import InvalidInputError, UnsafeLocationError, UnsafeUrlError
from mlc_tasks.locations import (
    LocationPolicy,
    check,
    check_listed,
    form_problem,
    redact,
    watched_root,
)
from mlc_tasks.settings import MlcSettings


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    (tmp_path / "lake" / "credit").mkdir(parents=True)
    return tmp_path / "lake"


@pytest.fixture
def policy(lake: Path, tmp_path: Path) -> LocationPolicy:
    return LocationPolicy(roots=[str(lake), "s3://bucket/labels", str(tmp_path / "home" / "data")],
                          protected=[str(tmp_path / "home")])


def test_locations_under_a_root_are_allowed_and_resolved(policy, lake) -> None:
    assert check(str(lake / "credit"), policy, "data_location").url == str(lake / "credit")
    assert check(f"file://{lake}/credit/../credit/", policy, "f").url == f"file://{lake}/credit"
    assert check(str(lake), policy, "f").protocol == "file"  # the root itself
    dated = check(f"{lake}/credit/date={{date}}/*.csv", policy, "f")
    assert dated.url == f"{lake}/credit/date={{date}}/*.csv"
    assert check("s3://bucket/labels/credit/", policy, "f").url == "s3://bucket/labels/credit"
    assert check("s3a://bucket/labels/x.csv", policy, "f").protocol == "s3"  # an alias


@pytest.mark.parametrize(("location", "reason"), [
    ("webhdfs://127.0.0.1:9998/x", "the webhdfs:// protocol is not allowed"),
    ("memory://x", "the memory:// protocol is not allowed"),
    ("ftp://127.0.0.1/x", "the ftp:// protocol is not allowed"),
    ("zip://model.yaml::file:///etc", "'::' chains"),
    ("simplecache::s3://bucket/labels/x", "'::' chains"),
    ("file:///proc/self/environ", "outside the allowed locations"),
    ("/", "outside the allowed locations"),
    ("/etc/passwd", "outside the allowed locations"),
    ("{lake}/../../etc", "outside the allowed locations"),
    ("{lake}-evil/x", "outside the allowed locations"),  # a prefix, not a folder of the root
    ("../../etc", "not an absolute path"),
    ("file://localhost/etc", "not an absolute path"),  # fsspec reads it relative to the cwd
    ("https://user:hunter2@127.0.0.1/x", "credentials in the URL"),
    ("s3://key:s3cr3t@bucket/labels/x", "credentials in the URL"),
    ("s3://bucket/other/x", "outside the allowed locations"),
    ("s3://bucket/labels-evil/x", "outside the allowed locations"),
    ("s3://bucket/labels/../other", "'.' and '..' segments"),
    ("gs://bucket/labels/x", "outside the allowed locations"),  # s3 listed, not gs
    ("{lake}/credit/x.csv?token=sekrit", "query strings"),
    ("file://{lake}/credit#frag", "query strings"),
    ("https://[::1]/labels/x", "'::' chains"),  # fsspec would split it into a chain
    ("{lake}/credit\x00/x", "control characters"),
    ("", "empty"),
])
def test_bad_locations_are_refused_naming_field_location_and_roots(
        policy, lake, location: str, reason: str) -> None:
    location = location.replace("{lake}", str(lake))
    with pytest.raises(UnsafeLocationError) as info:
        check(location, policy, "data_location")
    message = str(info.value)
    assert message.startswith("data_location: ") and reason in message
    assert f"data may only lie under {lake}, s3://bucket/labels" in message
    for secret in ("hunter2", "s3cr3t", "sekrit"):
        assert secret not in message  # credentials and queries are never echoed
    assert isinstance(info.value, UnsafeUrlError) and isinstance(info.value, InvalidInputError)


def test_a_symbolic_link_out_of_a_root_is_refused(policy, lake, tmp_path) -> None:
    secret = tmp_path / "home" / "admin-token"
    secret.parent.mkdir()
    secret.write_text("t0ken")
    (lake / "credit" / "token.csv").symlink_to(secret)
    (lake / "etc").symlink_to("/etc")
    with pytest.raises(UnsafeLocationError, match="outside the allowed locations"):
        check(str(lake / "etc"), policy, "data_location")
    with pytest.raises(UnsafeLocationError, match="outside the allowed locations"):
        check(str(lake / "credit" / "token.csv"), policy, "data")
    base = check(str(lake / "credit"), policy, "data_location")
    with pytest.raises(UnsafeLocationError, match="outside the allowed locations"):
        check_listed(f"file://{lake}/credit/token.csv", base, policy, "data_location")
    (lake / "elsewhere.csv").write_text("x\n1\n")
    (lake / "credit" / "sideways.csv").symlink_to(lake / "elsewhere.csv")
    with pytest.raises(UnsafeLocationError, match="leads outside"):
        check_listed(f"{lake}/credit/sideways.csv", base, policy, "data_location")


def test_mlc_home_is_readable_only_through_a_root_inside_it(tmp_path) -> None:
    home = tmp_path / "home"
    wide = LocationPolicy(roots=[str(tmp_path), str(home / "data")], protected=[str(home)])
    with pytest.raises(UnsafeLocationError, match="installation's own files"):
        check(str(home / "admin-token"), wide, "data_location")
    with pytest.raises(UnsafeLocationError, match="installation's own files"):
        check(str(home), wide, "data_location")
    assert check(str(home / "data" / "credit"), wide, "data_location")
    assert check(str(tmp_path / "lake"), wide, "data_location")


def test_within_confines_a_file_to_the_models_data_location(policy, lake) -> None:
    location = f"{lake}/credit/date={{date}}/"
    base = watched_root(location)
    assert check(f"{lake}/credit/date=2026-01-01/a.csv", policy, "data", within=base)
    with pytest.raises(UnsafeLocationError, match=f"data: {lake}/other.csv is refused: not "
                                                  f"under {lake}/credit"):
        check(f"{lake}/other.csv", policy, "data", within=base)


def test_http_locations_pass_the_outbound_checks() -> None:
    roots = ["http://127.0.0.1:9/labels", "https://10.1.2.3/labels", "https://127.0.0.2/labels"]
    strict = LocationPolicy(roots=roots)
    with pytest.raises(UnsafeLocationError, match="plain http is not allowed"):
        check("http://127.0.0.1:9/labels/a.csv", strict, "data")
    with pytest.raises(UnsafeLocationError, match="private address"):
        check("https://10.1.2.3/labels/a.csv", strict, "data")
    with pytest.raises(UnsafeLocationError, match="loopback address"):
        check("https://127.0.0.2/labels/a.csv", strict, "data")
    with pytest.raises(UnsafeLocationError, match="'.' and '..' segments"):
        check("https://10.1.2.3/labels/%2e%2e/admin", strict, "data")
    loopback = LocationPolicy(roots=roots, allow_http_loopback=True)
    assert check("http://127.0.0.1:9/labels/a.csv", loopback, "data").protocol == "http"
    with pytest.raises(UnsafeLocationError, match="outside the allowed locations"):
        check("http://127.0.0.1:9/admin", loopback, "data")
    with pytest.raises(UnsafeLocationError, match="outside the allowed locations"):
        check("https://127.0.0.1:9/labels/a.csv", loopback, "data")  # https: another root


@pytest.mark.parametrize(("root", "reason"), [
    ("/", "the whole filesystem"), ("data", "not an absolute path"),
    ("memory://", "memory:// protocol"), ("s3://k:s@bucket", "credentials")])
def test_a_bad_root_is_refused(root: str, reason: str) -> None:
    with pytest.raises(UnsafeLocationError, match=reason):
        LocationPolicy(roots=[root])


def test_the_settings_give_home_data_the_artifact_store_and_the_listed_roots(
        tmp_path, monkeypatch) -> None:
    settings = MlcSettings(home=tmp_path / "home", data_roots=["s3://bucket/labels"])
    policy = LocationPolicy.from_settings(settings)
    assert policy.roots == [str(tmp_path / "home" / "data"), str(tmp_path / "home" / "artifacts"),
                            "s3://bucket/labels"]
    assert policy.protected == [str(tmp_path / "home"), str(tmp_path / "home" / "registry.db")]
    monkeypatch.setenv("MLC_DATA_ROOTS", '["/srv/labels"]')
    assert MlcSettings().data_roots == ["/srv/labels"]


def test_redact_and_form_problem_never_show_secrets() -> None:
    assert redact("https://u:p@host/x.csv?sig=1#f") == "https://***@host/x.csv"
    assert redact("s3://k:s@bucket/x") == "s3://***@bucket/x"
    assert redact("/data/\x1b[31mx") == "/data/?[31mx"
    assert form_problem("/data/x.csv") is None
    assert form_problem("https://host/x?sig=1") and form_problem("webhdfs://h/x")


def test_relative_settings_are_relative_to_the_working_directory(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    policy = LocationPolicy.from_settings(MlcSettings(home=Path("home"), data_roots=["lake"]))
    assert policy.roots == [str(tmp_path / "home" / "data"), str(tmp_path / "home" / "artifacts"),
                            str(tmp_path / "lake")]
    with pytest.raises(UnsafeLocationError, match="data root : empty"):
        LocationPolicy.from_settings(MlcSettings(home=tmp_path, data_roots=[""]))
