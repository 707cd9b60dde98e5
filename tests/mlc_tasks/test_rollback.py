"""Change management's rules as tables: what a critical breach is, when the policy rolls
back by itself (and when people decide), what it goes back to, and when a replaced champion
is retired."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlc_tasks import rollback
from mlc_tasks.alert_records import Severity
from mlc_tasks.lifecycle import State
from mlc_tasks.policy import RetrainingRule, Threshold
from tests.mlc_tasks.result_records import T0, check, deployment, result, version

RULE = RetrainingRule(auto_rollback=True, grace_period=timedelta(hours=1),
                      critical={"roc_auc": Threshold(min=0.7), "mae": Threshold(max=40)})
CHAMPION_THEN_CHALLENGER = [deployment(1, 1, 0, replaced=30), deployment(2, 2, 30)]
SOON = T0 + timedelta(minutes=40)  # ten minutes after the challenger's promotion


@pytest.mark.parametrize(("metrics", "breached"), [
    ({"roc_auc": 0.8, "mae": 30.0}, []),
    ({"roc_auc": 0.6}, ["roc_auc"]),                 # mae not measured: not a breach of it
    ({"roc_auc": 0.6, "mae": 41.0}, ["mae", "roc_auc"]),
    ({"roc_auc": float("nan")}, ["roc_auc"]),        # a metric that could not be computed
    ({"accuracy": 0.1}, []),                         # not a critical metric
    ({}, []),
])
def test_a_critical_breach_is_a_measured_metric_past_its_critical_bound(
        metrics: dict[str, float], breached: list[str]) -> None:
    found = rollback.critical_breaches(RULE, [result(metrics=metrics)])
    assert [c.metric for c in found] == breached


def test_breaches_are_gathered_over_every_result() -> None:
    found = rollback.critical_breaches(RULE, [result(metrics={"roc_auc": 0.6}),
                                              result("drift", metrics={"mae": 50.0})])
    assert [c.metric for c in found] == ["roc_auc", "mae"]


BREACHED = [result(metrics={"roc_auc": 0.61234})]


@pytest.mark.parametrize(("rule", "results", "history", "now", "rolls_back"), [
    (RULE, BREACHED, CHAMPION_THEN_CHALLENGER, SOON, True),
    (RULE.model_copy(update={"auto_rollback": False}), BREACHED, CHAMPION_THEN_CHALLENGER, SOON,
     False),                                                       # people decide
    (RULE, [result(metrics={"roc_auc": 0.9})], CHAMPION_THEN_CHALLENGER, SOON, False),
    (RULE, BREACHED, CHAMPION_THEN_CHALLENGER, T0 + timedelta(minutes=90), True),  # at the end
    (RULE, BREACHED, CHAMPION_THEN_CHALLENGER, T0 + timedelta(minutes=91), False),  # past it
    (RULE, BREACHED, [deployment(1, 1, 0, replaced=30), deployment(2, 2, 30, replaced=35),
                      deployment(3, 1, 35)], SOON, False),          # no longer in production
    (RULE, BREACHED, [deployment(1, 1, 0, replaced=30), deployment(2, 2, 30, env="qa")], SOON,
     False),                                                       # only in QA
    (RULE, [], CHAMPION_THEN_CHALLENGER, SOON, False),
])
def test_the_policy_rolls_back_by_itself_only_soon_after_a_promotion(
        rule: RetrainingRule, results, history, now, rolls_back: bool) -> None:
    plan = rollback.plan_rollback(rule, version(2), results, history, "prod", now)
    assert (plan is not None) is rolls_back
    if plan is not None:
        assert (plan.serving.id, plan.target.version_number if plan.target else None) == (2, 1)
        assert plan.breach == "roc_auc 0.6123 (critical >= 0.7)"


def test_with_nothing_served_before_the_plan_says_why_there_is_no_target() -> None:
    plan = rollback.plan_rollback(RULE, version(2), BREACHED, [deployment(2, 2, 30)], "prod",
                                  SOON)
    assert plan is not None and plan.target is None
    assert "has served only credit-risk:2; there is no earlier version" in plan.refusal


def test_the_target_is_the_version_served_before_on_that_runtime() -> None:
    history = [deployment(1, 1, 0, replaced=10), deployment(2, 3, 10, replaced=30),
               deployment(3, 2, 30), deployment(4, 1, 0, runtime="prod-b")]
    plan = rollback.plan_rollback(RULE, version(2), BREACHED, history, "prod", SOON)
    assert plan is not None and plan.target is not None
    assert plan.target.version_number == 3


def test_a_missing_value_reads_none_in_the_breach_line() -> None:
    plan = rollback.plan_rollback(RULE, version(2), BREACHED, CHAMPION_THEN_CHALLENGER, "prod",
                                  SOON)
    assert plan is not None
    missing = plan.model_copy(update={"breaches": [check(value=None), check("mae", 41.0, "<=",
                                                                            40)]})
    assert missing.breach == "roc_auc None (critical >= 0.7); mae 41.0 (critical <= 40)"


@pytest.mark.parametrize(("state", "ready"), [
    (State.DEPLOYED, True), (State.RETIRED, False), (State.FAILED, False),
    (State.APPROVED, False), (State.REJECTED, False)])
def test_only_a_champion_kept_for_rollback_goes_back(state: State, ready: bool) -> None:
    assert rollback.ready_to_serve(version(1, state)) is ready


def test_the_rollback_alert_is_critical_and_one_per_rolled_back_version() -> None:
    plan = rollback.plan_rollback(RULE, version(2), BREACHED, CHAMPION_THEN_CHALLENGER, "prod",
                                  SOON)
    assert plan is not None
    signal = rollback.rolled_back_signal(version(2), version(1), plan, RULE.grace_period,
                                         "monitor")
    assert (signal.severity, signal.monitor, signal.window) == (
        Severity.CRITICAL, "auto-rollback", "v2")
    assert signal.title == ("credit-risk:2 rolled back to credit-risk:1: roc_auc 0.6123 "
                            "(critical >= 0.7)")
    assert "promoted 2026-11-25 06:30 UTC, within the grace period of 1:00:00" in signal.detail


GRACE = timedelta(days=7)
REPLACED = [deployment(1, 1, 0, replaced=30), deployment(2, 2, 30)]


@pytest.mark.parametrize(("candidate", "champion", "history", "now", "due"), [
    (version(1), "v2", REPLACED, T0 + GRACE + timedelta(minutes=30), True),   # just passed
    (version(1), "v2", REPLACED, T0 + GRACE + timedelta(minutes=29), False),  # not yet
    (version(1), "v1", REPLACED, T0 + GRACE * 2, False),            # the champion itself
    (version(1, State.RETIRED), "v2", REPLACED, T0 + GRACE * 2, False),
    (version(1), "v2", [deployment(1, 1, 0)], T0 + GRACE * 2, False),  # still serving
    (version(1), None, [deployment(1, 1, 0, env="qa", replaced=30)], T0 + GRACE * 2, False),
    (version(1), None, REPLACED, T0 + GRACE * 2, True),
])
def test_a_replaced_champion_retires_once_its_grace_period_has_passed(
        candidate, champion: str | None, history, now, due: bool) -> None:
    ended = rollback.retirement_due(candidate, champion, history, "prod", GRACE, now)
    assert (ended is not None) is due
    if ended is not None:
        assert ended == T0 + timedelta(minutes=30)
        assert rollback.retirement_reason(ended, GRACE) == (
            "replaced in production on 2026-11-25 06:30 UTC; the grace period of 7 days, "
            "0:00:00 has passed")
