"""Delivering queued alerts: retry what may pass, with backoff and jitter; keep what still
fails for the next run; record every attempt. A failing channel never raises."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mlc_tasks.alert_records import Alert, DeliveryReport
from mlc_tasks.channels import Channel
from mlc_tasks.errors import PermanentDeliveryError, TransientError, UnsafeUrlError
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.store import utcnow

log = logging.getLogger(__name__)

class RetryPolicy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts_per_run: int = Field(default=4, ge=1, le=20)
    base_delay_seconds: float = Field(default=0.5, ge=0)
    max_delay_seconds: float = Field(default=8.0, ge=0)


def backoff_delays(policy: RetryPolicy, rng: random.Random) -> list[float]:
    """Waits between attempts: exponential, capped, with 'full jitter' in [d/2, d]."""
    delays = []
    for attempt in range(policy.attempts_per_run - 1):
        cap = min(policy.max_delay_seconds, policy.base_delay_seconds * 2**attempt)
        delays.append(rng.uniform(cap / 2, cap))
    return delays


def deliver_pending(
    book: AlertBook,
    channels: Mapping[str, Channel],
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
    now: datetime | None = None,
) -> DeliveryReport:
    """Send every due delivery; what is still failing after this run's budget stays pending."""
    sent = failed = pending = 0
    for delivery_id, channel_name, kind, alert in book.due_deliveries(now or utcnow()):
        channel = channels.get(channel_name)
        if channel is None:
            book.record_attempt(delivery_id, "permanent", f"channel {channel_name} not configured")
            failed += 1
            continue
        outcome = _deliver_one(book, delivery_id, channel, kind, alert, policy, rng, sleep)
        sent += outcome == "sent"
        failed += outcome == "permanent"
        pending += outcome == "transient"
    return DeliveryReport(sent=sent, failed=failed, pending=pending)


def _deliver_one(book: AlertBook, delivery_id: int, channel: Channel, kind: str, alert: Alert,
                 policy: RetryPolicy, rng: random.Random,
                 sleep: Callable[[float], None]) -> str:
    delays = backoff_delays(policy, rng)
    for attempt in range(policy.attempts_per_run):
        try:
            ref = channel.send(alert, kind)  # type: ignore[arg-type]
        except (PermanentDeliveryError, UnsafeUrlError) as exc:  # sending again cannot help
            book.record_attempt(delivery_id, "permanent", str(exc))
            log.warning("alert %d on %s refused, not retried: %s", alert.id, channel.name, exc)
            return "permanent"
        except TransientError as exc:
            book.record_attempt(delivery_id, "transient", str(exc))
            if attempt < len(delays):
                sleep(delays[attempt])
            continue
        book.record_attempt(delivery_id, "sent", None, external_ref=ref)
        return "sent"
    log.warning("alert %d on %s still failing; kept for the next run", alert.id, channel.name)
    return "transient"
