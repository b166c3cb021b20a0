"""The one assembly of the controller stack: safety core, controller and event loop.

Owns: building the stack from its parts, the same way for ``nirpad run``, ``nirpad
demo``, every HIL rig, the bench and the tests (``assemble_stack``), and closing it
cleanly (``AssembledStack.close``). The site configuration gives the limits, the
trusted prescriber keys and a second ledger backup place, as it does for ``nirpad
run``; the prescription is the installed file, judged against those limits and keys on
every load. A caller passes what it fakes: the clocks, the board (a port URL or a
transport), the rail, and the class of the ledger's SQLite connection (a rig's injects
storage faults: a full disk, a process that dies).

Does not own the parts themselves: the rail and the transport stay their caller's (it
opened them, it closes them), nor the process around the stack (the state-directory
lock, the control socket, signals: ``runner``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from firmware_host.controller import Controller
from firmware_host.loop import EventLoop
from profiles.loader import LoadResult
from profiles.signing import TrustStore
from profiles.store import load_installed
from safety.board_kind import BoardKind
from safety.core import SafetyCore
from safety.core_connect import PortLike
from safety.ledger import LedgerConnection
from safety.ledger_guard import read_backup_dir
from safety.limits import Limits, check_profile, load_site_limits
from safety.rail import PowerRail

__all__ = ["AssembledStack", "assemble_stack", "prescription_loader", "utc_now"]


def utc_now() -> datetime:
    """The host's wall clock (UTC): what the ledger and the schedule read."""
    return datetime.now(UTC)


@dataclass(eq=False)
class AssembledStack:
    """The safety core, the controller that holds it, and the loop that runs both."""

    core: SafetyCore
    controller: Controller
    loop: EventLoop
    _closed: bool = field(default=False, init=False, repr=False)

    def close(self) -> None:
        """A clean exit: the loop closed, then the core's own closing (outputs off, rail
        cut, an open session closed, the ledger closed). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.loop.close()
        finally:
            self.core.close()


def assemble_stack(
    *,
    state_dir: Path,
    board: BoardKind,
    rail: PowerRail,
    port_url: str | None = None,
    transport: PortLike | None = None,
    site_config: Path | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], datetime] = utc_now,
    uptime_clock: Callable[[], float] | None = None,
    ledger_connection: type[sqlite3.Connection] = LedgerConnection,
) -> AssembledStack:
    """Connect the safety core to the board, and build the controller and loop over it.

    ``board`` is what the host was started for: a real board, or a simulator at the
    host's own time scale (the board's INFO must agree). The board is reached through
    ``port_url`` or, in-process, ``transport``. ``site_config`` (``--site-config``, else
    ``<state_dir>/site.toml`` if present, else None: ``paths.site_config_path``) gives the
    limits, the trusted keys and ``[ledger] backup_dir``. ``uptime_clock`` is the
    monotonic time the schedule trusts (default ``clock``; a rig that skips idle days
    gives its own). Raises what ``SafetyCore.connect`` raises (an unopenable port), and
    ``SafetyError``/``ProfileError`` for an unusable site configuration.
    """
    limits = load_site_limits(site_config)
    trust = TrustStore.from_site_file(site_config)  # re-verified on every load, not only install
    core = SafetyCore.connect(
        port_url=port_url, transport=transport, state_dir=state_dir, clock=clock,
        wall_clock=wall_clock, limits=limits, rail=rail, board=board,
        ledger_backup_dir=read_backup_dir(site_config), uptime_clock=uptime_clock,
        ledger_connection=ledger_connection,
    )  # fmt: skip
    try:
        controller = Controller(
            core, state_dir=state_dir, clock=clock, wall_clock=wall_clock,
            prescription_loader=prescription_loader(state_dir, limits, trust),
        )  # fmt: skip
        return AssembledStack(core, controller, EventLoop(controller, core, clock))
    except BaseException:
        core.close()
        raise


def prescription_loader(
    state_dir: Path, limits: Limits, trust: TrustStore
) -> Callable[[], LoadResult | None]:
    """The installed prescription, checked on each load against ``limits`` and ``trust``."""

    def load() -> LoadResult | None:
        return load_installed(
            state_dir, extra_checks=lambda rx: check_profile(rx, limits), trust=trust
        )

    return load
