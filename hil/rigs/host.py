"""One life of the host process in an in-process rig: what ``nirpad run`` opens and builds.

Owns: ``Host``, the parts one host process holds (its serial port onto the in-process
board, its rail and the two wires from the rail's lines to the board's HAT, the storage
under its ledger) and the stack assembled on them (``firmware_host.assembly``), and the
two ways that life ends: ``shutdown`` (a clean exit: the loop's and the core's own
closing, outputs off) and ``abandon`` (SIGKILL or a pulled plug: none of our code runs
again, the kernel closes the descriptors). Does not own the board, the clocks or the
state directory, which outlive a host (``hil.rigs.harness.InProcessRig``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware_host.assembly import AssembledStack, assemble_stack
from hil.rigs.clock import VirtualClock
from hil.rigs.ledger_storage import LedgerStorage
from hil.sim.board import SimBoard
from hil.sim.inprocess import RailWire, SimPort
from safety.board_kind import BoardKind
from safety.core_connect import PortLike
from safety.ledger_backup import BACKUP_THREAD_NAME
from safety.rail import PowerRail, make_rail

__all__ = ["Host", "HostSetup"]

_BACKUP_JOIN_S: Final = 30.0


@dataclass(frozen=True)
class HostSetup:
    """What every life of the host is started with (its command line and machine)."""

    state_dir: Path
    site_config: Path
    clock: VirtualClock
    wall_clock: Callable[[], dt.datetime]
    uptime_clock: Callable[[], float]
    wrap_port: Callable[[SimPort], PortLike] | None = None
    """A transport of the caller's between the core and the board's port, or None."""


class Host:
    """One life of the host process: its rail and port, and the stack assembled on them."""

    def __init__(self, setup: HostSetup, board: SimBoard, on_tick: Callable[[], None]) -> None:
        self.wire = RailWire(board, setup.clock)  # unplugged when this host dies
        self.rail: PowerRail = make_rail(None, None)
        self.wire.connect(self.rail)
        self.port = SimPort(board, setup.clock)
        # pyserial's open() flushes the input (tcflush): frames the board sent while no
        # host was listening are not read as current telemetry by the new host. With the
        # cable out there is nothing to flush; the core's handshake reports the cable.
        with contextlib.suppress(OSError):
            self.port.reset_input_buffer()
        transport = self.port if setup.wrap_port is None else setup.wrap_port(self.port)
        self.ledger_storage = LedgerStorage()  # what this process's ledger connections are
        try:
            self.stack: AssembledStack = assemble_stack(
                state_dir=setup.state_dir, board=BoardKind.simulated(board.time_scale),
                rail=self.rail, transport=transport, site_config=setup.site_config,
                clock=setup.clock, wall_clock=setup.wall_clock, uptime_clock=setup.uptime_clock,
                ledger_connection=self.ledger_storage.connection,
            )  # fmt: skip
        except BaseException:
            self.rail.close()
            raise
        self.stack.loop.on_tick_hook = on_tick

    def shutdown(self) -> None:
        """A clean exit: the loop's and the core's own closing (outputs off, ledger closed)."""
        try:
            self.stack.close()
        finally:
            self.rail.close()

    def abandon(self) -> None:
        """SIGKILL: none of our code runs again. The kernel closes the descriptors.

        The rail wires to the board are cut first, so closing the GPIO devices (which a
        dead process would not do, but the kernel releases) does not reach the board:
        the board keeps its enable level and its last lease, and the heartbeats stop,
        so the HAT's hold circuit drops the rail ``RAIL_HOLD_S`` after the last one.
        The ledger's SQLite connections are closed without any further write
        (``LedgerStorage.drop_connections``); a transaction is never open between steps.
        A ledger backup copy in flight on its worker thread is let finish first: a
        thread cannot be stopped from outside, and one left running would write into
        the state directory under the next host. That is the cut falling just after the
        copy; a copy cut short leaves only its temporary file, which the next copy
        removes (``safety.ledger_backup``, tested in ``tests/safety``).
        """
        self.wire.unplug()
        _let_backup_copies_finish()
        self.ledger_storage.drop_connections()
        self.port.close()
        self.stack.loop.close()
        self.rail.close()


def _let_backup_copies_finish() -> None:
    """Join the ledger's backup worker threads (one per ledger, by their name)."""
    for thread in threading.enumerate():
        if thread.name == BACKUP_THREAD_NAME:
            thread.join(_BACKUP_JOIN_S)
