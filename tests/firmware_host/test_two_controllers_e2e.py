"""Real processes against one running ``nirpad run --sim``: a mistyped second controller
on the same state directory, a slow control client, and a client that gave up.

* A second ``nirpad run --port NO_SUCH_PORT --rail-file OTHER`` on the same state
  directory exits non-zero naming the first one's pid, and changes nothing: the first
  goes on treating with its ledger row open, and the other rail file never appears.
* A client that sends half a request and then nothing does not delay ``nirpad status``.
* A ``nirpad start`` whose client gave up while the controller was stopped (SIGSTOP) is
  never carried out once it runs again: the controller logs it and stays ready.

Readiness comes over a real NOTIFY_SOCKET; nothing here asserts a wall-clock time.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from firmware_host.cli import main
from hil.rigs.clinic import reissued_today
from hil.rigs.controller_child import ControllerChild

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
NIRPAD = [sys.executable, "-m", "firmware_host"]


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[tuple[ControllerChild, Path, Path]]:
    """``nirpad run --sim`` on ``tmp_path/state``, ready; yields it, the state dir, its log."""
    state, log_path = tmp_path / "state", tmp_path / "run.log"
    rx = tmp_path / "rx.toml"
    rx.write_bytes(reissued_today())  # the children run on the real wall clock
    assert main(["profile", "install", str(rx), "--state-dir", str(state)]) == 0
    run = ControllerChild(
        ["--sim", "--time-scale", "60", "--state-dir", str(state)],
        log_path=log_path, notify_path=tmp_path / "notify",
    )  # fmt: skip
    try:
        yield run, state, log_path
    finally:
        run.stop()  # SIGCONT first: a test may leave it stopped


def _status(state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", "--json", "--state-dir", str(state)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert isinstance(status, dict)
    return status


def _history(state: Path, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["history", "--json", "--state-dir", str(state)]) == 0
    sessions = json.loads(capsys.readouterr().out)
    assert isinstance(sessions, list)
    return sessions


def test_a_second_controller_on_the_same_state_dir_exits_and_changes_nothing(
    controller: tuple[ControllerChild, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run, state, _ = controller
    assert main(["start", "--state-dir", str(state)]) == 0
    before = _status(state, capsys)
    assert before["state"] == "treating"
    other_rail = tmp_path / "other-rail"
    second = subprocess.run(
        [*NIRPAD, "run", "--port", "NO_SUCH_PORT", "--rail-file", str(other_rail),
         "--state-dir", str(state)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert second.returncode != 0
    assert f"another nirpad process (pid {run.pid}) is using the state directory" in second.stderr
    assert "Traceback" not in second.stderr
    assert not other_rail.exists()
    (session,) = _history(state, capsys)
    assert session["outcome"] is None  # not closed as power_lost by the second process
    after = _status(state, capsys)
    assert after["state"] == "treating" and after["fault"] is None
    assert after["fluence_j_cm2"] >= before["fluence_j_cm2"]
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(30) == 0
    (session,) = _history(state, capsys)
    assert session["outcome"] == "stopped"  # closed by its own controller, once


def test_a_slow_client_holds_nobody_up_and_a_late_start_is_never_carried_out(
    controller: tuple[ControllerChild, Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, state, log_path = controller
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as slow:
        slow.connect(str(state / "control.sock"))
        slow.sendall(b'{"cmd": "st')  # and nothing more for now
        assert _status(state, capsys)["state"] == "ready"
        slow.setblocking(False)
        with pytest.raises(BlockingIOError):
            slow.recv(1)  # neither answered nor cut off yet: it held nobody up
    monkeypatch.setenv("NIRPAD_TIMEOUT_S", "1")
    run.proc.send_signal(signal.SIGSTOP)  # the controller hangs; the request waits in the socket
    try:
        code = main(["start", "--state-dir", str(state)])
    finally:
        run.proc.send_signal(signal.SIGCONT)
    assert code == 1
    assert "did not answer within 1 s" in capsys.readouterr().err
    _wait_for_line(log_path, "control command 'start' not carried out")
    monkeypatch.setenv("NIRPAD_TIMEOUT_S", "10")
    assert _status(state, capsys)["state"] == "ready"  # the light never came on
    assert _history(state, capsys) == []


def _wait_for_line(path: Path, text: str, timeout_s: float = 30.0) -> None:
    end_s = time.monotonic() + timeout_s
    with open(path) as log_file:
        while time.monotonic() < end_s:
            if _grep(log_file, text):
                return
            time.sleep(0.05)
    pytest.fail(f"the controller never logged {text!r}:\n{path.read_text()[-3000:]}")


def _grep(log_file: IO[str], text: str) -> bool:
    return any(text in line for line in log_file)
