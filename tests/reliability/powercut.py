"""Helpers of the power-cut test: the two real processes, the simulator's truth, the ledger.

Owns: starting ``python -m hil.sim`` (``hil.rigs.sim_child.SimChild``, which also asks
it for its truth) and ``nirpad run`` (``hil.rigs.controller_child.ControllerChild``) as
child processes, reading the ledger the way the controller does (``ledger_sessions``),
and moving the recorded sessions back in time
(``age_ledger``): the test's stand-in for the 20 h that cannot pass in real time.

Does not own what is asserted (tests/reliability/test_power_cuts.py) nor the ledger's
rules (``safety.ledger``). ``age_ledger`` is a test instrument: it rewrites the time
stamps of a ledger no controller is writing to, and nothing in the product calls it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hil.rigs.controller_child import ControllerChild, sim_board_args
from hil.rigs.sim_child import SimChild
from safety.ledger import LEDGER_FILENAME, Ledger, SessionRecord

WAVELENGTH_BY_CHANNEL: Final = (810, 850)  # channel index → nm (docs/architecture.md)
Event = dict[str, Any]


def start_sim(time_scale: float, rail_file: Path, seed: int) -> tuple[SimChild, str]:
    """``python -m hil.sim`` on a pty; returns the child and its port."""
    args = ["--seed", str(seed), "--time-scale", f"{time_scale:g}", "--rail-file", str(rail_file)]
    sim = SimChild(*args)
    return sim, sim.port


def start_controller(
    port: str, state_dir: Path, rail_file: Path, time_scale: float, notify_path: Path
) -> ControllerChild:
    """``nirpad run --port`` on the simulator's pty, not waited for: READY comes over its
    own ``notify_path`` (``ControllerChild.wait_ready``)."""
    args = sim_board_args(port, rail_file=rail_file, state_dir=state_dir, time_scale=time_scale)
    log_path = notify_path.with_name("controller.log")
    return ControllerChild(
        [*args, "--log-level", "WARNING"], log_path=log_path, notify_path=notify_path, wait=False
    )


def delivered_by_wavelength(state: Event) -> dict[int, float]:
    """The simulator's cumulative delivered fluence, keyed like the ledger (nm)."""
    values = state["delivered_fluence_j_cm2"]
    return {WAVELENGTH_BY_CHANNEL[i]: float(v) for i, v in enumerate(values)}


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def ledger_sessions(state_dir: Path) -> list[SessionRecord]:
    """Open the ledger as the controller does (raises LedgerError if it cannot) and
    return every session, oldest first."""
    with Ledger.open(state_dir, utc_now) as ledger:
        return sorted(ledger.sessions(), key=lambda s: s.id)


def age_ledger(state_dir: Path, hours: float) -> None:
    """Move every recorded session, checkpoint, fault and install ``hours`` back in time.

    Only while no controller writes to the ledger. The wall clock then looks ``hours``
    later than every record, as if the patient had waited that long."""
    shift_s = hours * 3600.0
    conn = sqlite3.connect(state_dir / LEDGER_FILENAME, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "UPDATE sessions SET started_at_s = started_at_s - ?, ended_at_s = ended_at_s - ?",
            (shift_s, shift_s),
        )
        for table in ("checkpoints", "faults", "installs"):
            conn.execute(f"UPDATE {table} SET at_s = at_s - ?", (shift_s,))
        conn.execute("COMMIT")
    finally:
        conn.close()


@dataclass
class CutFigures:
    """What one power cut measured; the test collects these for docs/reliability.md."""

    kind: str
    counted_j_cm2: float = 0.0
    delivered_j_cm2: float = 0.0
    off_after_state_s: float | None = None  # upper bound of SIGKILL → outputs off (sim clock)
    off_after_expiry_s: float | None = None  # board reaction after the lease ran out
