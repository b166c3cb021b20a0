"""The status page in a real browser: its live part says its figures are old once it
stops being replaced.

htmx swaps nothing when a poll fails (the page's process stopped or restarting, a 503
at the connection cap), so the last figures stood as if current: "Treating, 12:00
left" on a kiosk for ever. The page is served by its own uvicorn (no controller: the
live part says so, and is polled all the same); the server is then stopped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.real_server import serving
from web.app import create_app
from web.pages_status import STALE_AFTER_S
from web.settings import WebSettings

from .test_browser_session import LIVE_TRANSIENT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

WAIT_S: Final = 60.0  # only keeps a failing test short; never a figure asserted


def _notice(driver: WebDriver) -> tuple[str, bool]:
    notice = driver.find_element(By.ID, "live-stale")
    return notice.text or notice.get_attribute("textContent") or "", notice.is_displayed()


def _seconds(text: str) -> int:
    """The notice's "These figures are from 19:41:05" as seconds of the day."""
    found = re.search(r"(\d\d):(\d\d):(\d\d)", text)
    assert found is not None, text
    hours, minutes, seconds = (int(part) for part in found.groups())
    return (hours * 60 + minutes) * 60 + seconds


def test_the_live_part_says_its_figures_are_old_once_it_is_not_replaced(
    browser: WebDriver, tmp_path: Path
) -> None:
    (tmp_path / "state").mkdir()
    wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.2, ignored_exceptions=LIVE_TRANSIENT)
    with serving(create_app(WebSettings(tmp_path / "state")), request_timeout_s=15.0) as port:
        browser.get(f"http://127.0.0.1:{port}/")
        first, shown = _notice(browser)
        assert browser.find_element(By.ID, "not-running").is_displayed()
        assert not shown, first
        # Polls replace the live part, and the notice with it: hidden past STALE_AFTER_S
        # from the page's load (told by the server's clock, in the notice's own time)
        wait.until(lambda d: _seconds(_notice(d)[0]) - _seconds(first) > STALE_AFTER_S + 2)
        assert not _notice(browser)[1]
    wait.until(lambda d: _notice(d)[1])  # the page is gone: no poll replaces it any more
    text, _ = _notice(browser)
    assert text.startswith("These figures are from ") and "lost touch with the pad" in text
    dimmed = browser.find_element(By.ID, "not-running").value_of_css_property("opacity")
    assert float(dimmed) < 1
