"""Two real processes: ``nirpad sim`` (the board on a pty) and ``nirpad run --port``.

The caregiver's path, over the real CLI and control socket: install the built-in
prescription, ``nirpad start``, ``nirpad status --json`` says treating, SIGTERM to the
controller mid-session; the simulator then reports its outputs off (its own ``output``
event, not the controller's word), the controller exits 0, and ``nirpad history``
shows the session as stopped. READY comes over a real NOTIFY_SOCKET, so nothing here
waits by sleeping.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware_host.cli import main

pytestmark = pytest.mark.timeout(90)
SIM_READY = Path(__file__).resolve().parents[2] / "hil" / "sim" / "__main__.py"


class Child:
    """A child process whose JSON stdout lines are queued as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    self.lines.put(item)

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
        while True:
            item = self.lines.get(timeout=timeout_s)  # queue.Empty fails the test
            if match(item):
                return item

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.reader.join(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    try:
        yield sock
    finally:
        sock.close()


def _wait_ready(sock: socket.socket, run: Child) -> None:
    while True:
        try:
            if sock.recv(4096).startswith(b"READY=1"):
                return
        except TimeoutError:
            pytest.fail(f"nirpad run never became ready (exit {run.proc.poll()})")


@pytest.mark.slow
@pytest.mark.skipif(not SIM_READY.exists(), reason="python -m hil.sim is not written yet")
def test_sigterm_mid_session_over_the_cli(
    tmp_path: Path, notify: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    state, rail = tmp_path / "state", tmp_path / "rail"
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    env.pop("WATCHDOG_USEC", None)
    rx = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml")
    assert main(["profile", "install", str(rx), "--state-dir", str(state)]) == 0
    nirpad = [sys.executable, "-m", "firmware_host"]
    sim = Child([*nirpad, "sim", "--rail-file", str(rail), "--time-scale", "60"], env)
    run: Child | None = None
    try:
        port = sim.wait_for(lambda e: "port" in e, 20)["port"]
        run = Child(
            [*nirpad, "run", "--port", port, "--rail-file", str(rail), "--state-dir", str(state)],
            env,
        )
        _wait_ready(notify, run)
        assert main(["start", "--state-dir", str(state)]) == 0
        sim.wait_for(lambda e: e.get("event") == "output" and e.get("on") is True, 20)
        capsys.readouterr()
        assert main(["status", "--json", "--state-dir", str(state)]) == 0
        assert json.loads(capsys.readouterr().out)["state"] == "treating"
        run.proc.send_signal(signal.SIGTERM)
        sim.wait_for(lambda e: e.get("event") == "output" and e.get("on") is False, 20)
        assert run.proc.wait(20) == 0
        assert main(["status", "--state-dir", str(state)]) == 4  # socket gone with it
    finally:
        if run is not None:
            run.stop()
        sim.stop()
    capsys.readouterr()
    assert main(["history", "--json", "--state-dir", str(state)]) == 0
    (session,) = json.loads(capsys.readouterr().out)
    assert session["profile_id"] == "rls-810-standard"
    assert session["outcome"] == "stopped"
    assert session["planned_fluence_j_cm2"] > 0
