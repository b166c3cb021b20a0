"""Two real processes: a wall clock that jumps ahead while ``nirpad run`` runs.

The board is ``nirpad sim`` on a pty; the controller is ``nirpad run --port`` in its own
process, whose wall clock reads the system's plus an offset kept in a file (the only
change: ``firmware_host.runner.utc_now``, which the controller's whole stack is built
with). After one session, the offset jumps 21 h ahead: ``nirpad start`` is still
refused by the 20 h rule (the controller's monotonic clock knows), and within the
10 s clock check the status shows the ``clock_jump`` warning and the ledger records it.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firmware_host.cli import main
from firmware_host.json_child import JsonLinesChild
from hil.rigs.clinic import reissued_today
from safety.ledger import Ledger
from safety.ledger_events import EventKind

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
NIRPAD = [sys.executable, "-m", "firmware_host"]
CHILD = """
import datetime as dt, sys
from pathlib import Path
import firmware_host.runner as runner
offset_file = Path(sys.argv[1])
def utc_now():
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(offset_file.read_text()))
runner.utc_now = utc_now
from firmware_host.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    try:
        yield sock
    finally:
        sock.close()


def _status(state: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["status", "--json", "--state-dir", str(state)]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def _wait(state: Path, capsys: pytest.CaptureFixture[str], done: Any, timeout_s: float) -> None:
    deadline_s = time.monotonic() + timeout_s
    while not done(_status(state, capsys)):
        assert time.monotonic() < deadline_s, _status(state, capsys)
        time.sleep(0.2)


def _one_minute_rx(tmp_path: Path) -> Path:
    text = reissued_today().decode()  # the child runs on the real wall clock
    rx = tmp_path / "one-minute.toml"
    rx.write_text(
        text.replace("duration_min = 30", "duration_min = 1").replace("ramp_s = 30", "ramp_s = 0")
    )
    return rx


def test_a_wall_clock_jump_ahead_does_not_shorten_the_interval(
    tmp_path: Path, notify: socket.socket, capsys: pytest.CaptureFixture[str]
) -> None:
    state, rail, offset = tmp_path / "state", tmp_path / "rail", tmp_path / "offset"
    offset.write_text("0")
    assert (
        main(["profile", "install", str(_one_minute_rx(tmp_path)), "--state-dir", str(state)]) == 0
    )
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    env.pop("WATCHDOG_USEC", None)
    sim = JsonLinesChild([*NIRPAD, "sim", "--rail-file", str(rail), "--time-scale", "60"])
    run: JsonLinesChild | None = None
    try:
        port = sim.wait_for(lambda e: "port" in e, 20)["port"]
        argv = ["run", "--port", port, "--simulated-board", "--time-scale", "60"]
        argv += ["--rail-file", str(rail), "--state-dir", str(state)]
        run = JsonLinesChild([sys.executable, "-c", CHILD, str(offset), *argv], env=env)
        while not notify.recv(4096).startswith(b"READY=1"):
            pass
        assert main(["start", "--state-dir", str(state)]) == 0
        _wait(state, capsys, lambda s: s["state"] == "complete", 30.0)
        assert main(["ack", "--state-dir", str(state)]) == 0
        offset.write_text(str(21 * 3600))  # the wall clock alone jumps 21 h ahead
        capsys.readouterr()
        assert main(["start", "--state-dir", str(state)]) == 3
        assert "20 h after the last one" in capsys.readouterr().err
        _wait(state, capsys, lambda s: "clock_jump" in [w["code"] for w in s["warnings"]], 15.0)
    finally:
        if run is not None:
            run.close()
        sim.close()
    with Ledger.open(state, lambda: _now_plus(offset)) as ledger:
        assert [s.outcome for s in ledger.sessions()] == ["completed"]
        assert EventKind.CLOCK_JUMP in [e.kind for e in ledger.events()]


def _now_plus(offset: Path) -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=float(offset.read_text()))
