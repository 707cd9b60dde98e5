"""Settings, read once at the start of a run (environment prefix MLC_) and passed down."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlc_tasks.errors import InvalidInputError
from mlc_tasks.sandbox import SandboxLimits

RUNTIME_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"  # also names its token file under home


class RuntimeConfig(BaseModel):
    """A runtime that `mlc up` starts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=RUNTIME_NAME)
    tags: dict[str, str]
    port: int = Field(ge=1, le=65535)


DEFAULT_RUNTIMES = [
    RuntimeConfig(name="qa", tags={"env": "qa"}, port=8701),
    RuntimeConfig(name="prod", tags={"env": "prod"}, port=8702),
]


# Reviewed by the maintainers: sklearn's Cython tree holds node arrays and no callables; skops
# leaves it out of its defaults only because it is not a plain Python class.
REVIEWED_TYPES = ("sklearn.tree._tree.Tree",)


class MlcSettings(BaseSettings):
    """Everything configurable; nothing here touches the disk until a method is called."""

    model_config = SettingsConfigDict(env_prefix="MLC_", extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.home() / ".mlc",
        description="Folder for the registry database, artifacts and local state.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the registry; default: SQLite file under home.",
    )
    artifact_store_url: str | None = Field(
        default=None,
        description="fsspec URL of the content-addressed artifact store; default: home/artifacts.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="One bearer token for the admin endpoints of every runtime (then the QA "
                    "token opens production too); unset: each runtime has its own.",
    )
    runtime_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Admin bearer token per runtime name, JSON ({"prod": "..."}); a runtime '
                    "not listed (and no admin_token): one generated for it under home.",
    )
    notify_secret: SecretStr | None = Field(
        default=None,
        description="HMAC key notifications are signed with; default: generated under home.",
    )
    prefect_auth_string: SecretStr | None = Field(
        default=None,
        description="Auth string ('user:password') of the Prefect server `mlc up` starts; "
                    "default: generated once under home (prefect-auth), the UI's login.",
    )
    audit_key: SecretStr | None = Field(
        default=None, min_length=32,
        description="HMAC key the audit log is sealed with (32+ characters; keep it off the "
                    "database host); default: generated once under home (audit-key).",
    )
    decision_key: SecretStr | None = Field(
        default=None, min_length=32,
        description="HMAC key of the decision proofs the control-plane API mints and the "
                    "flows check; default: generated once under home (decision-key).")
    audit_anchor_url: str | None = Field(
        default=None,
        description="fsspec URL of a folder where `mlc audit anchor` writes the log's head, one "
                    "object each (use object-locked storage); default: home/audit-anchors.",
    )
    trusted_types: list[str] = Field(
        default_factory=lambda: list(REVIEWED_TYPES),
        description="Types a person reviewed, trusted in skops artifacts beyond skops' defaults.",
    )
    runtimes: list[RuntimeConfig] = Field(
        default_factory=lambda: list(DEFAULT_RUNTIMES),
        description="Runtimes that `mlc up` starts.",
    )
    host: str = Field(default="127.0.0.1", description="Address servers started by mlc bind to.")
    prefect_port: int = Field(default=4200, description="Port of the Prefect server mlc up starts.")
    notify_port: int = Field(
        default=8710, ge=1, le=65535,
        description="Port of the inbound notification endpoint mlc up starts.")
    api_port: int = Field(
        default=8700, ge=1, le=65535,
        description="Port of the installation's API (`mlc up`): where commands find it, reports.")
    api_url: str | None = Field(
        default=None,
        description="The installation's API the CLI uses; default: http://host:api_port.")
    trusted_user_header: str | None = Field(
        default=None,
        description="Header a single-sign-on proxy sets to the authenticated person's id (e.g. "
                    "X-Forwarded-User); accepted only from trusted_proxies. Unset: off.")
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="IP addresses (a JSON list) whose trusted_user_header the control-plane "
                    "API believes; from any other address the header is refused (401).")
    heartbeat_seconds: float = Field(default=15.0, gt=0, description="Runtime heartbeat period.")
    runtime_silence_seconds: float = Field(
        default=60.0, gt=0, description="A runtime silent this long is not chosen for deploys.")
    request_timeout_seconds: float = Field(default=30.0, gt=0, description="Runtime HTTP timeout.")
    runtime_max_models: int = Field(
        default=200, ge=1,
        description="Most models one runtime serves (each with its current and previous "
                    "version); a deploy of one more is refused and runtime choice skips it.")
    runtime_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, le=64,
        description="Worker processes per runtime, each serving every deployed model "
                    "(default: the machine's cores).")
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1,
        description="Largest scoring request body a runtime reads; beyond: 413.")
    max_rows: int = Field(default=10_000, ge=1,
                          description="Most rows in one scoring request; beyond: 413.")
    capture_max_rows_per_day: int = Field(
        default=100_000, ge=0,
        description="Scoring inputs a runtime keeps per model and UTC day for the drift monitor.")
    capture_max_bytes_per_day: int = Field(
        default=50 * 1024 * 1024, ge=0,
        description="Bytes of scoring inputs a runtime keeps per model and UTC day.")
    deploy_retry_delays: list[float] = Field(
        default_factory=lambda: [2.0, 10.0],
        description="Waits before retrying a deploy to a runtime that did not answer.")

    # ---- alerts (secrets: these settings for local runs, else Prefect Secret blocks named
    # mlc-slack-webhook-url, mlc-slack-bot-token, mlc-slack-signing-secret,
    # mlc-servicenow-password, mlc-servicenow-client-secret,
    # mlc-webhook-secret) ----
    admin_group: str = Field(
        default="mlc-admins",
        description="The policy group of the installation's admins: they review failed steps "
                    "and model changes when the policy names no other group.")
    policy_file: Path | None = Field(
        default=None, description="The policy YAML (alert routing); none: the default policy.")
    alert_suppression_minutes: float = Field(
        default=1440, ge=0, description="A repeat of an open alert is notified once per window.")
    alert_attempts_per_run: int = Field(default=4, ge=1, le=20,
                                        description="Delivery attempts per run before waiting "
                                                    "for the next run.")
    alert_base_delay_seconds: float = Field(default=0.5, ge=0, description="First retry wait.")
    alert_seed: int = Field(default=0, description="Seed of the retry jitter.")
    slack_webhook_url: SecretStr | None = Field(default=None, description="Slack incoming webhook.")
    slack_bot_token: SecretStr | None = Field(
        default=None, description="Slack app bot token (xoxb-…): alerts and tasks are posted "
                                  "with buttons (chat.postMessage) and updated in place.")
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Slack app signing secret: /slack/interactions refuses "
                                  "requests it did not sign.")
    slack_channel: str | None = Field(default=None, pattern=r"^[CGD][A-Z0-9]{2,30}$",
                                      description="Slack channel id the app posts to.")
    slack_api_url: str = Field(default="https://slack.com/api/",
                               description="Slack's Web API (a loopback stand-in in tests).")
    public_url: str | None = Field(
        default=None, description="Where people's browsers reach the control-plane API and "
                                  "Command Center (links in Slack); default: installation_url.")
    servicenow_url: str | None = Field(default=None, description="e.g. https://acme.service-now.com")
    servicenow_user: str | None = Field(default=None, description="Basic auth user.")
    servicenow_password: SecretStr | None = Field(default=None, description="Basic auth password.")
    servicenow_client_id: str | None = Field(default=None, description="OAuth client id.")
    servicenow_client_secret: SecretStr | None = Field(default=None,
                                                       description="OAuth client secret.")
    webhook_url: str | None = Field(default=None, description="Generic JSON webhook.")
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC key of the webhook.")
    outbound_allowed_hosts: list[str] = Field(
        default_factory=lambda: ["hooks.slack.com", "slack.com", "service-now.com"],
        description="Hosts (and their subdomains) alerts may be sent to.")
    allow_http_loopback: bool = Field(
        default=False, description="Allow plain http to 127.0.0.1 (tests and local receivers).")
    data_roots: list[str] = Field(
        default_factory=list,
        description="Where model data may be read and written besides home/data and the "
                    "artifact store: absolute folders, or s3://, gs://, az://, https:// "
                    "prefixes (a JSON list).")

    process_paths: list[Path] | None = Field(
        default=None,
        description="Folders of a team's own processes (modules with a flow and its `process` "
                    "declaration; a JSON list). None: this checkout's processes/ folder. They "
                    "are code the installation runs: only its admins may write them.")

    allow_unsandboxed_code: bool = Field(
        default=False,
        description="Run package code (metrics functions) without bubblewrap; logged loudly.")
    package_code_seconds: float = Field(
        default=300.0, gt=0, description="Wall-clock limit of one run of package code.")
    package_code_memory_mb: int = Field(
        default=2048, ge=64, description="Address-space limit of package code (MB).")

    def sandbox_limits(self) -> SandboxLimits:
        """The limits package code runs under (mlc_tasks/sandbox.py)."""
        return SandboxLimits(seconds=self.package_code_seconds,
                             cpu_seconds=int(self.package_code_seconds),
                             memory_bytes=self.package_code_memory_mb << 20,
                             allow_unsandboxed=self.allow_unsandboxed_code)

    def capture_dir(self) -> Path:
        """Where runtimes keep the scoring inputs they saw (read by the drift monitor)."""
        return self.home / "captures"

    def registry_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'registry.db'}"

    def artifact_url(self) -> str:
        return self.artifact_store_url or str(self.home / "artifacts")

    def process_folders(self) -> list[Path]:
        """Where a team's own processes are (the checkout's processes/ when none is set)."""
        if self.process_paths is not None:
            return list(self.process_paths)
        bundled = Path(__file__).resolve().parent.parent / "processes"
        return [bundled] if bundled.is_dir() else []

    def allowed_data_roots(self) -> list[str]:
        """Every prefix a data location may lie under (mlc_tasks/locations.py)."""
        return [str(self.home / "data"), self.artifact_url(), *self.data_roots]

    def installation_url(self) -> str:
        return (self.api_url or f"http://{self.host}:{self.api_port}").rstrip("/")

    def browser_url(self) -> str:
        """The control-plane API as people's browsers reach it (links in Slack and packets)."""
        return (self.public_url or self.installation_url()).rstrip("/")

    def resolved_slack_signing_secret(self) -> str | None:
        return self.slack_signing_secret.get_secret_value() if self.slack_signing_secret else None

    def resolved_session_key(self) -> str:
        """The key Command Center session cookies are signed with (kept under home)."""
        return self._resolved_secret(None, "session-key")

    def prefect_api_url(self) -> str:
        return f"http://{self.host}:{self.prefect_port}/api"

    def resolved_admin_token(self) -> str:
        """The configured token, or one generated once and kept (mode 0600) under home."""
        return self._resolved_secret(self.admin_token, "admin-token")

    def resolved_runtime_token(self, runtime: str) -> str:
        """One runtime's admin token: configured for it by name, else admin_token when set (it
        opens every runtime), else one generated once for it (mode 0600) under home."""
        if not re.fullmatch(RUNTIME_NAME, runtime):
            raise InvalidInputError(f"runtime name '{runtime}' is not {RUNTIME_NAME}")
        configured = self.runtime_tokens.get(runtime, self.admin_token)
        if configured is not None and not configured.get_secret_value():
            raise InvalidInputError(f"the admin token configured for runtime '{runtime}' is "
                                    "empty")
        return self._resolved_secret(configured, f"runtime-token-{runtime}")

    def resolved_audit_key(self) -> str:
        """The configured audit key, or one generated once and kept (mode 0600) under home;
        every process that writes the registry must resolve the same key."""
        return self._resolved_secret(self.audit_key, "audit-key")

    def resolved_decision_key(self) -> str:
        """The key decision proofs are signed with: only the API and the flows read it."""
        return self._resolved_secret(self.decision_key, "decision-key")

    def anchor_url(self) -> str:
        return self.audit_anchor_url or str(self.home / "audit-anchors")

    def resolved_notify_secret(self) -> str:
        """The configured notification key, or one generated once and kept (mode 0600) under
        home; senders read it from there (or are given it) to sign what they send."""
        return self._resolved_secret(self.notify_secret, "notify-secret")

    def resolved_prefect_auth(self) -> str:
        """The auth string of the Prefect server `mlc up` starts: configured, or generated once
        and kept (mode 0600) under home, where the CLI of the same user finds it."""
        return self._resolved_secret(self.prefect_auth_string, "prefect-auth", prefix="mlc:")

    def _resolved_secret(self, configured: SecretStr | None, name: str, prefix: str = "") -> str:
        if configured is not None:
            return configured.get_secret_value()
        path = self.home / name
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            # Written aside, then linked into place: the file appears whole or not at all, and
            # when two processes start together the first link wins and both read it.
            temp = self.home / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as file:
                file.write(prefix + secrets.token_urlsafe(32))
            try:
                os.link(temp, path)
            except FileExistsError:
                pass
            finally:
                temp.unlink()
        refuse_open_secret(path)
        return path.read_text().strip()


def refuse_open_secret(path: Path) -> None:
    """A key others on the host may read (or replace) is no secret: refuse it."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise InvalidInputError(f"secret file {path} is open to group or others (mode "
                                f"{mode:04o}): make it private with `chmod 600 {path}`")
