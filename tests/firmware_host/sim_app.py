"""``nirpad run``'s own assembly (``runner.build_app``) over the in-process simulated
board on a virtual clock, for tests that serve, signal or install through it.

Owns: the wiring those tests share (the simulator's port as the transport, a rail with
no GPIO line whose changes reach the board; everything is closed by the caller's
``ExitStack``), installing the built-in 810 nm prescription as shipped, and reading
back the one session a test ran."""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path

from firmware_host.profile_commands import validate_and_install
from firmware_host.runner import App, build_app, utc_now
from hil.rigs.clock import VirtualClock
from hil.sim.board import SimBoard
from hil.sim.inprocess import make_sim
from safety.board_kind import BoardKind
from safety.ledger import Ledger
from safety.rail import make_rail
from safety.records import SessionRecord


def build_sim_app(
    stack: contextlib.ExitStack, state_dir: Path, *, seed: int, site_config: Path | None = None
) -> tuple[App, VirtualClock, SimBoard]:
    """The app (not booted, its control server not started), its clock and its board."""
    clock, board, port = make_sim(seed=seed)
    rail = make_rail(None, None)
    stack.callback(rail.close)
    rail.add_listener(board.set_rail)
    app = build_app(
        stack, state_dir=state_dir, port_url=None, rail_pin=None, rail_file=None,
        site_config=site_config, clock=clock, transport=port, rail=rail,
        board=BoardKind.simulated(board.time_scale),
    )  # fmt: skip
    return app, clock, board


def install_builtin(state_dir: Path) -> None:
    """``profiles/builtin/rls-810-standard.toml`` as the installed prescription."""
    data = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_bytes()
    outcome = validate_and_install(state_dir, data, "rx.toml", None, session_state=lambda: None)
    assert outcome.ok, outcome.message


def only_session(state_dir: Path) -> SessionRecord:
    """The one session the ledger in ``state_dir`` holds (fails if not exactly one)."""
    ledger = Ledger.open(state_dir, utc_now)
    try:
        (session,) = ledger.sessions()
    finally:
        ledger.close()
    return session
