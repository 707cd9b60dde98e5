"""The resources a process works with — settings, registry, artifact store, runtime clients,
alert channels, policy — built once per run and passed down (Dagster's resources). A test
swaps a part through the constructor (an in-memory store, a loopback channel) and puts the
whole in place with `using`; a flow reads the run's with `resources()`."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

import httpx
from pydantic import SecretStr

from mlc_tasks import runtimes
from mlc_tasks.alert_records import AlertSignal, DeliveryReport
from mlc_tasks.alerting import RetryPolicy, deliver_pending
from mlc_tasks.artifacts import ArtifactStore
from mlc_tasks.channels import (
    BasicAuth,
    Channel,
    OAuthClientCredentials,
    ServiceNowChannel,
    SlackChannel,
    WebhookChannel,
)
from mlc_tasks.errors import NotFoundError, RuntimeSelectionError, TransientError
from mlc_tasks.outbound import OutboundPolicy
from mlc_tasks.policy import Policy, load_policy, route_alert
from mlc_tasks.registry import Registry, RuntimeRecord
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.store import utcnow
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.runtimes import RuntimeClient
from mlc_tasks.settings import MlcSettings
from mlc_tasks.slack_app import SlackApp, SlackAppChannel, TaskView

log = logging.getLogger(__name__)


class Resources:
    """Everything a process needs, each part built on first use from settings (or given)."""

    def __init__(self, settings: MlcSettings | None = None, *, registry: Registry | None = None,
                 store: ArtifactStore | None = None, channels: dict[str, Channel] | None = None,
                 policy: Policy | None = None) -> None:
        self.settings = settings or MlcSettings()
        self._registry = registry
        self._store = store
        self._channels = channels
        self._policy = policy
        self._policy_read: tuple[tuple[int, int, int], Policy] | None = None

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(self.settings.registry_url(),
                                      audit_key=self.settings.resolved_audit_key())
        return self._registry

    def store(self) -> ArtifactStore:
        if self._store is None:
            self._store = ArtifactStore(self.settings.artifact_url())
        return self._store

    def runtime_client(self, runtime: RuntimeRecord | str) -> RuntimeClient:
        """A client holding that runtime's own admin token; given a URL, the runtime registered
        (pinned) at it."""
        record = runtime if isinstance(runtime, RuntimeRecord) else self._runtime_at(runtime)
        return RuntimeClient(record.url, self.settings.resolved_runtime_token(record.name),
                             timeout=self.settings.request_timeout_seconds)

    def _runtime_at(self, url: str) -> RuntimeRecord:
        found = [r for r in self.registry.list_runtimes()
                 if r.url.rstrip("/") == url.rstrip("/")]
        if len(found) != 1:
            names = ", ".join(r.name for r in found) or "none"
            raise RuntimeSelectionError(f"runtimes registered at {url}: {names}; name one")
        return found[0]

    def choose_runtime(self, tags: dict[str, str], model: str = "") -> RuntimeRecord:
        """The live runtime whose tags include all of `tags` for `model`: the one serving it
        already, else the one with the most room."""
        live = runtimes.live_runtimes(self.registry.list_runtimes(), utcnow(),
                                      self.settings.runtime_silence_seconds)
        served: dict[str, set[str]] = {}
        for deployment in self.registry.served_on():
            served.setdefault(deployment.runtime, set()).add(deployment.model)
        return runtimes.select_runtime(live, tags, model, served)

    def channels(self) -> dict[str, Channel]:
        """The alert channels whose settings (or Prefect Secret blocks) are present."""
        if self._channels is None:
            self._channels = alert_channels(self.settings, self.secret, lambda: self.registry)
        return self._channels

    def policy(self) -> Policy:
        """The policy file, read again only when it changed: a run waiting days for a person
        decides on today's policy (who is in a group now), without re-reading it each time."""
        if self._policy is not None:
            return self._policy
        path = self.settings.policy_file
        stamp = file_stamp(path)
        if self._policy_read is None or self._policy_read[0] != stamp or stamp[0] < 0:
            self._policy_read = (stamp, load_policy(path))
        return self._policy_read[1]

    def alert_channels_for(self, signal: AlertSignal) -> list[str]:
        """The configured channels the policy routes this alert to."""
        try:
            model = self.registry.get_model(signal.model)
            model_type, team = model.type, model.tags.get("team")
        except NotFoundError:
            model_type = team = None
        configured = list(self.channels())
        routed = route_alert(self.policy().alerts, signal.severity, model_type, team, configured)
        missing = [c for c in routed if c not in configured]
        if missing:
            log.warning("policy routes alerts to %s, which are not configured", missing)
        return [c for c in routed if c in configured]

    def deliver_alerts(self) -> DeliveryReport:
        """Send pending alert notifications; never raises for a failing channel."""
        s = self.settings
        policy = RetryPolicy(attempts_per_run=s.alert_attempts_per_run,
                             base_delay_seconds=s.alert_base_delay_seconds)
        try:
            channels = self.channels()
        except TransientError as exc:  # keep everything pending for the next run
            log.warning("alerts not delivered this time: %s", exc)
            return DeliveryReport()
        return deliver_pending(AlertBook(self.registry), channels, policy,
                               random.Random(s.alert_seed))

    def secret(self, value: SecretStr | None, block: str) -> SecretStr | None:
        """A secret from settings, else from the Prefect Secret block of that name (only when a
        Prefect server is configured; a missing block means the channel is off)."""
        if value is not None or not os.environ.get("PREFECT_API_URL"):
            return value
        from prefect.blocks.system import Secret

        try:
            return SecretStr(str(Secret.load(block).get()))
        except ValueError:  # no such block
            return None
        except httpx.HTTPError as exc:
            raise TransientError(f"Prefect server unreachable for secret {block}: {exc}") from exc

    def prefect_api_url(self) -> str:
        """The Prefect server `mlc up` started (or PREFECT_API_URL, or the test server in
        effect); never a throwaway ephemeral server, which would not know our runs."""
        from prefect.settings import PREFECT_API_URL

        return str(PREFECT_API_URL.value() or self.settings.prefect_api_url())


