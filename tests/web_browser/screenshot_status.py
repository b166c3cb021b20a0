"""Take the picture of the status page for docs/web.md, mid-session on the simulated board.

Run from the repository root (needs the test extras and Debian's chromium):

    python -m tests.web_browser.screenshot_status -o docs/img/web-status.png

Starts the pad at 60× on a temporary state directory, installs the built-in
prescription and presses start with the CLI, waits until the session is a third done,
then photographs the status page as a browser shows it. Leaves nothing running.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path
from typing import Final

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from firmware_host.cli import main as nirpad
from hil.rigs.clinic import reissued_today

from .pad_process import chromium, find_program, running_pad

log = logging.getLogger("screenshot_status")

PROGRESS_PCT: Final = 33.0
WAIT_S: Final = 60.0
WINDOW: Final = (900, 600)


def _progress_pct(state_dir: Path) -> float:
    out = StringIO()
    with redirect_stdout(out):
        nirpad(["status", "--json", "--state-dir", str(state_dir)])
    status = json.loads(out.getvalue())
    planned = status.get("planned_fluence_j_cm2") or 0.0
    given = status.get("fluence_j_cm2") or 0.0
    return 100.0 * given / planned if planned else 0.0


def _fit_height(driver: WebDriver) -> None:
    """Make the window as tall as the page, so the picture has all of it and no more."""
    page, chrome = driver.execute_script(
        "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
    )
    driver.set_window_size(WINDOW[0], int(page) + int(chrome))


def take(output: Path) -> None:
    browser, driver_path = find_program("chromium"), find_program("chromedriver")
    if browser is None or driver_path is None:
        raise SystemExit("needs the browser: apt-get install chromium chromium-driver")
    with tempfile.TemporaryDirectory(prefix="nirpad-shot-") as tmp, running_pad(Path(tmp)) as pad:
        state = ["--state-dir", str(pad.state_dir)]
        rx = Path(tmp) / "rx.toml"
        rx.write_bytes(reissued_today())  # the pad runs on the real wall clock
        with redirect_stdout(StringIO()):
            if nirpad(["profile", "install", str(rx), *state]) or nirpad(["start", *state]):
                raise SystemExit("the pad refused the prescription or the start")
        deadline = time.monotonic() + WAIT_S
        while _progress_pct(pad.state_dir) < PROGRESS_PCT and time.monotonic() < deadline:
            time.sleep(0.5)
        driver = chromium(browser, driver_path, Path(tmp), WINDOW)
        try:
            driver.get(pad.url + "/")
            WebDriverWait(driver, 10).until(
                lambda d: d.find_element(By.ID, "state").get_attribute("data-state") == "treating"
            )
            _fit_height(driver)
            output.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(output))
        finally:
            driver.quit()
    log.info("wrote %s", output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/img/web-status.png"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    take(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
