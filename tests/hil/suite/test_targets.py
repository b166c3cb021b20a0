"""The suite's own guards: the board lock, and the skips of a real-board run.

The lock (``hil.rigs.locking``) must stop a second run on the same board at once and say
who holds it; the skip logic (``hil.rigs.targets.skip_reason`` applied by hil/suite/conftest.py)
must keep light off a real board unless NIRPAD_ALLOW_EMISSION=1, and keep the fault
injection rows off it always. Two checks run a real ``pytest`` child to prove the
conftest wiring end to end (``--board-url`` on ``loop://``, which never emits).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hil.rigs.locking import BoardLock, BoardLockedError, lock_path
from hil.rigs.targets import (
    ALLOW_EMISSION_ENV,
    EMITS,
    SIM_ONLY,
    board_url_problem,
    skip_reason,
)

pytestmark = pytest.mark.hil

ROOT = Path(__file__).resolve().parents[3]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT)
SUITE_CONFTEST = ("-p", "hil.suite.conftest")
"""The suite's conftest as a plugin: its --board-url and its board lock, for a test here."""
FAKE_URL = "loop://"


def test_a_second_locker_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    first = BoardLock("/dev/ttyUSB0", lock_dir=tmp_path)
    second = BoardLock("/dev/ttyUSB0", lock_dir=tmp_path)
    with first:
        assert first.held
        started_s = time.monotonic()
        with pytest.raises(BoardLockedError) as caught:
            second.acquire()
        assert time.monotonic() - started_s < 1.0  # never waits for the holder
        message = str(caught.value)
        assert "/dev/ttyUSB0 is in use by another HIL run" in message
        assert f"pid {os.getpid()}" in message and str(first.path) in message
        assert not second.held
    second.acquire()  # free again once released
    second.release()


def test_the_lock_follows_the_device_not_its_name(tmp_path: Path) -> None:
    device = tmp_path / "ttyUSB0"
    device.touch()
    alias = tmp_path / "usb-FTDI_serial-if00"
    alias.symlink_to(device)
    assert lock_path(str(alias), tmp_path) == lock_path(str(device), tmp_path)
    assert lock_path("/dev/ttyUSB0", tmp_path) != lock_path("/dev/ttyUSB1", tmp_path)
    assert lock_path("socket://host:7000", tmp_path).parent == tmp_path


def test_the_kernel_drops_the_lock_of_a_dead_run(tmp_path: Path) -> None:
    """A run that dies holding the lock (here: a child that exits) leaves it free."""
    code = (
        "import sys; from pathlib import Path; from hil.rigs.locking import BoardLock; "
        f"BoardLock('/dev/ttyACM0', lock_dir=Path({str(tmp_path)!r})).acquire(); sys.exit(0)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=30)
    with BoardLock("/dev/ttyACM0", lock_dir=tmp_path) as lock:
        assert lock.held


@pytest.mark.parametrize(
    ("url", "markers", "allow", "skipped_because"),
    [
        (None, {EMITS, SIM_ONLY}, False, None),
        ("/dev/ttyUSB0", set(), False, None),
        ("/dev/ttyUSB0", {EMITS}, False, f"set {ALLOW_EMISSION_ENV}=1"),
        ("/dev/ttyUSB0", {EMITS}, True, None),
        ("/dev/ttyUSB0", {SIM_ONLY}, True, "fault injection"),
    ],
)
def test_skip_reasons(
    url: str | None, markers: set[str], allow: bool, skipped_because: str | None
) -> None:
    reason = skip_reason(url, markers, allow)
    if skipped_because is None:
        assert reason is None
    else:
        assert reason is not None and skipped_because in reason and str(url) in reason


def _pytest_child(
    *args: str, env_changes: dict[str, str | None]
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:randomly", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.slow
def test_a_real_board_run_skips_emission_and_fault_injection() -> None:
    result = _pytest_child(
        "hil/suite/test_real_board.py::test_an_unrenewed_lease_turns_the_light_off",
        "hil/suite/test_fault_matrix.py::test_f09_contact_lost_pauses_within_one_frame",
        "--board-url",
        FAKE_URL,
        env_changes={ALLOW_EMISSION_ENV: None},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "2 skipped" in out, out
    assert f"would turn on the LEDs of the real board at {FAKE_URL}" in out
    assert f"{ALLOW_EMISSION_ENV}=1" in out
    assert "needs the simulator's fault injection" in out


@pytest.mark.slow
def test_a_second_run_on_a_locked_board_stops_at_once() -> None:
    url = f"socket://127.0.0.1:9/nirpad-lock-test-{os.getpid()}"
    try:
        with BoardLock(url):
            result = _pytest_child(
                *SUITE_CONFTEST, f"{THIS_FILE}::test_skip_reasons", "--board-url", url,
                env_changes={},
            )  # fmt: skip
    finally:
        lock_path(url).unlink(missing_ok=True)  # a per-run name: leave nothing in /tmp
    assert result.returncode == 4, result.stdout + result.stderr  # usage error: not run
    assert "is in use by another HIL run" in result.stderr
    assert "passed" not in result.stdout


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("foo://x", "foo://x: pyserial knows no 'foo' port; give a serial device"),
        ("/dev/ttyNOPE", "/dev/ttyNOPE: no such device"),
        ("/tmp", "/tmp: not a serial port"),
        (str(THIS_FILE), f"{THIS_FILE}: not a serial port"),
        ("loop://", None),
        ("socket://127.0.0.1:9", None),
    ],
)
def test_a_board_url_that_cannot_be_a_board_is_named(url: str, problem: str | None) -> None:
    found = board_url_problem(url)
    assert found == problem if problem is None else found is not None and problem in found


def test_a_pty_is_a_serial_port() -> None:
    controller, device = os.openpty()
    try:
        assert board_url_problem(os.ttyname(device)) is None
    finally:
        os.close(controller)
        os.close(device)


@pytest.mark.slow
def test_a_run_with_an_unusable_board_url_stops_at_once_with_one_line() -> None:
    result = _pytest_child(
        *SUITE_CONFTEST, f"{THIS_FILE}::test_skip_reasons", "--board-url", "foo://x",
        env_changes={},
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr  # usage error: not run
    assert "--board-url foo://x: pyserial knows no 'foo' port" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "passed" not in result.stdout


@pytest.mark.slow
def test_a_trace_dir_that_cannot_be_a_folder_stops_the_run_at_once(tmp_path: Path) -> None:
    a_file = tmp_path / "traces"
    a_file.write_text("not a folder")
    result = _pytest_child(
        *SUITE_CONFTEST, f"{THIS_FILE}::test_skip_reasons", "--hil-trace-dir", str(a_file),
        env_changes={},
    )  # fmt: skip
    assert result.returncode == 4, result.stdout + result.stderr  # usage error: not run
    assert f"--hil-trace-dir {a_file}: not a folder that can be written" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
