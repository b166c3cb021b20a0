"""Two real processes: ``nirpad sim`` (the board on a pty) and ``nirpad run --port``.

The caregiver's path, over the real CLI and control socket: install the built-in
prescription, ``nirpad start``, ``nirpad status --json`` says treating, SIGTERM to the
controller mid-session (or SIGHUP: the terminal it ran in was closed); the simulator
then reports its outputs off (its own ``output`` event, not the controller's word), the
controller exits 0 with the rail cut, and ``nirpad history`` shows the session as
stopped. READY comes over a real NOTIFY_SOCKET, so nothing here
waits by sleeping.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.json_child import Event, JsonLinesChild
from hil.rigs.clinic import reissued_today
from hil.rigs.controller_child import ControllerChild, sim_board_args

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup-terminal-closed"]
)
def test_sigterm_mid_session_over_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: signal.Signals
) -> None:
    state, rail = tmp_path / "state", tmp_path / "rail"
    rx = tmp_path / "rx.toml"
    rx.write_bytes(reissued_today())  # the child runs on the real wall clock
    assert main(["profile", "install", str(rx), "--state-dir", str(state)]) == 0
    nirpad = [sys.executable, "-m", "firmware_host"]
    sim = JsonLinesChild([*nirpad, "sim", "--rail-file", str(rail), "--time-scale", "60"])
    run: ControllerChild | None = None
    try:
        port = sim.wait_for(lambda e: "port" in e, 20)["port"]
        args = sim_board_args(port, rail_file=rail, state_dir=state, time_scale=60.0)
        run = ControllerChild(args, log_path=tmp_path / "run.log", notify_path=tmp_path / "notify")
        mark = sim.mark()
        assert main(["start", "--state-dir", str(state)]) == 0
        on_index, _ = sim.wait_for_index(_output(True), 20, after=mark)
        capsys.readouterr()
        assert main(["status", "--json", "--state-dir", str(state)]) == 0
        assert json.loads(capsys.readouterr().out)["state"] == "treating"
        run.proc.send_signal(signum)
        sim.wait_for(_output(False), 20, after=on_index + 1)
        assert run.proc.wait(20) == 0
        assert rail.read_text().split()[0] == "0"  # the rail cut on the way out
        assert main(["status", "--state-dir", str(state)]) == 4  # socket gone with it
    finally:
        if run is not None:
            run.stop()
        sim.close()
    capsys.readouterr()
    assert main(["history", "--json", "--state-dir", str(state)]) == 0
    (session,) = json.loads(capsys.readouterr().out)
    assert session["profile_id"] == "rls-810-standard"
    assert session["outcome"] == "stopped"
    assert session["planned_fluence_j_cm2"] > 0


def _output(on: bool) -> Callable[[Event], bool]:
    return lambda e: e.get("event") == "output" and e.get("on") is on
