"""`mlc up`: one foreground process that starts, watches and stops everything else."""

from __future__ import annotations

import getpass
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from deployments.reconcile import (
    PrefectRuns,
    scheduled_runs,
    settle_orphaned_runs,
    silence_signal,
)
from deployments.supervision import Backoff, crashed_signal, restartable
from mlc_tasks.alert_records import AlertSignal
from mlc_tasks.errors import MlcError, StartupError
from mlc_tasks.people import PrincipalKind, local_actor
from mlc_tasks.prefect_auth import AUTH_FILE, PrefectAuth
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.resources import Resources
from mlc_tasks.run_health import silenced
from mlc_tasks.settings import MlcSettings

log = logging.getLogger(__name__)
PYTHON = sys.executable
SCHEDULE_CHECK_SECONDS = 60
SCHEDULE_WINDOW = timedelta(minutes=20)
UP_SERVICE = "mlc-up"  # the submitter of `mlc up --submit`


class Supervisor:
    """Child processes in their own sessions, so Ctrl-C reaches only us and we stop each
    child's whole process group — nothing is left running."""

    def __init__(self, settings: MlcSettings) -> None:
        self.settings = settings
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.commands: dict[str, list[str]] = {}
        self.backoff: dict[str, Backoff] = {}
        self.env = os.environ.copy()
        self.env["MLC_HOME"] = str(settings.home.resolve())  # children see this installation
        self.env.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "2")  # triggered runs start sooner
        self.env.setdefault("DO_NOT_TRACK", "1")  # no usage data leaves the machine
        self.logs = settings.home / "logs"
        self.prefect: PrefectRuns | None = None
        self.auth: PrefectAuth | None = None
        self.login = ""

    def run(self, submit_paths: list[Path]) -> int:
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops us as Ctrl-C does
        signal.signal(signal.SIGINT, _interrupt)  # also when started in the background
        try:
            secure_home(self.settings.home)
            ui_url = self.ui_url = self.start_prefect()
            self.env["PREFECT_API_URL"] = self.api_url
            self.prefect = PrefectRuns(self.api_url, self.auth)
            self.settle("its process ended with the previous `mlc up`")
            self.start_runtimes()
            self.start_notifications()
            self.start_api()
            serve = self.spawn("serve", [PYTHON, "-m", "deployments.serve"])
            self.wait_for_triggers(serve)
            self.restart_waiting_runs()
            self.submit(submit_paths)
            self.announce(ui_url)
            return self.watch()
        except KeyboardInterrupt:
            say("\nstopping…")
            return 0
        except MlcError as exc:
            say(f"error: {exc}")
            return 1
        finally:
            self.stop_all()

    def start_prefect(self) -> str:
        external = os.environ.get("PREFECT_API_URL")
        if external:  # the operator's server: PREFECT_API_AUTH_STRING from the environment
            self.api_url = external
            self.auth = PrefectAuth(external)
            wait_healthy(f"{external}/health", "Prefect server", 30)
            return external.removesuffix("/api")
        host, port = self.settings.host, self.settings.prefect_port
        ui_url = f"http://{host}:{port}"
        self.api_url = f"{ui_url}/api"
        if is_healthy(f"{self.api_url}/health"):
            raise StartupError(f"something already answers on {self.api_url}; stop it, or "
                               f"set PREFECT_API_URL={self.api_url} to use it")
        self.env.update(PREFECT_HOME=str(self.settings.home / "prefect"),
                        PREFECT_SERVER_API_HOST=host, PREFECT_SERVER_API_PORT=str(port),
                        PREFECT_UI_API_URL=self.api_url,
                        PREFECT_SERVER_ANALYTICS_ENABLED="false",
                        **self.lock_down(ui_url))
        self.spawn("prefect-server", [PYTHON, "-m", "prefect", "server", "start",
                                      "--host", host, "--port", str(port)])
        wait_healthy(f"{self.api_url}/health", "Prefect server", 120, self.children[-1][1])
        return ui_url

    def lock_down(self, ui_url: str) -> dict[str, str]:
        """Prefect with auth on, CORS only for its own UI and CSRF protection on; every child
        (and our own calls) sends the auth string, Prefect's client fetches CSRF tokens."""
        auth = self.settings.resolved_prefect_auth()
        self.auth = PrefectAuth(self.api_url, auth)
        self.login = ("  (log in with the auth string in MLC_PREFECT_AUTH_STRING)"
                      if self.settings.prefect_auth_string
                      else f"  (log in with the auth string in {self.settings.home / AUTH_FILE})")
        return {"PREFECT_SERVER_API_AUTH_STRING": auth, "PREFECT_API_AUTH_STRING": auth,
                "PREFECT_SERVER_API_CORS_ALLOWED_ORIGINS": ui_url,
                "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
                "PREFECT_CLIENT_CSRF_SUPPORT_ENABLED": "true"}

    def start_runtimes(self) -> None:
        for runtime in self.settings.runtimes:
            # each runtime's own token, created once before the runtime and the flows read it
            self.settings.resolved_runtime_token(runtime.name)
            tags = ",".join(f"{k}={v}" for k, v in runtime.tags.items())
            process = self.spawn(f"runtime-{runtime.name}", [
                PYTHON, "-m", "deployments.cli", "runtime", "start", runtime.name,
                "--tags", tags, "--port", str(runtime.port)])
            url = f"http://{self.settings.host}:{runtime.port}/health"
            wait_healthy(url, f"runtime {runtime.name}", 60, process)

    def start_notifications(self) -> None:
        """The inbound endpoint for signed notifications (Prefect OSS has no webhooks)."""
        self.settings.resolved_notify_secret()  # create the key once, before the server reads it
        process = self.spawn("notifications", [PYTHON, "-m", "deployments.notify_server"])
        wait_healthy(f"http://{self.settings.host}:{self.settings.notify_port}/health",
                     "notification endpoint", 60, process)

    def start_api(self) -> None:
        """The installation's API: commands in any folder find this installation through it,
        and browsers open stored reports from it."""
        process = self.spawn("api", [PYTHON, "-m", "deployments.api"])
        wait_healthy(f"http://{self.settings.host}:{self.settings.api_port}/health",
                     "installation API", 60, process)

    def settle(self, why: str) -> None:
        """Runs of ours that claim to run while no process of ours runs them are crashed with
        the reason, which also frees the concurrency slots they held."""
        if self.prefect is None:
            return
        try:
            settled = settle_orphaned_runs(self.prefect, why)
        except MlcError as exc:
            say(f"warning: runs left running could not be settled: {exc}")
            return
        if settled:
            names = ", ".join(f"{r.name} ({r.deployment}, {r.state_name})" for r in settled)
            say(f"settled {len(settled)} run(s) no process runs any more: {names}")

    def wait_for_triggers(self, serve: subprocess.Popen[bytes], seconds: float = 120) -> None:
        """Submitting before the deployments' triggers exist would lose the events."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if serve.poll() is not None:
                raise StartupError(f"serving the deployments failed; see {self.logs}/serve.log")
            try:
                found = httpx.post(f"{self.api_url}/automations/filter", json={}, timeout=5,
                                   auth=self.auth)
                if found.status_code == 200 and found.json():
                    time.sleep(2)  # let the server's trigger service load them
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise StartupError(f"the deployments' triggers did not appear within {seconds:.0f} s")

    def restart_waiting_runs(self) -> None:
        """Runs that waited on a person died with the last `mlc up`; start them again."""
        done = subprocess.run([PYTHON, "-m", "deployments.recovery"], env=self.env, text=True,
                              capture_output=True)
        restarted = [line for line in done.stderr.splitlines() if "restarted as" in line]
        for line in restarted:
            say(line)
        if done.returncode != 0:
            say(f"restarting waiting runs failed: {done.stderr.strip()[-500:]}")

    def submit(self, paths: list[Path]) -> None:
        """Upload the packages through the control-plane API as the service `mlc-up`, whose
        token is issued afresh for this start by the account that owns the installation."""
        if not paths:
            return
        enrolled = PrincipalBook(Resources(self.settings).registry).enroll(
            UP_SERVICE, PrincipalKind.SERVICE, local_actor(getpass.getuser()))
        env = {**self.env, "MLC_TOKEN": enrolled.token,
               "MLC_API_URL": f"http://{self.settings.host}:{self.settings.api_port}"}
        for path in paths:
            done = subprocess.run([PYTHON, "-m", "deployments.cli", "submit", str(path)],
                                  env=env, text=True, capture_output=True)
            say(done.stdout.strip().splitlines()[0] if done.returncode == 0
                else f"submit {path} failed: {done.stderr.strip()}")

    def announce(self, ui_url: str) -> None:
        runtimes = "\n".join(f"  {r.name:6} http://{self.settings.host}:{r.port}  "
                             f"({','.join(f'{k}={v}' for k, v in r.tags.items())})"
                             for r in self.settings.runtimes)
        notify = f"http://{self.settings.host}:{self.settings.notify_port}/notifications"
        secret = ("MLC_NOTIFY_SECRET" if self.settings.notify_secret
                  else self.settings.home / "notify-secret")
        api = f"http://{self.settings.host}:{self.settings.api_port}"
        prod = f"http://{self.settings.host}:{self.settings.runtimes[-1].port}"
        say(f"""
