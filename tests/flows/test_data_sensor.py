"""data-sensor on a real Prefect server: new labelled files are read once they stop changing,
and each content starts one process, whatever its name and however often the sensor looks."""

from __future__ import annotations

import contextvars
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from flows.data_sensor import data_sensor
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.arrivals import ArrivalBook
from mlc_tasks.registry.tables import ModelRow
from tests.receivers import serve


@pytest.fixture
def sensing(in_prod: tuple[Registry, Path]) -> tuple[Registry, Path]:
    registry, daily = in_prod
    policy = Path(os.environ["MLC_POLICY_FILE"])
    policy.write_text(yaml.safe_dump({"sensor": {"every": "2s", "settle": "1s"}}))
    assert data_sensor() == []  # the first look takes the days already there as known
    return registry, daily


def settled() -> None:
    time.sleep(1.1)  # the policy's quiet period


def test_the_same_file_dropped_twice_starts_one_run(sensing, examples_dir) -> None:
    registry, daily = sensing
    source = examples_dir / "new-data" / "credit-risk.csv"
    shutil.copy(source, daily / "fresh.csv")
    assert data_sensor() == []  # just seen: it may still be being written
    settled()
    started = data_sensor()
    assert started == [(daily / "fresh.csv").resolve().as_uri()]
    arrivals = ArrivalBook(registry).arrivals("credit-risk")
    assert [(a.action, a.emitted_at is not None) for a in arrivals] == [("retrain", True)]

    shutil.copy(source, daily / "again.csv")  # the same content under another name
    assert data_sensor() == []
    settled()
    assert data_sensor() == []
    assert len(ArrivalBook(registry).arrivals("credit-risk")) == 1
    trail = [e for e in registry.audit_events("credit-risk") if e.action == "data.arrived"]
    assert len(trail) == 1 and trail[0].detail["path"].endswith("fresh.csv")


def test_a_file_is_read_only_once_it_has_stopped_changing(sensing, examples_dir) -> None:
    registry, daily = sensing
    lines = (examples_dir / "new-data" / "credit-risk.csv").read_text().splitlines(True)
    growing = daily / "2026-01-02" / "labelled.csv"
    growing.parent.mkdir()
    growing.write_text("".join(lines[:100]))
    assert data_sensor() == []
    settled()
    with growing.open("a") as file:  # still being written when the sensor looks again
        file.write("".join(lines[100:200]))
    assert data_sensor() == []
    settled()
    assert data_sensor() == [growing.resolve().as_uri()]
    arrival = ArrivalBook(registry).arrivals("credit-risk")[0]
    assert arrival.path.endswith("2026-01-02/labelled.csv")


def test_the_policy_can_ask_for_a_backtest_or_nothing(sensing, examples_dir) -> None:
    registry, daily = sensing
    policy = Path(os.environ["MLC_POLICY_FILE"])
    policy.write_text(yaml.safe_dump({"sensor": {"settle": "1s"}, "retraining": [
        {"match": {"model": ["credit-risk"]}, "on_new_data": "backtest"}]}))
    shutil.copy(examples_dir / "new-data" / "credit-risk.csv", daily / "day.csv")
    data_sensor()
    settled()
    assert len(data_sensor()) == 1
    assert [a.action for a in ArrivalBook(registry).arrivals("credit-risk")] == ["backtest"]

    policy.write_text(yaml.safe_dump({"sensor": {"settle": "1s"}, "retraining": [
        {"match": {"model": ["credit-risk"]}, "on_new_data": "nothing"}]}))
    (daily / "other.csv").write_text("income\n1\n")
    data_sensor()
    settled()
    assert data_sensor() == []
    assert len(ArrivalBook(registry).arrivals("credit-risk")) == 1


def test_the_first_file_in_a_location_that_did_not_exist_is_new(in_prod, examples_dir) -> None:
    registry, daily = in_prod
    shutil.rmtree(daily)
    policy = Path(os.environ["MLC_POLICY_FILE"])
    policy.write_text(yaml.safe_dump({"sensor": {"settle": "1s"}}))
    assert data_sensor() == []  # nothing there yet
    daily.mkdir()
    shutil.copy(examples_dir / "new-data" / "credit-risk.csv", daily / "first.csv")
    data_sensor()
    settled()
    assert data_sensor() == [(daily / "first.csv").resolve().as_uri()]


def test_one_run_keeps_looking_and_sees_a_file_dropped_meanwhile(sensing, examples_dir) -> None:
    registry, daily = sensing
    Path(os.environ["MLC_POLICY_FILE"]).write_text(yaml.safe_dump(
        {"sensor": {"every": "1s", "settle": "1s"}}))
    context, found = contextvars.copy_context(), []
    watcher = threading.Thread(target=context.run, args=(
        lambda: found.extend(data_sensor(watch_seconds=6)),))
    watcher.start()
    time.sleep(1.5)  # the run is looking by now
    shutil.copy(examples_dir / "new-data" / "credit-risk.csv", daily / "meanwhile.csv")
    watcher.join(60)
    assert found == [(daily / "meanwhile.csv").resolve().as_uri()]


def test_content_there_at_the_first_look_never_starts_a_run(sensing) -> None:
    """`examples/generate.py` rewrites day files with the same bytes, and people copy them:
    neither is new data."""
    registry, daily = sensing
    known = sorted(daily.rglob("*.csv"))[0]
    data = known.read_bytes()
    known.write_bytes(data)  # rewritten: a new modification time, the same bytes
    os.utime(known, (time.time() + 5, time.time() + 5))
    shutil.copy(known, daily / "copy-of-a-known-day.csv")
    assert data_sensor() == []
    settled()
    assert data_sensor() == []
    assert ArrivalBook(registry).arrivals("credit-risk") == []
    assert not [e for e in registry.audit_events("credit-risk") if e.action == "data.arrived"]

    known.write_bytes(data + data.splitlines(True)[-1])  # one more row: new content
    data_sensor()
    settled()
    assert data_sensor() == [known.resolve().as_uri()]


# ---- containment: a location outside the roots is alerted, never listed -----------------------

def registered_before_the_roots(registry: Registry, model: str, location: str) -> None:
    """What a model registered before locations were confined may carry."""
    with registry.transaction() as session:
        session.execute(update(ModelRow).where(ModelRow.name == model).values(
            data_location=location))


@pytest.mark.parametrize("location", [
    "webhdfs://127.0.0.1:{port}/x", "http://127.0.0.1:{port}/x", "/", "memory://x",
    "file:///proc/self/environ", "https://user:hunter2@127.0.0.1:{port}/x", "{home}",
    "{daily}/../../../.."])
def test_a_location_outside_the_roots_is_alerted_and_never_listed(
        in_prod, local_settings, location: str) -> None:
    registry, daily = in_prod
    with serve() as receiver:  # what an internal service would see of the sensor
        bad = location.format(port=receiver.url.rsplit(":", 1)[1], home=local_settings.home,
                              daily=daily)
        registered_before_the_roots(registry, "credit-risk", bad)
        assert data_sensor() == []
        assert data_sensor() == []  # every look refuses again
        assert receiver.requests == []
    [alert] = [a for a in AlertBook(registry).list(model="credit-risk")
               if a.monitor == "data-sensor"]
    assert alert.title == "credit-risk: data location cannot be listed" and alert.count == 2
    assert "UnsafeLocationError" in alert.detail and "is refused" in alert.detail
    assert "hunter2" not in alert.detail
    assert not ArrivalBook(registry).watched("credit-risk")  # nothing listed, nothing recorded
