"""A pad for a browser: ``nirpad run --sim`` and ``nirpad web`` as real processes.

Owns: starting both on one state directory (the controller's READY over a real
NOTIFY_SOCKET, the page ready when ``/healthz`` answers), stopping them (SIGTERM, then
kill), finding Debian's ``chromium`` and ``chromedriver``, and the headless options that
work with no network at all. Used by the browser tests' fixtures (conftest.py) and by
the script that takes the status page's picture for docs/web.md (screenshot_status.py).
Selenium Manager is never used: the driver's path is given, so nothing is downloaded.
Selenium is imported when a browser is started, not with this module, so that a test
run that starts none (``-m "not slow"``) does not pay for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# Headless, and nothing that reaches for the network (updates, sync, QUIC probes).
HEADLESS_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
TIME_SCALE: Final = 60
READY_TIMEOUT_S: Final = 30.0
STOP_TIMEOUT_S: Final = 15.0
LOG_TAIL_LINES: Final = 40


class PadStartError(RuntimeError):
    """The controller or the page did not become ready; the message has its log's end."""


@dataclass(frozen=True)
class Pad:
    """The controller and the page, on one state directory."""

    state_dir: Path
    url: str
    logs: tuple[Path, ...]


def find_program(name: str) -> str | None:
    """Debian's path first, then PATH; None when it is not installed."""
    for candidate in (f"/usr/bin/{name}", shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def chromium(
    browser: str, driver: str, work: Path, window: tuple[int, int] = (1024, 900)
) -> WebDriver:
    """Headless chromium with a fresh profile in ``work``; the driver's log goes there too."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = browser
    for flag in HEADLESS_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--user-data-dir={work / 'chromium-profile'}")
    service = Service(executable_path=driver, log_output=str(work / "chromedriver.log"))
    session = webdriver.Chrome(options=options, service=service)
    session.set_page_load_timeout(30)
    return session


def tail(log: Path) -> str:
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"({exc})"
    return "\n".join(lines[-LOG_TAIL_LINES:])


@contextlib.contextmanager
def running_pad(work: Path) -> Iterator[Pad]:
    """Both processes on ``work/state``, ready; stopped on leaving, whatever happened."""
    notify_path = work / "notify"
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    env.pop("WATCHDOG_USEC", None)
    nirpad = [sys.executable, "-m", "firmware_host"]
    state, logs, port = work / "state", (work / "controller.log", work / "web.log"), _free_port()
    pad = Pad(state, f"http://127.0.0.1:{port}", logs)
    procs: list[subprocess.Popen[bytes]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(1.0)
        try:
            scale = str(TIME_SCALE)
            run = [*nirpad, "run", "--sim", "--time-scale", scale, "--state-dir", str(state)]
            procs.append(_start(run, logs[0], env))
            _wait_ready(notify, procs[0], logs[0])
            web = [*nirpad, "web", "--state-dir", str(state), "--port", str(port)]
            procs.append(_start(web, logs[1], dict(os.environ)))
            _wait_healthy(pad.url, procs[1], logs[1])
            yield pad
        finally:
            for proc in reversed(procs):
                _stop(proc)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(notify: socket.socket, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(TimeoutError):
            if notify.recv(4096).startswith(b"READY=1"):
                return
    raise PadStartError(f"nirpad run never became ready (exit {proc.poll()}):\n{tail(log)}")


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise PadStartError(f"nirpad web never answered /healthz (exit {proc.poll()}):\n{tail(log)}")
