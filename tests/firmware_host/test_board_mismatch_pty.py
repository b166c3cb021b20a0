"""Two real processes: a board on a pty that claims what it should not, and ``nirpad run``.

The host's time scale is its own setting. ``nirpad run --port`` alone is a real board
at x1; a board whose INFO says it is a simulator, or reports another time scale, is
refused at the handshake with ``board_mismatch``: the controller is in ``fault``,
``start`` is refused, and the simulator (its own word, not the controller's) never had
its rail enabled nor emitted. The simulator itself refuses a scale outside 1–600.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.json_child import JsonLinesChild
from hil.rigs.sim_child import sim_state

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]
NIRPAD = [sys.executable, "-m", "firmware_host"]


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


@pytest.mark.parametrize(
    ("sim_args", "host_args"),
    [
        pytest.param([], [], id="simulator-flag-on-a-real-run"),
        pytest.param(["--info-simulator", "0", "--info-time-scale", "0.01"], [], id="x0.01"),
        pytest.param(["--info-simulator", "0", "--info-time-scale", "0"], [], id="x0"),
        pytest.param(["--info-simulator", "0", "--info-time-scale", "601"], [], id="x601"),
        pytest.param(["--info-simulator", "0", "--info-time-scale", "2"], [], id="flag-off-x2"),
        pytest.param(
            ["--time-scale", "60", "--info-time-scale", "0.01"],
            ["--simulated-board", "--time-scale", "60"],
            id="sim-claims-x0.01-to-a-x60-host",
        ),
    ],
)
def test_a_board_claiming_another_kind_never_emits(
    tmp_path: Path,
    notify: socket.socket,
    capsys: pytest.CaptureFixture[str],
    sim_args: list[str],
    host_args: list[str],
) -> None:
    state, rail = tmp_path / "state", tmp_path / "rail"
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify")}
    sim = JsonLinesChild([*NIRPAD, "sim", "--rail-file", str(rail), *sim_args])
    run: JsonLinesChild | None = None
    try:
        port = sim.wait_for(lambda e: "port" in e, 20)["port"]
        argv = [*NIRPAD, "run", "--port", port, *host_args, "--rail-file", str(rail)]
        run = JsonLinesChild([*argv, "--state-dir", str(state)], env=_env(env))
        _wait_ready(notify, run)
        capsys.readouterr()
        assert main(["status", "--json", "--state-dir", str(state)]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["state"] == "fault"
        assert status["fault"]["code"] == "board_mismatch"
        assert main(["start", "--state-dir", str(state)]) != 0
        truth = sim_state(sim)
        assert truth["rail_enabled"] is False
        assert max(truth["irradiance_mw_cm2"]) == 0.0
        assert not [e for e in sim.snapshot() if e.get("event") == "output" and e.get("on")]
    finally:
        if run is not None:
            run.close()
        sim.close()


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("WATCHDOG_USEC", None)
    return env


@pytest.mark.parametrize("scale", ["0.01", "0", "0.5", "601"])
def test_the_simulator_refuses_a_time_scale_outside_1_to_600(scale: str) -> None:
    done = subprocess.run(
        [*NIRPAD, "sim", "--time-scale", scale], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "between 1 and 600" in done.stderr
