"""The HIL rig of real processes: ``python -m hil.sim`` on a pty and ``nirpad run``.

Owns: ``ProcessRig``, which installs a prescription with the real CLI (signed by the rigs'
clinic, whose key the state directory's site configuration trusts: ``hil.rigs.clinic``),
starts both (the simulator as ``hil.rigs.sim_child.SimChild``, the controller as
``hil.rigs.controller_child.ControllerChild``, ready when it says READY=1), talks to the
controller over its control socket and, whatever happened, stops and reaps both (and
checks the board was left dark). Waiting is on events and conditions, never on a fixed
sleep; time bounds are for the tests to judge
on the simulator's time stamps. Does not own the simulator's vocabulary (docs/hil.md)
or the in-process rig (``hil.rigs.harness``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import Any, Final

from firmware_host.json_child import Event, EventTimeout
from hil.rigs.clinic import reissued_today, sign, trust_rig_clinic
from hil.rigs.controller_child import ControllerChild, sim_board_args
from hil.rigs.sim_child import SimChild
from safety.ledger import FaultRecord, Ledger, SessionRecord

__all__ = ["ProcessRig"]

EXIT_TIMEOUT_S: Final = 10.0


class ProcessRig:
    """A ``python -m hil.sim`` board and a ``nirpad run --port`` controller around it.

    The prescription is installed with the real CLI before the controller starts. Use it
    as a context manager: every child is stopped and reaped on the way out, whatever
    happened.
    """

    def __init__(self, work_dir: Path, *, time_scale: float = 60.0, seed: int = 0) -> None:
        self.work_dir = work_dir
        self.state_dir = work_dir / "state"
        self.rail_file = work_dir / "rail"
        self.time_scale = time_scale
        self.seed = seed
        self.sim: SimChild | None = None
        self.controller: ControllerChild | None = None

    def __enter__(self) -> ProcessRig:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        dark = self.close()
        if exc_type is None and dark is False:
            raise AssertionError("the board was still emitting when the rig was closed")

    def install(self, profile_id: str = "rls-810-standard") -> None:
        """The built-in ``profile_id``, signed by the rigs' clinic, installed with the CLI
        on a state directory whose site configuration trusts that clinic."""
        from firmware_host.cli import main as nirpad

        trust_rig_clinic(self.state_dir)
        data = reissued_today(profile_id)  # the children run on the real wall clock
        path = self.work_dir / f"{profile_id}.signed.toml"
        path.write_bytes(sign(data))
        code = nirpad(["profile", "install", str(path), "--state-dir", str(self.state_dir)])
        assert code == 0, f"nirpad profile install exited {code}"

    def start_sim(self) -> SimChild:
        args = ["--seed", str(self.seed), "--time-scale", f"{self.time_scale:g}"]
        args += ["--rail-file", str(self.rail_file)]
        self.sim = SimChild(*args, log_path=self.work_dir / "sim.log")
        return self.sim

    def start_controller(self) -> ControllerChild:
        assert self.sim is not None
        old, self.controller = self.controller, None
        if old is not None:
            old.stop()  # reaped and its socket and log closed (it may be dead already)
        args = sim_board_args(
            self.sim.port, rail_file=self.rail_file, state_dir=self.state_dir,
            time_scale=self.time_scale,
        )  # fmt: skip
        self.controller = ControllerChild(
            args, log_path=self.work_dir / "controller.log",
            notify_path=self.work_dir / f"notify-{time.monotonic_ns()}",
        )  # fmt: skip
        return self.controller

    def up(self, profile_id: str = "rls-810-standard") -> ProcessRig:
        self.install(profile_id)
        self.start_sim()
        self.start_controller()
        return self

    def send(self, cmd: str) -> dict[str, Any]:
        from firmware_host.control_client import send

        reply = send(self.state_dir, {"cmd": cmd}, timeout_s=EXIT_TIMEOUT_S)
        assert reply is not None, f"no controller answers for {self.state_dir}"
        return reply

    def status(self) -> dict[str, Any]:
        reply = self.send("status")
        assert reply["ok"], reply
        data = reply["data"]
        assert isinstance(data, dict)
        return data

    def start_treating(self) -> Event:
        """``start`` over the socket; returns the simulator's ``output`` on event."""
        assert self.sim is not None
        mark = self.sim.mark()
        reply = self.send("start")
        assert reply["ok"], reply
        return self.sim.wait_for(
            lambda e: e.get("event") == "output" and e.get("on") is True, EXIT_TIMEOUT_S, mark
        )

    def sessions(self) -> list[SessionRecord]:
        with Ledger.open(self.state_dir, _utc_now) as ledger:
            return ledger.sessions()

    def faults(self) -> list[FaultRecord]:
        with Ledger.open(self.state_dir, _utc_now) as ledger:
            return ledger.faults()

    def close(self) -> bool | None:
        """Stop the controller (SIGTERM: its loop turns the outputs off), then ask the
        board whether it is dark, then stop the board. Returns that answer (None if the
        board was already gone)."""
        controller, self.controller = self.controller, None
        sim, self.sim = self.sim, None
        dark: bool | None = None
        try:
            if controller is not None:
                controller.stop()
            if sim is not None and sim.proc.poll() is None:
                with contextlib.suppress(EventTimeout, OSError, ValueError):
                    dark = not sim.state()["outputs_on"]
        finally:
            if sim is not None:
                sim.stop()
        return dark


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
