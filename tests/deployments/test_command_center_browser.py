"""The Command Center in headless Chromium on a real `mlc up` with the examples: Rita logs in
with her token, sees both example models and the approval waiting for her, approves it there
(the paused flow run takes her decision and production serves the version), acknowledges an
alert, opens a model page with its charts and submits a package. A full-page screenshot of
each page is kept (MLC_SCREENSHOT_DIR, else the test's folder) for people to look at."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from pathlib import Path
from typing import Any

from deployments.api_upload import pack
from mlc_tasks.lifecycle import State
from mlc_tasks.people import PrincipalKind
from mlc_tasks.registry import Registry
from mlc_tasks.registry.alerts import AlertBook
from mlc_tasks.registry.principals import PrincipalBook
from mlc_tasks.registry.tasks import TaskBook
from mlc_tasks.settings import MlcSettings
from mlc_tasks.task_records import TaskStatus
from tests.browser import CHROMIUM, require_chromium
from tests.conftest import REPO, free_port, mlc_env, until
from tests.deployments.test_up import PrefectApi
from tests.deployments.test_up_approval import RITA, Up, waiting

# read at import: the tests' fixtures hide every MLC_ variable from the test itself
SHOTS = os.environ.get("MLC_SCREENSHOT_DIR")


def shoot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"command-center-{name}.png"), full_page=True)


def no_model_yaml() -> bytes:
    """A tar.gz holding only a note: not a package."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        archive.addfile(info, io.BytesIO(b"hello"))
    return buffer.getvalue()


def test_rita_works_in_the_command_center(local_settings: MlcSettings, examples_dir: Path,
                                          tmp_path: Path) -> None:
    require_chromium()
    from playwright.sync_api import expect, sync_playwright

    shots = Path(SHOTS or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    prefect_port = free_port()
    policy = tmp_path / "policy.yaml"
    shutil.copy(REPO / "examples" / "policy.yaml", policy)
    env = mlc_env(local_settings)
    env.pop("PREFECT_API_URL")
    env.update(MLC_PREFECT_PORT=str(prefect_port), MLC_POLICY_FILE=str(policy),
               MLC_RUNTIMES=json.dumps([
                   {"name": "qa", "tags": {"env": "qa"}, "port": free_port()},
                   {"name": "prod", "tags": {"env": "prod"}, "port": free_port()}]))
    center = f"http://127.0.0.1:{env['MLC_API_PORT']}/center"
    api = PrefectApi(prefect_port, local_settings.home)
    registry = Registry(local_settings.registry_url(),
                        audit_key=local_settings.resolved_audit_key())
    (tmp_path / "house-prices-v2.tar.gz").write_bytes(pack(examples_dir / "house-prices-v2"))
    (tmp_path / "broken.tar.gz").write_bytes(no_model_yaml())

    up = Up(env, api, [examples_dir / "credit-risk", examples_dir / "house-prices"])
    try:
        task = waiting(registry, api, seconds=480)  # a loaded machine trains slowly
        alert = until(lambda: next((a for a in AlertBook(registry).list(model="credit-risk")
                                    if a.monitor == "approval"), None), "the approval alert")
        token = PrincipalBook(registry).enroll(RITA, PrincipalKind.PERSON, "local:test").token

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                 args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page(viewport={"width": 1360, "height": 900})
                page.set_default_timeout(90_000)
                problems: list[str] = []  # what the CSP blocked ("Refused to load …")
                page.on("console", lambda m: problems.append(m.text)
                        if m.type == "error" and "Refused" in m.text else None)

                page.goto(f"{center}/tasks")
                expect(page).to_have_url(re.compile(r"/center/login\?next="))
                expect(page.get_by_role("heading", name="Log in")).to_be_visible()
                shoot(page, shots, "login")
                page.get_by_label("API token").fill(token)
                page.get_by_role("button", name="Log in").click()

                expect(page).to_have_url(f"{center}/tasks")  # back where she was going
                expect(page.get_by_text("Rita Risk")).to_be_visible()
                expect(page.get_by_role("link", name="Approval of credit-risk:1")).to_be_visible()
                shoot(page, shots, "tasks")

                page.get_by_role("link", name="Inventory", exact=True).click()
                expect(page.get_by_role("link", name="credit-risk", exact=True)).to_be_visible()
                expect(page.get_by_role("link", name="house-prices", exact=True)).to_be_visible()
                expect(page.get_by_text("1 task").first).to_be_visible()
                shoot(page, shots, "inventory")

                # the approval's alert first: approving resolves it
                page.get_by_role("link", name="Alerts", exact=True).click()
                row = page.locator("tr", has_text=alert.title)
                expect(row).to_be_visible()
                shoot(page, shots, "alerts")
                row.get_by_role("button", name="Acknowledge").click()
                expect(page.get_by_role("status")).to_contain_text(f"Alert {alert.id} acknowledged")

                page.goto(f"{center}/tasks/{task.id}")
                expect(page.locator("div.evidence table")).to_contain_text("roc_auc")
                shoot(page, shots, "task")
                page.get_by_label("Comment").fill("evidence reviewed in the Command Center")
                page.get_by_role("button", name="Approve").click()
                expect(page.get_by_role("status")).to_contain_text("is recorded")
                expect(page.locator(".badge.pass", has_text="accepted")).to_be_visible()
                shoot(page, shots, "task-approved")


                until(lambda: registry.get_version("credit-risk", 1).state == State.DEPLOYED,
                      "credit-risk:1 deployed")
                page.goto(f"{center}/models/credit-risk")
                expect(page.locator("svg.chart").first).to_be_visible()
                expect(page.get_by_text("chain verified")).to_be_visible()
                expect(page.locator(".badge.runtime", has_text="prod")).to_be_visible()
                shoot(page, shots, "model")

                page.get_by_role("link", name="Submit", exact=True).click()
                page.get_by_label("Package (.tar.gz)").set_input_files(
                    str(tmp_path / "broken.tar.gz"))
                page.get_by_role("button", name="Submit", exact=True).click()
                expect(page.get_by_role("status")).to_contain_text("no model.yaml")
                page.get_by_label("Package (.tar.gz)").set_input_files(
                    str(tmp_path / "house-prices-v2.tar.gz"))
                shoot(page, shots, "submit")
                page.get_by_role("button", name="Submit", exact=True).click()
                expect(page.get_by_role("status")).to_contain_text("Registered house-prices:2")
                assert problems == [], problems
            finally:
                browser.close()
    finally:
        up.stop()

    made = TaskBook(registry).decisions(task.id)
    assert [(d.actor, d.accepted, d.via) for d in made] == [(RITA, True, "command-center")]
    assert TaskBook(registry).get(task.id).status == TaskStatus.APPROVED
    assert AlertBook(registry).get(alert.id).acknowledged_by == RITA
    assert registry.get_version("house-prices", 2).created_by == RITA
    registry.close()
