"""The Prefect UI's pause form, filled in headless Chromium (Debian's package, driven by
Playwright through its executable path; Playwright never downloads a browser of its own).
A server with auth on (as `mlc up` starts it) first shows its login page: the person types the
auth string there, as README says."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from typing import Any

import pytest

CHROMIUM = os.environ.get("MLC_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def require_chromium() -> None:
    """Skip without Chromium on a developer machine; in CI (.ci/run installs it) fail."""
    if os.path.exists(CHROMIUM):
        return
    message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _field(dialog: Any, label: str) -> Any:
    # The form's <label for=…> points at no input, so get_by_label() finds nothing: scope by
    # the label's exact text instead ("Comment (Optional)" for fields with defaults).
    return dialog.locator(".schema-form-property").filter(
        has=dialog.page.locator(".schema-form-property__label",
                                has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")))


def open_page(page: Any, page_url: str, auth: str | None, timeout_ms: int = 60_000) -> None:
    """Open `page_url`, logging in first when the server has auth on. Only the UI's start page
    sends a browser without credentials to the login page (a deep link answers "page not
    found"), so log in there, as a person would, then go to the page."""
    from playwright.sync_api import expect

    if auth is not None:
        origin = re.match(r"^https?://[^/]+", page_url)
        assert origin is not None, page_url
        page.goto(origin[0] + "/", wait_until="domcontentloaded")
        password = page.locator("input[type=password]")
        expect(password).to_be_visible(timeout=timeout_ms)
        password.fill(auth)
        page.get_by_role("button", name="Login", exact=True).click()
        expect(password).to_have_count(0, timeout=timeout_ms)
    page.goto(page_url, wait_until="domcontentloaded")  # the page polls: no networkidle


def resume_in_ui(page_url: str, auth: str | None, fields: dict[str, str | Callable[[], str]],
                 choice: tuple[str, str], timeout_ms: int = 60_000) -> dict[str, Any]:
    """Open a paused flow run's page (logging in with `auth`, the server's auth string, when it
    has auth on), press Resume, fill the form and submit it. `choice` is the (label, option) of
    the form's one select (e.g. ("Decision", "approve")); `fields` maps text field labels to
    values. Returns what the browser sent and the server's answer."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_ms)
            open_page(page, page_url, auth, timeout_ms)
            resume = page.get_by_role("button", name="Resume", exact=True)
            expect(resume).to_be_enabled()
            resume.click()
            dialog = page.get_by_role("dialog")
            expect(dialog.get_by_text("Resume Flow Run")).to_be_visible()
            _select(page, dialog, *choice)  # waits for the form: the schema loads after the modal
            description = dialog.inner_text()
            for label, value in fields.items():  # a callable at the last moment (a TOTP code)
                _field(dialog, label).locator("textarea").fill(
                    value() if callable(value) else value)
            with page.expect_response(lambda r: r.request.method == "POST" and re.search(
                    r"/api/flow_runs/[^/]+/resume$", r.url) is not None) as answer:
                dialog.get_by_role("button", name="Submit", exact=True).click()
            response = answer.value
            expect(dialog).to_have_count(0)
            return {"sent": json.loads(response.request.post_data or "null"),
                    "status": response.status, "answer": response.json(),
                    "description": description}
        finally:
            browser.close()


def _select(page: Any, dialog: Any, label: str, option_name: str) -> None:
    """The select is a custom widget: a click inside the modal opens and closes it at once, so
    open it from the keyboard, then click the option."""
    from playwright.sync_api import expect

    control = _field(dialog, label).locator("button.p-select-button__control")
    expect(control).to_be_visible()  # the form renders once its schema has loaded
    option = page.get_by_role("option", name=option_name, exact=True)
    for _ in range(3):
        control.focus()
        page.keyboard.press("ArrowDown")
        try:
            expect(option).to_be_visible(timeout=2_000)
            break
        except AssertionError:
            continue
    option.click()
    expect(control).to_have_text(option_name)


def page_shows(page_url: str, auth: str | None, text: str, timeout_ms: int = 60_000) -> bool:
    """Whether the Prefect UI page at `page_url` shows `text` (e.g. an alert's artifact), after
    logging in with `auth` when the server has auth on."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(timeout_ms)
            open_page(page, page_url, auth, timeout_ms)
            expect(page.get_by_text(text).first).to_be_visible(timeout=timeout_ms)
            return True
        finally:
            browser.close()
