"""Power cuts: SIGKILL a real ``nirpad run`` at random points and restart it, ≥ 50 times.

One simulator process (``python -m hil.sim --time-scale 1``, the real board's pace)
stays up; the controller process is killed and started again on the same
state directory. Three kinds of cut, in random order:

- ``session``: during a treatment, at a random moment (some after the first 5 s dose
  checkpoint);
- ``idle``: after a refused ``start``;
- ``boot``: at a random moment of start-up (ledger reconciliation, handshake).

After every restart: the ledger opens; no session is left unfinished; the session
that was cut is closed as ``power_lost``; its counted dose is at least what the
simulator delivered (its own ``state`` truth: the host counts with the calibration
uncertainty bound, so no allowance is made here); and ``start`` is refused, because
the 20 h minimum interval has not passed. The 20 h cannot pass in real time and the
simulator has no wall clock, so between sessions the test moves the ledger's records
back by 7 days (``tests.reliability.powercut.age_ledger``) while the controller is idle; the refusal
before each move is the interval check. SIGKILL → outputs off is measured on the
simulator's clock and only loosely bounded here (lease + 25 ms + a margin for a loaded
machine); the figures go to docs/reliability.md (run with ``-s`` to print them).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from firmware_host.cli import main as nirpad
from firmware_host.control_client import send
from hil.rigs.clinic import reissued_today, sign, trust_rig_clinic
from hil.rigs.controller_child import ControllerChild
from hil.rigs.sim_child import sim_state
from safety.faults import Outcome
from safety.limits import LEASE_MAX_MS
from tests.reliability.powercut import (
    CutFigures,
    age_ledger,
    delivered_by_wavelength,
    ledger_sessions,
    start_controller,
    start_sim,
)

KILLS = int(os.environ.get("NIRPAD_POWERCUT_KILLS", "50"))
SEED = int(os.environ.get("NIRPAD_POWERCUT_SEED", "20260601"))
TIME_SCALE = 1.0  # the real board's; one accelerated cut is the last test below
OFF_BOUND_S = LEASE_MAX_MS / 1000 + 0.025
LOADED_MACHINE_MARGIN_S = 1.0
READY_TIMEOUT_S = 30.0

pytestmark = [
    pytest.mark.hil,
    pytest.mark.slow,
    pytest.mark.timeout(240),
]


class Rig:
    """The simulator, the controller of the moment, and what the test has seen."""

    def __init__(self, tmp_path: Path, rng: random.Random, time_scale: float) -> None:
        self.state_dir, self.rail = tmp_path / "state", tmp_path / "rail"
        self.rng = rng
        self.notify_path = tmp_path / "notify"
        self.sim, self.port = start_sim(time_scale, self.rail, SEED)
        self.time_scale = time_scale
        self.run: ControllerChild | None = None
        self.figures: list[CutFigures] = []
        self.cut_at: list[dt.datetime] = []  # per session: wall time after its cut

    def spawn(self) -> ControllerChild:
        self.run = start_controller(
            self.port, self.state_dir, self.rail, self.time_scale, self.notify_path
        )
        return self.run

    def ready(self) -> None:
        assert self.run is not None
        self.run.wait_ready(READY_TIMEOUT_S)  # STATUS= lines skipped; a timeout fails

    def cut(self, kind: str) -> CutFigures:
        assert self.run is not None
        self.run.kill()  # SIGKILL, reaped
        self.run.stop()  # its socket and log closed
        figures = CutFigures(kind)
        self.figures.append(figures)
        return figures

    def close(self) -> None:
        if self.run is not None:
            self.run.kill()
            self.run.stop()
        self.sim.close(quit_command={"cmd": "quit"})


def _start(state_dir: Path) -> dict[str, Any]:
    reply = send(state_dir, {"cmd": "start"}, timeout_s=10)
    assert reply is not None, "the controller's socket is gone"
    return reply


def _output(on: bool) -> Any:
    return lambda e: e.get("event") == "output" and e.get("on") is on


def _check_ledger_after_restart(rig: Rig, expected_sessions: int) -> None:
    sessions = ledger_sessions(rig.state_dir)  # raises if the ledger cannot be opened
    assert len(sessions) == expected_sessions
    assert all(s.ended_at is not None for s in sessions), "a session was left open"
    for session, cut_at in zip(sessions, rig.cut_at, strict=True):
        # power-lost, unless its own host closed it before the cut: a loaded machine can
        # make the host latch a fault (e.g. telemetry_stale) just before the kill
        closed_before_cut = (
            session.outcome is Outcome.FAULT
            and session.fault_code is not None
            and session.ended_at is not None
            and session.ended_at <= cut_at
        )
        assert session.outcome is Outcome.POWER_LOST or closed_before_cut, (session, cut_at)


def _refused_by_interval(rig: Rig) -> None:
    reply = _start(rig.state_dir)
    assert reply["exit_code"] == 3, reply
    assert "allowed" in reply["message"], reply
    assert sim_state(rig.sim)["outputs_on"] is False


def _session_cut(
    rig: Rig, before: dict[int, float], session_count: int, delay_s: float | None = None
) -> None:
    mark = rig.sim.mark()
    reply = _start(rig.state_dir)
    assert reply["exit_code"] == 0, reply
    on_index, _ = rig.sim.wait_for_index(_output(True), 20, after=mark)
    late = rig.rng.random() < 0.15  # after the first 5 s checkpoint
    if delay_s is None:
        delay_s = rig.rng.uniform(5.0, 5.8) if late else rig.rng.uniform(0.05, 1.0)
    time.sleep(delay_s)  # the moment of the cut
    at_kill = sim_state(rig.sim)
    dark_already = any(_output(False)(e) for e in rig.sim.since(on_index + 1))
    figures = rig.cut("session-late" if late else "session")
    rig.cut_at.append(dt.datetime.now(dt.UTC))
    off_index, off = rig.sim.wait_for_index(_output(False), 20, after=on_index + 1)
    if dark_already:  # the host had turned the light off itself: no kill→off figure
        figures.kind = "session-dark-before-cut"
    else:
        between = rig.sim.since(on_index + 1)[: off_index - on_index - 1]
        expiry = [e["t"] for e in between if e.get("event") == "lease_expired"]
        figures.off_after_state_s = off["t"] - at_kill["t"]
        figures.off_after_expiry_s = off["t"] - expiry[-1] if expiry else None
    after = delivered_by_wavelength(sim_state(rig.sim))
    truth = {nm: after[nm] - before.get(nm, 0.0) for nm in after}
    rig.spawn()
    rig.ready()
    _check_ledger_after_restart(rig, session_count)
    counted = ledger_sessions(rig.state_dir)[-1].delivered_fluence_j_cm2
    figures.counted_j_cm2 = sum(counted.values())
    figures.delivered_j_cm2 = sum(truth.values())
    for nm, delivered in truth.items():
        assert counted.get(nm, 0.0) >= delivered - 1e-9, (
            f"{nm} nm: ledger counts {counted.get(nm, 0.0):.4f} J/cm², "
            f"the simulator delivered {delivered:.4f} J/cm²"
        )


def test_fifty_power_cuts_lose_no_dose_and_keep_the_interval(tmp_path: Path) -> None:
    _install(tmp_path / "state")
    rig = Rig(tmp_path, random.Random(SEED), TIME_SCALE)
    sessions = 0
    try:
        rig.spawn()
        rig.ready()
        while len(rig.figures) < KILLS:
            if sessions:
                _refused_by_interval(rig)
            kind = rig.rng.choice(("session", "session", "idle", "boot"))
            if kind == "session" or not sessions:
                age_ledger(rig.state_dir, hours=7 * 24)
                before = delivered_by_wavelength(sim_state(rig.sim))
                sessions += 1
                _session_cut(rig, before, sessions)
            elif kind == "idle":
                rig.cut("idle")
                rig.spawn()
                rig.ready()
                _check_ledger_after_restart(rig, sessions)
            else:
                _boot_cut(rig, sessions)
    finally:
        rig.close()
    _report(rig.figures)


def test_a_power_cut_on_an_accelerated_simulator_counts_the_dose(tmp_path: Path) -> None:
    _install(tmp_path / "state")
    rig = Rig(tmp_path, random.Random(SEED), time_scale=60.0)
    try:
        rig.spawn()
        rig.ready()
        _session_cut(rig, delivered_by_wavelength(sim_state(rig.sim)), 1, delay_s=1.0)
    finally:
        rig.close()


def _install(state_dir: Path) -> None:
    """The built-in rls-810-standard, with a 52-week course: every move of the records by
    7 days (``age_ledger``) would otherwise end a 4-week course after four sessions.
    Signed by the rigs' clinic, which the state directory's site configuration trusts."""
    text = reissued_today().decode()  # the children run on the real wall clock
    assert "course_weeks = 4\n" in text
    rx = state_dir.parent / "rls-810-long-course.toml"
    trust_rig_clinic(state_dir)
    rx.write_bytes(sign(text.replace("course_weeks = 4\n", "course_weeks = 52\n").encode()))
    assert nirpad(["profile", "install", str(rx), "--state-dir", str(state_dir)]) == 0


def _boot_cut(rig: Rig, sessions: int) -> None:
    rig.cut("idle")
    rig.spawn()
    time.sleep(rig.rng.uniform(0.0, 0.6))  # a random moment of start-up
    rig.cut("boot")
    rig.spawn()
    rig.ready()
    _check_ledger_after_restart(rig, sessions)


def _report(figures: list[CutFigures]) -> None:
    """Assert the simulator-clock bounds; print the figures (shown with ``-s``)."""
    cuts = [f for f in figures if f.off_after_state_s is not None]
    offs = [f.off_after_state_s for f in cuts if f.off_after_state_s is not None]
    reactions = [f.off_after_expiry_s for f in cuts if f.off_after_expiry_s is not None]
    assert len(figures) >= KILLS and cuts
    assert max(offs) <= OFF_BOUND_S + LOADED_MACHINE_MARGIN_S
    assert not reactions or max(reactions) <= 0.025 + 0.005
    ratios = [f.counted_j_cm2 / f.delivered_j_cm2 for f in cuts if f.delivered_j_cm2 > 0]
    kinds = {k: sum(1 for f in figures if f.kind == k) for k in {f.kind for f in figures}}
    print(f"\npower cuts: {len(figures)} {kinds}", file=sys.stderr)
    print(f"kill→off (sim clock, upper bound): median {statistics.median(offs) * 1000:.0f} "
          f"ms, max {max(offs) * 1000:.0f} ms (bound {OFF_BOUND_S * 1000:.0f} ms)",
          file=sys.stderr)  # fmt: skip
    if reactions:
        print(f"lease expiry→off: max {max(reactions) * 1000:.1f} ms", file=sys.stderr)
    if ratios:
        print(f"counted/delivered: min {min(ratios):.3f}, median "
              f"{statistics.median(ratios):.3f}", file=sys.stderr)  # fmt: skip
