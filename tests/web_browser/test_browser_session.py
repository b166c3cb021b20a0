"""The caregiver's page in a real browser, on the simulated board at 60×.

A whole evening through the page only: install the built-in prescription with the
upload form (check, then confirm), press Start, watch the live status say treating and
then complete without reloading, and find the session in the history. A reload after
the install and after Start shows the page again without sending anything (each form's
answer came by a redirect). And a bad file:
its problems are shown in the same words as ``nirpad profile check``, and nothing is
installed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final, TypeVar

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from firmware_host.cli import main
from hil.rigs.clinic import reissued_today

from .pad_process import Pad

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

PAGE_WAIT_S: Final = 10.0
# The short copy's 5 min at 60× is 5 s; the margin covers a loaded CI machine.
SESSION_WAIT_S: Final = 60.0
PHONE_WINDOW: Final = (390, 844)  # CSS pixels, a common phone
LIVE_TRANSIENT = (NoSuchElementException, StaleElementReferenceException)
T = TypeVar("T")


def _wait(driver: WebDriver, seconds: float, what: Callable[[WebDriver], T]) -> T:
    """``what`` once it is truthy; an element htmx is swapping out is simply read again."""
    wait = WebDriverWait(driver, seconds, poll_frequency=0.2, ignored_exceptions=LIVE_TRANSIENT)
    return wait.until(what)


def _state(driver: WebDriver) -> str | None:
    """The live status's raw state (``data-state``), re-read each time htmx swaps it."""
    return driver.find_element(By.ID, "state").get_attribute("data-state")


def _wait_state(driver: WebDriver, state: str, seconds: float) -> None:
    """Until the live status says ``state``. A fault on the way fails the test at once, in
    the page's words, rather than as a time-out: a latched fault never clears by itself."""

    def state_or_fault(d: WebDriver) -> str | None:
        seen = _state(d)
        return seen if seen in (state, "fault") else None

    if _wait(driver, seconds, state_or_fault) != state:
        fault = driver.find_element(By.ID, "fault")
        pytest.fail(f"waiting for {state}: fault {fault.get_attribute('data-code')}: {fault.text}")


def _upload_and_check(driver: WebDriver, pad: Pad, rx: Path) -> None:
    driver.get(f"{pad.url}/prescription")
    driver.find_element(By.ID, "file").send_keys(str(rx))
    driver.find_element(By.ID, "check").click()
    _wait(driver, PAGE_WAIT_S, lambda d: d.find_elements(By.CSS_SELECTOR, "#summary, #problems"))


def _message(driver: WebDriver) -> tuple[str, str]:
    """The form's answer: ``#message``'s ``data-status`` and its words."""
    element = _wait(driver, PAGE_WAIT_S, lambda d: d.find_element(By.ID, "message"))
    return element.get_attribute("data-status") or "", element.text


def _reload_says_nothing(driver: WebDriver, page: str) -> None:
    """The answer came by a redirect to ``page``: a reload is a GET of it, with no
    "resubmit the form?" and no message."""
    assert driver.current_url.startswith(page + "?shown="), driver.current_url
    driver.refresh()
    assert driver.current_url.startswith(page + "?shown=")
    assert not driver.find_elements(By.ID, "message")


def _short_copy(folder: Path) -> Path:
    """The built-in prescription as a 5-minute session without a ramp (5 s at 60×): the
    page is under test here, not the ramp, which a loaded machine at 60× can upset."""
    text = reissued_today().decode()  # the pad runs on the real wall clock
    for old, new in (
        ('id = "rls-810-standard"', 'id = "rls-810-browser"'),
        ("duration_min = 30", "duration_min = 5"),
        ("ramp_s = 30", "ramp_s = 0"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    rx = folder / "rls-810-browser.toml"
    rx.write_text(text, encoding="utf-8")
    return rx


def test_install_start_watch_it_complete_and_find_it_in_the_history(
    pad: Pad, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(f"{pad.url}/prescription")
    assert browser.find_element(By.ID, "none-installed").is_displayed()
    _upload_and_check(browser, pad, _short_copy(tmp_path))
    browser.find_element(By.ID, "install").click()
    assert _message(browser)[0] == "ok"
    _reload_says_nothing(browser, f"{pad.url}/prescription")
    assert browser.find_element(By.ID, "installed-id").text == "rls-810-browser"

    browser.get(f"{pad.url}/")
    _wait_state(browser, "ready", PAGE_WAIT_S)
    browser.find_element(By.ID, "start").click()
    assert _message(browser)[0] == "ok"
    _wait_state(browser, "treating", PAGE_WAIT_S)  # the live part, no reload
    assert browser.find_element(By.ID, "progress").is_displayed()
    _reload_says_nothing(browser, f"{pad.url}/")  # a second start would be refused here
    _wait_state(browser, "complete", SESSION_WAIT_S)

    browser.find_element(By.ID, "nav-history").click()
    rows = _wait(browser, PAGE_WAIT_S, lambda d: d.find_elements(By.CSS_SELECTOR, "tr.session"))
    assert len(rows) == 1
    cells = [cell.text for cell in rows[0].find_elements(By.TAG_NAME, "td")]
    assert cells[1] == "rls-810-browser"
    assert cells[-1].startswith("completed")
    assert float(cells[3]) >= float(cells[4]) * 0.95  # given vs planned J/cm²
    assert browser.find_element(By.ID, "chart").is_displayed()

    _assert_fits_a_phone(browser, pad, "/course")  # with its widest part, the weeks' table
    assert browser.find_elements(By.CSS_SELECTOR, "#adherence tr.week")


def test_a_bad_file_shows_the_caregiver_words_and_installs_nothing(
    pad: Pad, browser: WebDriver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hot = tmp_path / "too-strong.toml"
    text = reissued_today().decode()
    hot.write_text(text.replace("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 80"), "utf-8")
    assert main(["profile", "check", str(hot)]) != 0
    head, *problem_lines = capsys.readouterr().err.splitlines()
    assert head == f"nirpad: {hot} cannot be used on this pad:"
    cli_lines = {line.removeprefix("  ") for line in problem_lines}

    _upload_and_check(browser, pad, hot)
    problems = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#problems li")]
    assert problems and set(problems) <= cli_lines
    assert any("45.45 mW/cm²" in problem for problem in problems)
    assert not browser.find_elements(By.ID, "install")

    browser.get(f"{pad.url}/prescription")
    assert browser.find_element(By.ID, "none-installed").is_displayed()


def test_every_page_fits_a_phone_screen_without_sideways_scrolling(
    pad: Pad, browser: WebDriver
) -> None:
    for path in ("/", "/prescription", "/history", "/course"):
        _assert_fits_a_phone(browser, pad, path)


def _assert_fits_a_phone(browser: WebDriver, pad: Pad, path: str) -> None:
    browser.set_window_size(*PHONE_WINDOW)
    browser.get(pad.url + path)
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[1] <= PHONE_WINDOW[0], "the window is not phone-sized"
    assert widths[0] <= widths[1], f"{path} scrolls sideways on a phone: {widths}"
    assert browser.find_element(By.ID, "nav-status").is_displayed()
