"""Files of an installation are its user's alone: secret files open to anyone else are refused,
`mlc up` keeps MLC_HOME 0700 and its databases, logs and captures 0600, and the Prefect auth
string is generated once (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deployments.up import secure_home
from mlc_tasks.errors import InvalidInputError
from mlc_tasks.prefect_auth import stored_auth
from mlc_tasks.settings import MlcSettings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("name", ["notify-secret", "audit-key", "admin-token", "prefect-auth",
                                  "runtime-token-prod"])
@pytest.mark.parametrize("open_mode", [0o644, 0o640, 0o604, 0o620, 0o602])
def test_a_secret_file_open_to_group_or_others_is_refused_naming_it(
        tmp_path: Path, name: str, open_mode: int) -> None:
    settings = MlcSettings(home=tmp_path / "home")
    settings.home.mkdir()
    path = settings.home / name
    path.write_text("a-secret-someone-else-may-read")
    path.chmod(open_mode)
    resolve = {"notify-secret": settings.resolved_notify_secret,
               "audit-key": settings.resolved_audit_key,
               "admin-token": settings.resolved_admin_token,
               "prefect-auth": settings.resolved_prefect_auth,
               "runtime-token-prod": lambda: settings.resolved_runtime_token("prod")}[name]
    with pytest.raises(InvalidInputError, match=f"secret file {path} is open to group or "
                                                f"others .*chmod 600 {path}"):
        resolve()
    path.chmod(0o600)  # the fix the message names
    assert resolve() == "a-secret-someone-else-may-read"


def test_the_prefect_auth_string_is_generated_once_as_user_password_mode_0600(
        tmp_path: Path) -> None:
    settings = MlcSettings(home=tmp_path / "home")
    auth = settings.resolved_prefect_auth()
    path = settings.home / "prefect-auth"
    user, _, password = auth.partition(":")
    assert (user, len(password) >= 32) == ("mlc", True)
    assert path.read_text() == auth and mode(path) == 0o600 and mode(settings.home) == 0o700
    assert MlcSettings(home=tmp_path / "home").resolved_prefect_auth() == auth
    assert stored_auth(settings.home) == auth
    assert stored_auth(tmp_path / "elsewhere") is None


def test_a_configured_prefect_auth_string_wins_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLC_PREFECT_AUTH_STRING", "ops:configured")
    assert MlcSettings(home=tmp_path / "home").resolved_prefect_auth() == "ops:configured"
    assert not (tmp_path / "home").exists()


def test_mlc_up_makes_home_and_what_it_holds_private(tmp_path: Path) -> None:
    """An installation from before (or made by a command under umask 022) is tightened at the
    start of `mlc up`; a symlink is not followed out of home."""
    home = tmp_path / "home"
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    files = [home / "registry.db", home / "registry.db-wal", home / "logs" / "api.log",
             home / "captures" / "qa" / "credit-risk" / "2026-11-26.csv",
             home / "prefect" / "prefect.db"]
    old = os.umask(0o022)
    try:
        for path in files:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            path.write_text("rows")
        (home / "captures" / "qa" / "link.csv").symlink_to(outside)
        home.chmod(0o755)
        secure_home(home)
        made = home / "logs" / "new.log"
        made.write_text("after")
        (home / "artifacts").mkdir()
    finally:
        assert os.umask(old) == 0o077  # `mlc up` and its children create private files
    assert mode(home) == 0o700
    assert {p.name: mode(p) for p in [*files, made]} == {p.name: 0o600 for p in [*files, made]}
    for folder in (home / "logs", home / "captures" / "qa", home / "artifacts"):
        assert mode(folder) == 0o700, folder
    assert mode(outside) == 0o644
