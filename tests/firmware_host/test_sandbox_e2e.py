"""The controller and the page still work inside their units' system-call sandbox.

``systemd-analyze security`` scores the units' directives; it does not run anything.
Here the seccomp part of each unit (``SystemCallFilter=``, ``SystemCallErrorNumber=``,
``RestrictAddressFamilies=``, ``MemoryDenyWriteExecute=``, read from the unit file
itself) is loaded with libseccomp (sandbox_exec.py) and the real program runs inside
it: the controller a whole session on the simulated board (at 600×) with sd_notify, the
control socket and the ledger; the page its pages. A probe first shows the sandbox
bites: no Internet socket for the controller, no writable-executable memory.

Needs Linux, libseccomp and ``systemd-analyze`` (for the groups); where they are
missing the tests skip, except under CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

import firmware_host
from firmware_host.cli import main
from hil.rigs.clinic import reissued_today

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

UNITS: Final = Path(firmware_host.__file__).parent / "systemd"
SANDBOX: Final = Path(__file__).with_name("sandbox_exec.py")
PROBE: Final = """
import errno, mmap, socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    print("inet allowed")
except OSError as exc:
    print("inet", errno.errorcode[exc.errno])
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("wx allowed")
except OSError as exc:
    print("wx", errno.errorcode[exc.errno])
"""
WAIT_S: Final = 30.0


@pytest.fixture(scope="module", autouse=True)
def _seccomp_available() -> None:
    missing = [
        what
        for what, ok in (
            ("Linux", sys.platform.startswith("linux")),
            ("libseccomp (apt-get install libseccomp2)", ctypes.util.find_library("seccomp")),
            ("systemd-analyze (apt-get install systemd)", shutil.which("systemd-analyze")),
        )
        if not ok
    ]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the sandbox tests need {', '.join(missing)} under CI")
        pytest.skip(f"needs {', '.join(missing)}")


def _sandboxed(unit: str, *command: str) -> list[str]:
    return [sys.executable, str(SANDBOX), str(UNITS / unit), "--", *command]


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("nirpad.service", ["inet EAFNOSUPPORT", "wx EPERM"]),
        ("nirpad-web.service", ["inet allowed", "wx EPERM"]),
    ],
)
def test_the_sandbox_refuses_what_the_unit_forbids(unit: str, expected: list[str]) -> None:
    argv = _sandboxed(unit, sys.executable, "-c", PROBE)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert result.stdout.split("\n")[:2] == expected, result.stderr


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(WAIT_S)
    try:
        yield sock
    finally:
        sock.close()


def _status(state: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["status", "--json", "--state-dir", str(state)]) == 0
    state_name: str = json.loads(capsys.readouterr().out)["state"]
    return state_name


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_the_controller_runs_a_whole_session_inside_its_sandbox(
    tmp_path: Path, notify: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    state, log = tmp_path / "state", tmp_path / "controller.log"
    rx = tmp_path / "rx.toml"
    rx.write_bytes(reissued_today())  # the child runs on the real wall clock
    assert main(["profile", "install", str(rx), "--state-dir", str(state)]) == 0
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    env.pop("WATCHDOG_USEC", None)
    nirpad = [sys.executable, "-m", "firmware_host"]
    argv = [*nirpad, "run", "--sim", "--time-scale", "600", "--state-dir", str(state)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _sandboxed("nirpad.service", *argv), stdout=out, stderr=out, env=env
        )
    try:
        assert notify.recv(4096).startswith(b"READY=1"), log.read_text()
        assert main(["start", "--state-dir", str(state)]) == 0
        deadline = time.monotonic() + WAIT_S
        while _status(state, capsys) != "complete" and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        assert _stop(proc) == 0, log.read_text()
    text = log.read_text()
    assert "sandbox of nirpad.service" in text and "Traceback" not in text
    capsys.readouterr()
    assert main(["history", "--json", "--state-dir", str(state)]) == 0
    (session,) = json.loads(capsys.readouterr().out)
    assert session["outcome"] == "completed"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_page_serves_inside_its_sandbox(tmp_path: Path) -> None:
    port, log = _free_port(), tmp_path / "web.log"
    argv = [sys.executable, "-m", "firmware_host", "web", "--state-dir", str(tmp_path)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            _sandboxed("nirpad-web.service", *argv, "--port", str(port)), stdout=out, stderr=out
        )
    pages: dict[str, int] = {}
    try:
        deadline = time.monotonic() + WAIT_S
        while not pages and time.monotonic() < deadline and proc.poll() is None:
            try:
                for path in ("/healthz", "/", "/prescription", "/history"):
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                        pages[path] = r.status
            except OSError:
                pages.clear()
                time.sleep(0.2)
    finally:
        _stop(proc)
    assert pages == dict.fromkeys(("/healthz", "/", "/prescription", "/history"), 200), (
        log.read_text()
    )
    assert "sandbox of nirpad-web.service" in log.read_text()
