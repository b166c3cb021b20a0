"""Fixtures for the browser tests: Debian's chromium, driven by selenium, against a pad.

Owns: the browser fixture (where ``chromium`` or ``chromedriver`` is missing the tests
skip and say how to install them, except under CI (``CI=true``), where they fail), the
pad fixture (``nirpad run --sim --time-scale 60`` and ``nirpad web`` on a temporary
state directory, pad_process.py), and, when a test fails, a screenshot and the HTML of
the page it was on and of every page of the site, with the last lines of both
processes' logs, in ``build/browser-failures/<test>/``.

The pad needs the browser, so chromium is started first, whatever order a test names
them in. Its start-up is the heaviest moment of a test (several processes, seconds of
CPU); a simulated board starved of CPU then falls silent, which the controller rightly
latches as ``telemetry_stale``, so the board must not be running yet. Selenium is
imported by the fixtures, not at collection: a run without these tests does not pay for it.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from .pad_process import Pad, PadStartError, chromium, find_program, running_pad, tail

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

INSTALL: Final = "apt-get install chromium chromium-driver"
PAGES: Final = {
    "status": "/",
    "prescription": "/prescription",
    "history": "/history",
    "course": "/course",
}

DRIVER_KEY = pytest.StashKey["WebDriver"]()
PAD_KEY = pytest.StashKey[Pad]()


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    """(chromium, chromedriver); skips outside CI, fails under CI, when one is missing."""
    browser, driver = find_program("chromium"), find_program("chromedriver")
    if browser is None or driver is None:
        missing = [
            name for name, path in (("chromium", browser), ("chromedriver", driver)) if not path
        ]
        message = f"{' and '.join(missing)} not found: {INSTALL}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser tests need the browser under CI; {message}")
        pytest.skip(message)
    return browser, driver


@pytest.fixture
def browser(
    browser_binaries: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[WebDriver]:
    driver = chromium(*browser_binaries, tmp_path)
    request.node.stash[DRIVER_KEY] = driver
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def pad(browser: WebDriver, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pad]:
    """The controller on the simulated board at 60× and the page, both ready; started
    after the browser (``browser`` is asked for only for that order)."""
    try:
        with running_pad(tmp_path) as started:
            request.node.stash[PAD_KEY] = started
            yield started
    except PadStartError as exc:
        pytest.fail(str(exc))


def _failure_folder(item: pytest.Item) -> Path:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)
    folder = item.config.rootpath / "build" / "browser-failures" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _screenshot_every_page(driver: WebDriver, pad: Pad | None, folder: Path) -> list[str]:
    """The page the test was on, then each page of the site (all GETs: nothing changes)."""
    from selenium.common.exceptions import WebDriverException

    saved: list[str] = []
    shots: list[tuple[str, str | None]] = [("failed-here", None)]
    if pad is not None:
        shots += [(name, pad.url + path) for name, path in PAGES.items()]
    for name, url in shots:
        try:
            if url is not None:
                driver.get(url)
            driver.save_screenshot(str(folder / f"{name}.png"))
            (folder / f"{name}.html").write_text(driver.page_source, encoding="utf-8")
            saved.append(name)
        except WebDriverException as exc:
            (folder / f"{name}.error.txt").write_text(str(exc), encoding="utf-8")
    return saved


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    driver = item.stash.get(DRIVER_KEY, None)
    if report.when == "call" and report.failed and driver is not None:
        pad = item.stash.get(PAD_KEY, None)
        folder = _failure_folder(item)
        saved = _screenshot_every_page(driver, pad, folder)
        report.sections.append(("browser screenshots", f"{folder}: {', '.join(saved)}"))
        for log in pad.logs if pad is not None else ():
            report.sections.append((log.name, tail(log)))
    return report
