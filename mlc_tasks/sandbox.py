"""Running code a submitter shipped (a package's metrics function): in a bubblewrap sandbox with
no network, no view of MLC_HOME, the registry, the Prefect database or any secret, an empty
environment, read-only the interpreter and its libraries only, a private /tmp, its own PID
namespace (so nothing it forks outlives it), and limits on CPU time, memory and file size. At
the time limit the whole sandbox is killed.

Without bubblewrap (`apt-get install bubblewrap`), package code is refused unless the operator
sets MLC_ALLOW_UNSANDBOXED_CODE=true, which is logged loudly on every run."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.errors import InvalidPackageError, SandboxUnavailableError

log = logging.getLogger(__name__)


class SandboxLimits(BaseModel):
    """What one run of package code may use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float = Field(default=120.0, gt=0, description="wall-clock limit")
    cpu_seconds: int = Field(default=120, gt=0)
    memory_bytes: int = Field(default=2 << 30, gt=0, description="address space")
    file_bytes: int = Field(default=16 << 20, gt=0, description="largest file it may write")
    allow_unsandboxed: bool = Field(default=False, description="run without bubblewrap")


def bwrap() -> str | None:
    return shutil.which("bwrap")


def readable_roots() -> list[str]:
    """The interpreter's installation and its environment (site-packages): all it reads."""
    roots = {str(Path(sys.base_prefix).resolve()), str(Path(sys.prefix).resolve())}
    return sorted(roots)


def sandbox_env() -> dict[str, str]:
    """The whole environment inside: no secrets; one BLAS thread (threads reserve address
    space the memory limit counts); the host's OpenBLAS core pinning, where it is set."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    return env | {k: os.environ[k] for k in PASSED_THROUGH if k in os.environ}


PASSED_THROUGH = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def sandboxed(argv: list[str], tool: str) -> list[str]:
    """`argv` wrapped in bubblewrap: every namespace new (no network), nothing of the host but
    /usr and the interpreter, read-only."""
    binds = [arg for root in readable_roots() for arg in ("--ro-bind", root, root)]
    env = [arg for name, value in sandbox_env().items() for arg in ("--setenv", name, value)]
    # the private /tmp first: an interpreter installed under /tmp is bound over it, not hidden
    return [tool, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", *env,
            "--tmpfs", "/tmp", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", *binds,
            "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp", *argv]


def run_contained(argv: list[str], stdin: str, limits: SandboxLimits, what: str
                  ) -> subprocess.CompletedProcess[str]:
    """Run `argv` (a Python command line) contained; InvalidPackageError past the time limit,
    SandboxUnavailableError where there is no sandbox and unsandboxed code is not allowed."""
    tool = bwrap()
    if tool is None and not limits.allow_unsandboxed:
        raise SandboxUnavailableError(
            f"{what}: package code runs only in a sandbox and bubblewrap is not installed "
            "(apt-get install bubblewrap); MLC_ALLOW_UNSANDBOXED_CODE=true runs it without one")
    if tool is None:
        log.warning("RUNNING %s WITHOUT A SANDBOX (MLC_ALLOW_UNSANDBOXED_CODE=true): it can "
                    "read and write whatever this process can", what)
    command = sandboxed(argv, tool) if tool else argv
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env=sandbox_env(), cwd="/tmp",
                               preexec_fn=lambda: _limit(limits))
    try:
        out, err = process.communicate(stdin, timeout=limits.seconds)
    except subprocess.TimeoutExpired as exc:
        _kill(process)
        raise InvalidPackageError(f"{what}: did not finish within {limits.seconds:.0f} s"
                                  ) from exc
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _limit(limits: SandboxLimits) -> None:
    """In the child, before bubblewrap starts: limits that everything inside inherits."""
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill(process: subprocess.Popen[str]) -> None:
    """The whole group; bubblewrap's PID namespace takes whatever the code forked with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.communicate()
