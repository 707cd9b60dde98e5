"""daily-backtest on the session's Prefect server: the version in production is tested on a
day's labelled rows; a rerun replaces the day's record; no data and bad data are outcomes a
person can read, never a crash."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from deployments.cli import app
from flows.daily_backtest import daily_backtest
from flows.monitor import monitor
from mlc_tasks.errors import UnsafeLocationError
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.store import utcnow
from tests.flows.test_data_sensor import registered_before_the_roots
from tests.receivers import serve

YESTERDAY = (utcnow().date().toordinal() - 1)


def day(offset: int = 0) -> str:
    from datetime import date

    return date.fromordinal(YESTERDAY - offset).isoformat()


def test_backtest_on_yesterday_and_a_rerun_replaces_it(in_prod, prefect_server) -> None:
    registry, _ = in_prod
    [result] = daily_backtest()  # every model in production, yesterday
    assert (result.kind, result.window, result.outcome, result.passed) == (
        "backtest", day(), "tested", True)
    assert {"roc_auc", "accuracy", "cost_per_applicant"} <= set(result.metrics)
    assert result.dataset_uri.endswith(f"/{day()}/*.csv") and len(result.dataset_sha256) == 64
    daily_backtest("credit-risk", day())
    version = registry.get_version("credit-risk", 1)
    backtests = [r for r in registry.test_results(version.id) if r.kind == "backtest"]
    assert len(backtests) == 1, "a rerun for the same date replaces the record"
    listed = json.loads(CliRunner().invoke(app, ["results", "credit-risk", "--json"]).stdout)
    assert [r["window"] for r in listed if r["kind"] == "backtest"] == [day()]


def test_no_data_is_a_recorded_outcome_and_an_alert(in_prod, prefect_server) -> None:
    registry, _ = in_prod
    [result] = daily_backtest("credit-risk", "2020-02-29")
    assert (result.outcome, result.passed, result.metrics) == ("no data", False, {})
    [alert] = [a for a in AlertBook(registry).list(model="credit-risk") if a.metric == "no-data"]
    assert "no labelled data for 2020-02-29" in alert.title


def test_a_missed_threshold_is_one_alert_while_it_lasts(in_prod, prefect_server,
                                                        monkeypatch, tmp_path) -> None:
    registry, _ = in_prod
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"thresholds": {"classification": {
        "roc_auc": {"min": 0.99}}}}))
    monkeypatch.setenv("MLC_POLICY_FILE", str(strict))
    for offset in (0, 1):
        [result] = daily_backtest("credit-risk", day(offset))
        assert not result.passed
    [alert] = [a for a in AlertBook(registry).list(model="credit-risk") if a.metric == "roc_auc"]
    assert alert.count == 2 and alert.monitor == "backtest"


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["debt_ratio"]), "column 'debt_ratio'"),
    (lambda f: f.rename(columns={"income": "salary"}), "column 'income'"),
    (lambda f: f.assign(age="old"), "column 'age'"),
    (lambda f: f.assign(income=float("nan")), "column 'income'"),
    (lambda f: f.drop(columns=["default"]), "label column 'default' is missing"),
    (lambda f: f.iloc[0:0], "no rows"),
], ids=["missing", "renamed", "dtype", "all-nan", "no-label", "empty"])
def test_bad_labelled_data_names_the_column_and_writes_nothing(
        in_prod, prefect_server, change, message: str) -> None:
    registry, daily = in_prod
    good = pd.read_csv(daily / day() / "labelled.csv")
    bad_day = "2021-03-04"
    (daily / bad_day).mkdir()
    change(good).to_csv(daily / bad_day / "labelled.csv", index=False)
    done = CliRunner().invoke(app, ["backtest", "credit-risk", "--date", bad_day])
    assert done.exit_code == 1, done.output
    assert message in done.output
    version = registry.get_version("credit-risk", 1)
    assert not [r for r in registry.test_results(version.id) if r.window == bad_day]


@pytest.mark.parametrize("location", [
    "webhdfs://127.0.0.1:{port}/x", "/", "memory://x", "file:///proc/self",
    "https://user:hunter2@127.0.0.1:{port}/x", "{home}", "{daily}/../../../.."])
def test_backtest_and_monitor_never_read_a_location_outside_the_roots(
        in_prod, prefect_server, local_settings, location: str) -> None:
    """A model registered before locations were confined: both flows refuse its location at
    the point of use, alert it as bad data, and record no result."""
    registry, daily = in_prod
    with serve() as receiver:
        registered_before_the_roots(registry, "credit-risk", location.format(
            port=receiver.url.rsplit(":", 1)[1], home=local_settings.home, daily=daily))
        assert daily_backtest(None, day()) == [] and monitor(None, day()) == []
        for flow in (daily_backtest, monitor):
            with pytest.raises(UnsafeLocationError, match="^data_location: .* is refused"):
                flow("credit-risk", day())
        assert receiver.requests == []
    alerts = {a.monitor: a for a in AlertBook(registry).list(model="credit-risk")
              if a.metric == "bad-data"}
    assert set(alerts) == {"backtest", "monitor"}
    assert all("is refused" in a.detail and "hunter2" not in a.detail for a in alerts.values())
    version = registry.get_version("credit-risk", 1)
    assert [r.kind for r in registry.test_results(version.id)] == ["test"]  # nothing new
