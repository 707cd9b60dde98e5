"""A package's own metrics function runs contained (bubblewrap): errors name it, and what a
submitter's code tries — secrets, the registry, the network, files outside, a process that
outlives its limit, more memory than allowed — is refused or dies with the sandbox."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlc_tasks import sandbox
from mlc_tasks.errors import InvalidPackageError, SandboxUnavailableError
from mlc_tasks.package_metrics import PackageCode, run_metrics_function
from mlc_tasks.sandbox import SandboxLimits

STANDARD = {"accuracy", "roc_auc"}
CODE = """
def business(y_true, y_pred, y_score):
    return {"hits": sum(t == p for t, p in zip(y_true, y_pred)), "top": max(y_score)}
"""


@pytest.fixture(autouse=True)
def needs_bubblewrap() -> None:
    """CI installs bubblewrap (.ci/run); a developer machine without it skips these."""
    if sandbox.bwrap() is None:
        if os.environ.get("CI"):
            pytest.fail("bubblewrap missing: apt-get install bubblewrap")
        pytest.skip("bubblewrap not installed")


def run(code: str, reference: str = "m.py:business", **limits: object) -> dict[str, float]:
    package = PackageCode(reference=reference, source=code,
                          limits=SandboxLimits(**limits))  # type: ignore[arg-type]
    return run_metrics_function(package, [1, 0, 1], [1, 1, 1], [0.9, 0.6, 0.8], STANDARD)


def probe(body: str, **limits: object) -> dict[str, float]:
    """Run `body` (indented into the function) and return what it reports as metrics."""
    code = "import os, socket, subprocess, sys, time\ndef business(a, b, c):\n" + "".join(
        f"    {line}\n" for line in body.strip().splitlines())
    return run(code, **limits)


def test_metrics_come_back_as_numbers() -> None:
    assert run(CODE) == {"hits": 2.0, "top": 0.9}


@pytest.mark.parametrize(("code", "reference", "message"), [
    (CODE, "m.py:missing", "m.py defines no function missing"),
    ("def business(a, b, c):\n    return 1 / 0\n", "m.py:business",
     "m.py:business failed: ZeroDivisionError: division by zero"),
    ("def business(a, b, c):\n    return {'roc_auc': 1}\n", "m.py:business",
     "'roc_auc' is a standard metric"),
    ("def business(a, b, c):\n    return {'x': float('nan')}\n", "m.py:business",
     "metric 'x' is nan"),
    ("def business(a, b, c):\n    print('hello')\n    return {'x': 1}\n", "m.py:business",
     "printed something other than its result"),
    (CODE, "m.txt:business", "field 'metrics_function'"),
])
def test_errors_name_the_function(code: str, reference: str, message: str) -> None:
    with pytest.raises(InvalidPackageError, match=message.replace("(", r"\(")):
        run(code, reference)


def test_it_sees_no_secret_file_no_registry_and_no_parent(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    home = Path(__file__).resolve().parents[2] / f".sandbox-probe-{os.getpid()}"  # not /tmp
    home.mkdir()
    try:
        (home / "admin-token").write_text("the-admin-token")
        (home / "registry.db").write_text("the-admin-token in a database")
        monkeypatch.setenv("MLC_ADMIN_TOKEN", "secret-token")
        found = probe(f"""
seen = 0
for path in ({str(home / 'admin-token')!r}, {str(home / 'registry.db')!r},
             '/proc/{os.getpid()}/environ', '/proc/1/environ', '/proc/self/environ'):
    try:
        text = open(path, errors='replace').read()
        seen += 'the-admin-token' in text or 'secret-token' in text
    except OSError:
        pass
return {{'seen': seen, 'env': len(os.environ.get('MLC_ADMIN_TOKEN', '')),
         'home': os.path.exists({str(home)!r}), 'procs': len([p for p in os.listdir('/proc')
                                                              if p.isdigit()])}}
""")
    finally:
        for file in home.iterdir():
            file.unlink()
        home.rmdir()
    assert found == {"seen": 0, "env": 0, "home": 0, "procs": found["procs"]}
    assert found["procs"] <= 3, "its own PID namespace: no process of ours is visible"


def test_it_has_no_network() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        found = probe(f"""
try:
    socket.create_connection(('127.0.0.1', {port}), timeout=3)
    return {{'connected': 1}}
except OSError:
    return {{'connected': 0}}
""")
    assert found == {"connected": 0.0}


def test_it_cannot_write_outside_its_own_tmp(tmp_path: Path) -> None:
    target = tmp_path / "written-by-package"
    found = probe(f"""
wrote = 0
for path in ({str(target)!r}, {sys.prefix + '/evil'!r}, '/usr/evil', '/tmp/mine'):
    try:
        open(path, 'w').write('x')
        wrote += 1
    except OSError:
        pass
return {{'wrote': wrote}}
""")
    assert found == {"wrote": 1.0}, "only its private /tmp"
    assert not target.exists()


def test_a_forked_process_dies_with_the_sandbox_at_the_time_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(InvalidPackageError, match="did not finish within 3 s"):
        probe("""
subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True)
os.fork() or time.sleep(600)
time.sleep(600)
""", seconds=3)
    assert time.monotonic() - started < 30
    left = subprocess.run(["pgrep", "-f", "time.sleep(600)"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "nothing it started outlives it"


def test_a_function_that_never_returns_is_stopped() -> None:
    with pytest.raises(InvalidPackageError, match="did not finish within 2 s"):
        run("def business(a, b, c):\n    while True:\n        pass\n", seconds=2)


def test_it_cannot_allocate_past_its_memory_limit() -> None:
    with pytest.raises(InvalidPackageError, match="MemoryError"):
        probe("block = bytearray(8 * 1024 ** 3)\nreturn {'x': len(block)}",
              memory_bytes=1 << 30)


def test_without_bubblewrap_package_code_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(sandbox, "bwrap", lambda: None)
    with pytest.raises(SandboxUnavailableError, match="bubblewrap is not installed"):
        run(CODE)
    assert run(CODE, allow_unsandboxed=True) == {"hits": 2.0, "top": 0.9}
    assert "WITHOUT A SANDBOX" in caplog.text


def test_an_interpreter_under_tmp_is_bound_over_the_private_tmp(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout under /tmp (as CI's may be) keeps its venv visible inside the sandbox."""
    monkeypatch.setattr(sandbox, "readable_roots", lambda: ["/tmp/ci/.venv"])
    argv = sandbox.sandboxed(["python"], "bwrap")
    assert argv.index("--tmpfs") < argv.index("/tmp/ci/.venv")
