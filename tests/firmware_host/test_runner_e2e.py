"""Two real processes: ``nirpad sim`` (the board on a pty) and ``nirpad run --port``.

The caregiver's path, over the real CLI and control socket: install the built-in
prescription, ``nirpad start``, ``nirpad status --json`` says treating, SIGTERM to the
controller mid-session; the simulator then reports its outputs off (its own ``output``
event, not the controller's word), the controller exits 0, and ``nirpad history``
shows the session as stopped. READY comes over a real NOTIFY_SOCKET, so nothing here
waits by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.json_child import Event, JsonLinesChild

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    try:
        yield sock
    finally:
        sock.close()


def _wait_ready(sock: socket.socket, run: JsonLinesChild) -> None:
    while True:
        try:
            if sock.recv(4096).startswith(b"READY=1"):
                return
        except TimeoutError:
            pytest.fail(f"nirpad run never became ready (exit {run.proc.poll()})")


@pytest.mark.slow
def test_sigterm_mid_session_over_the_cli(
    tmp_path: Path, notify: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    state, rail = tmp_path / "state", tmp_path / "rail"
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    env.pop("WATCHDOG_USEC", None)
    rx = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml")
    assert main(["profile", "install", str(rx), "--state-dir", str(state)]) == 0
    nirpad = [sys.executable, "-m", "firmware_host"]
    sim = JsonLinesChild([*nirpad, "sim", "--rail-file", str(rail), "--time-scale", "60"])
    run: JsonLinesChild | None = None
    try:
        port = sim.wait_for(lambda e: "port" in e, 20)["port"]
        argv = [*nirpad, "run", "--port", port, "--simulated-board", "--time-scale", "60"]
        run = JsonLinesChild(
            [*argv, "--rail-file", str(rail), "--state-dir", str(state)],
            env=env,
        )
        _wait_ready(notify, run)
        mark = sim.mark()
        assert main(["start", "--state-dir", str(state)]) == 0
        on_index, _ = sim.wait_for_index(_output(True), 20, after=mark)
        capsys.readouterr()
        assert main(["status", "--json", "--state-dir", str(state)]) == 0
        assert json.loads(capsys.readouterr().out)["state"] == "treating"
        run.proc.send_signal(signal.SIGTERM)
        sim.wait_for(_output(False), 20, after=on_index + 1)
        assert run.proc.wait(20) == 0
        assert main(["status", "--state-dir", str(state)]) == 4  # socket gone with it
    finally:
        if run is not None:
            run.close()
        sim.close()
    capsys.readouterr()
    assert main(["history", "--json", "--state-dir", str(state)]) == 0
    (session,) = json.loads(capsys.readouterr().out)
    assert session["profile_id"] == "rls-810-standard"
    assert session["outcome"] == "stopped"
    assert session["planned_fluence_j_cm2"] > 0


def _output(on: bool) -> Callable[[Event], bool]:
    return lambda e: e.get("event") == "output" and e.get("on") is on