_given: ContextVar[Resources | None] = ContextVar("mlc_resources", default=None)
_per_run: dict[str, Resources] = {}
RACY_NS = 2_000_000_000
RUNS_KEPT = 16  # one process may run many flows (tests, a task worker): keep the latest


def resources() -> Resources:
    """The resources in effect: those put in place with `using`, else the ones of this flow
    run (its root run, so a subflow shares them), built on first use; outside a run, new."""
    given = _given.get()
    if given is not None:
        return given
    from prefect import runtime

    run = runtime.flow_run.root_flow_run_id or runtime.flow_run.id
    if not run:
        return Resources()
    found = _per_run.get(run)
    if found is None:
        while len(_per_run) >= RUNS_KEPT:
            _per_run.pop(next(iter(_per_run)), None)
        # two tasks of one run asking at once both get the one stored first (parts are lazy,
        # so building a spare costs nothing)
        found = _per_run.setdefault(run, Resources())
    return found


@contextmanager
def using(given: Resources) -> Iterator[Resources]:
    """Every flow and step run inside uses `given` (a test's in-memory store, a loopback
    channel, a fixed policy)."""
    token = _given.set(given)
    try:
        yield given
    finally:
        _given.reset(token)


def file_stamp(path: Path | None) -> tuple[int, int, int]:
    """What tells a changed file from the one read before: inode, size and mtime. A file
    changed in the last two seconds gets no stamp (as git's "racy" check: mtimes are coarse,
    so a second write of the same size within one tick would look unchanged)."""
    if path is None:
        return (0, 0, 0)
    try:
        found = Path(path).stat()
    except OSError:
        return (-1, -1, -1)  # load_policy says what is wrong with it
    if time.time_ns() - found.st_mtime_ns < RACY_NS:
        return (-1, -1, -1)
    return (found.st_ino, found.st_size, found.st_mtime_ns)


SecretSource = Callable[[SecretStr | None, str], SecretStr | None]


def alert_channels(settings: MlcSettings, secret: SecretSource,
                   registry: Callable[[], Registry] | None = None) -> dict[str, Channel]:
    """Each channel that is configured: Slack (the app with buttons when its bot token and
    channel are set, else the incoming webhook), ServiceNow, a generic webhook. The Slack app
    finds its earlier messages and the tasks it shows in `registry`."""
    policy = outbound_policy(settings)
    timeout = settings.request_timeout_seconds
    found: dict[str, Channel] = {}
    app = slack_app(settings, secret)
    if app is not None and settings.slack_channel and registry is not None:
        found["slack"] = slack_app_channel(settings, app, registry)
    elif (slack := secret(settings.slack_webhook_url, "mlc-slack-webhook-url")) is not None:
        found["slack"] = SlackChannel(slack, policy, timeout)
    auth = servicenow_auth(settings, secret) if settings.servicenow_url else None
    if settings.servicenow_url and auth is not None:
        found["servicenow"] = ServiceNowChannel(settings.servicenow_url, auth, policy, timeout)
    if settings.webhook_url:
        hook_secret = secret(settings.webhook_secret, "mlc-webhook-secret")
        if hook_secret is not None:
            found["webhook"] = WebhookChannel(settings.webhook_url, hook_secret, policy, timeout)
    return found


def outbound_policy(settings: MlcSettings) -> OutboundPolicy:
    return OutboundPolicy(allowed_hosts=settings.outbound_allowed_hosts,
                          allow_http_loopback=settings.allow_http_loopback)


def slack_app(settings: MlcSettings, secret: SecretSource) -> SlackApp | None:
    """The Slack app's Web API client, when its bot token is set (or a Secret block)."""
    token = secret(settings.slack_bot_token, "mlc-slack-bot-token")
    if token is None:
        return None
    return SlackApp(token, settings.slack_api_url, outbound_policy(settings),
                    settings.request_timeout_seconds)


def slack_app_channel(settings: MlcSettings, app: SlackApp,
                      registry: Callable[[], Registry]) -> SlackAppChannel:
    def message_ref(alert_id: int) -> str | None:
        sent = [d.external_ref for d in AlertBook(registry()).deliveries(alert_id)
                if d.channel == app.name and d.status == "sent" and d.external_ref]
        return sent[0] if sent else None

    def task_view(task_id: int) -> TaskView | None:
        book = TaskBook(registry())
        try:
            return book.get(task_id), book.decisions(task_id)
        except NotFoundError:
            return None

    assert settings.slack_channel is not None
    return SlackAppChannel(app, settings.slack_channel, settings.browser_url(), message_ref,
                           task_view)


def servicenow_auth(settings: MlcSettings, secret: SecretSource
                    ) -> BasicAuth | OAuthClientCredentials | None:
    if settings.servicenow_client_id:
        client_secret = secret(settings.servicenow_client_secret, "mlc-servicenow-client-secret")
        if client_secret is not None:
            return OAuthClientCredentials(client_id=settings.servicenow_client_id,
                                          client_secret=client_secret)
    if settings.servicenow_user:
        password = secret(settings.servicenow_password, "mlc-servicenow-password")
        if password is not None:
            return BasicAuth(user=settings.servicenow_user, password=password)
    return None