MLC is up.
  Prefect UI  {ui_url}{self.login}
{runtimes}
  API         {api}  (`mlc` in any terminal finds this installation here)
  Command Center {api}/center/  (log in with a person's token: inventory, tasks, alerts)
  logs        {self.logs}

Next, in another terminal (with .venv/bin on PATH):
  mlc people enroll ID                (as this account) a person's token and authenticator
  export MLC_TOKEN=…                  or `mlc login`: every command acts as the token's holder
  mlc tasks                           approvals and reviews waiting for a person
  mlc approve TASK                    or Approve in the Command Center, or Resume in the
                                      Prefect UI with your one-time code
  mlc versions credit-risk            where each version is in its life cycle
  curl -s -X POST {prod}/models/credit-risk/invocations \\
       -H 'Content-Type: application/json' -d @examples/credit-risk/sample.json
  mlc submit examples/house-prices-v2 a second model beside it in production
  mlc alerts                          what went wrong, and `mlc audit credit-risk`: who did what
  cp examples/new-data/credit-risk.csv examples/daily/credit-risk/
                                      new labelled data: a retraining starts on its own
  mlc retrain credit-risk             or ask for one; `mlc comparisons credit-risk` shows the
                                      champion/challenger decisions
  notifications {notify}  signed with the key in {secret}
{self.policy_note()}Ctrl-C here stops everything.""")

    def policy_note(self) -> str:
        if self.settings.policy_file is not None:
            return ""
        return (f"No policy file (MLC_POLICY_FILE): deny by default. No version can be "
                f"approved, and failed steps wait for the group '{self.settings.admin_group}' "
                "(MLC_ADMIN_GROUP), which has no members.\n")

    def spawn(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        with (self.logs / f"{name}.log").open("ab") as logfile:
            process = subprocess.Popen(command, env=self.env, stdout=logfile,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.children = [(n, p) for n, p in self.children if n != name] + [(name, process)]
        self.commands[name] = command
        self.backoff.setdefault(name, Backoff()).started = time.monotonic()
        return process

    def watch(self) -> int:
        next_check = time.monotonic() + SCHEDULE_CHECK_SECONDS
        while True:
            for name, process in list(self.children):
                if process.poll() is None:
                    continue
                if not restartable(name):
                    say(f"{name} exited with {process.returncode}; see {self.logs}/{name}.log")
                    return 1
                self.bring_back(name, process.returncode)
            if time.monotonic() >= next_check:
                self.check_schedules()
                next_check = time.monotonic() + SCHEDULE_CHECK_SECONDS
            time.sleep(1)

    def bring_back(self, name: str, code: int | None) -> None:
        """A runtime, the notification endpoint or the API died: alert once, restart it after
        its backoff (the rest of the installation keeps going)."""
        backoff, now = self.backoff[name], time.monotonic()
        if backoff.due is None:
            delay = backoff.exited(now)
            say(f"{name} exited with {code}; restarting in {delay:.0f} s "
                f"(see {self.logs}/{name}.log)")
            self.alert(crashed_signal(name, code, delay, f"{self.logs}/{name}.log"))
        elif backoff.ready(now):
            self.spawn(name, self.commands[name])
            backoff.restarted(now)
            say(f"{name} restarted")

    def alert(self, signal_: AlertSignal) -> None:
        """Raise and deliver an alert of the installation itself; never stops `mlc up`."""
        try:
            ctx = Resources(self.settings)
            window = timedelta(minutes=self.settings.alert_suppression_minutes)
            AlertBook(ctx.registry).raise_alert(signal_, ctx.alert_channels_for(signal_),
                                                window)
            ctx.deliver_alerts()
        except MlcError as exc:
            say(f"warning: alert not recorded: {exc}")

    def check_schedules(self) -> None:
        """An alert for each scheduled deployment that has stopped doing its work (its runs
        refused a slot, failing, or not starting): nothing may silence a schedule quietly."""
        assert self.prefect is not None
        try:
            now = datetime.now(UTC)
            quiet = silenced(scheduled_runs(self.prefect, now, SCHEDULE_WINDOW), now)
            if not quiet:
                return
            for silence in quiet:
                say(f"alert: deployment {silence.deployment}: {silence.reason}")
                self.alert(silence_signal(silence, self.ui_url))
        except MlcError as exc:
            say(f"warning: schedules not checked: {exc}")

    def stop_all(self) -> None:
        """Serving first, so its runs end while the Prefect server can still record how; then
        whatever still claims to run is settled; then everything else."""
        serving = [(n, p) for n, p in self.children if n == "serve"]
        self.stop(serving)
        if serving and self.prefect is not None and is_healthy(f"{self.api_url}/health"):
            self.settle("stopped with `mlc up` (Ctrl-C); a waiting task continues when it "
                        "starts again")
        self.stop([(n, p) for n, p in self.children if n != "serve"])

    @staticmethod
    def stop(children: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for _name, process in reversed(children):
            if process.poll() is None:
                _kill_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, process in children:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(process, signal.SIGKILL)
                process.wait()


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass  # already gone


def secure_home(home: Path) -> None:
    """MLC_HOME is this user's alone (0700), and so are its databases, logs and captures
    (0600); what `mlc up` and its children create from now on too (umask 077)."""
    os.umask(0o077)
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    home.chmod(0o700)
    kept = ("registry.db*", "prefect/*.db*", "logs", "logs/*.log", "captures", "captures/**/*")
    for path in (p for pattern in kept for p in home.glob(pattern)):
        if not path.is_symlink():  # chmod would follow it out of home
            path.chmod(0o700 if path.is_dir() else 0o600)


def is_healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def wait_healthy(url: str, what: str, seconds: float,
                 process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if is_healthy(url):
            return
        if process is not None and process.poll() is not None:
            raise StartupError(f"{what} exited with {process.returncode} before {url} "
                               "answered")
        time.sleep(0.5)
    raise StartupError(f"{what} did not answer at {url} within {seconds:.0f} s")


def say(text: str) -> None:
    print(text, flush=True)  # noqa: T201 — `mlc up` talks to the person who started it
