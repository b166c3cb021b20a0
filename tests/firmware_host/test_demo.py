"""nirpad demo, as a newcomer runs it: a whole session to the ledger, nothing left over.

Each run gets a unique marker in its environment; children inherit it, so after the
demo exits a scan of /proc finds any process it left behind (the simulator child).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _pids_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"NIRPAD_TEST_MARK={marker}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    mark = uuid.uuid4().hex
    try:
        yield mark
    finally:
        for pid in _pids_with(mark):  # clean up after a failure; the test already failed
            os.kill(pid, signal.SIGKILL)


def _demo(marker: str) -> subprocess.Popen[str]:
    env = {**os.environ, "NIRPAD_TEST_MARK": marker, "COLUMNS": "120"}
    return subprocess.Popen(
        [sys.executable, "-m", "firmware_host", "demo"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip


@pytest.mark.timeout(150)
def test_demo_runs_a_session_to_completion(marker: str) -> None:
    proc = _demo(marker)
    try:
        out, _ = proc.communicate(timeout=140)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "Pressed start." in out
    assert "The ledger's record of the session:" in out
    record = out.split("The ledger's record of the session:")[1]
    assert "rls-810-standard" in record and "completed" in record
    assert "upper bound" in record  # why "delivered" may read above "planned"
    assert "Traceback" not in out
    assert _pids_with(marker) == []


@pytest.mark.timeout(90)
def test_demo_ctrl_c_leaves_nothing_running(marker: str) -> None:
    proc = _demo(marker)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "Pressed start." in line:
                break
        else:
            pytest.fail("the demo never pressed start")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if proc.stdout is not None:
            proc.stdout.close()  # closed by communicate, unless the demo ended on its own
    assert proc.returncode == 130, out[-3000:]
    assert "stopped" in out.split("The ledger's record of the session:")[1]
    assert "Traceback" not in out
    assert _pids_with(marker) == []
