"""Connecting the safety core: the ledger first, then the board and its handshake.

Owns: opening and reconciling the ledger (a ledger that cannot be opened becomes a
start refusal, not a crash), opening the board client by URL or transport (a port that
cannot be opened raises ``BoardConnectError``; a transport is anything ``PortLike``),
and mapping handshake failures to the fault codes the core latches. Does not own the
core's state (``safety.core``).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from drivers.client import BoardClient, PortLike, open_board
from drivers.errors import (
    BoardDisconnectedError,
    CalibrationCrcError,
    DriverError,
    ProtocolVersionError,
)
from drivers.protocol import Info
from safety.board_kind import BoardKind
from safety.errors import LedgerDamagedError, LedgerError, SafetyError
from safety.faults import FaultCode
from safety.ledger import Ledger, LedgerConnection
from safety.ledger_guard import open_guarded
from safety.ledger_schema import ledger_error

__all__ = [
    "HANDSHAKE_TIMEOUT_S",
    "BoardConnectError",
    "PortLike",
    "handshake",
    "open_client",
    "open_ledger",
    "open_ledger_again",
]

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S: Final = 1.0


class BoardConnectError(SafetyError, ConnectionError):
    """The board's port could not be opened at all. ``port`` names it."""

    def __init__(self, message: str, *, port: str) -> None:
        super().__init__(message)
        self.port = port


def open_ledger(
    state_dir: Path,
    wall_clock: Callable[[], datetime],
    backup_dir: Path | None = None,
    connection: type[sqlite3.Connection] = LedgerConnection,
) -> tuple[Ledger | None, str | None]:
    """The ledger (restored from its backup if it was lost or damaged, reconciled after a
    crash, backed up), or None and the reason treatment is refused. ``connection``: the
    class the ledger connects with (``Ledger.open``)."""
    ledger, problem, _ = open_ledger_again(state_dir, wall_clock, backup_dir, connection)
    return ledger, problem


def open_ledger_again(
    state_dir: Path,
    wall_clock: Callable[[], datetime],
    backup_dir: Path | None = None,
    connection: type[sqlite3.Connection] = LedgerConnection,
) -> tuple[Ledger | None, str | None, bool]:
    """``open_ledger``, and whether trying again later may help: not for a damaged
    record with no usable backup (only a caregiver's reset helps; each try would re-read
    the whole file), yes for storage that may work again (locked, read-only, missing)."""
    try:
        ledger = open_guarded(state_dir, wall_clock, backup_dir, connection)
    except LedgerDamagedError as exc:
        log.error("ledger damaged: %s", exc)
        return None, str(exc), False
    except LedgerError as exc:
        log.error("ledger unusable: %s", exc)
        return None, str(exc), True
    except (OSError, sqlite3.Error) as exc:
        log.error("ledger restore failed: %s", exc)
        problem = ledger_error("The treatment record cannot be restored", state_dir, exc)
        return None, str(problem), True
    try:
        ledger.reconcile_after_crash()
    except LedgerError as exc:
        log.error("ledger reconciliation failed: %s", exc)
        ledger.close()
        return None, f"The treatment record cannot be repaired: {exc}", True
    ledger.backup_now()
    return ledger, None, True


def open_client(
    port_url: str | None, transport: PortLike | None, clock: Callable[[], float], baudrate: int
) -> BoardClient:
    if transport is not None:
        return BoardClient(transport, port_name=port_url or "transport", clock=clock)
    if port_url is None:
        raise BoardConnectError("no board: give a port URL or a transport", port="")
    try:
        return open_board(port_url, clock=clock, baudrate=baudrate)
    except DriverError as exc:
        raise BoardConnectError(f"cannot open the pad on {port_url}: {exc}", port=port_url) from exc


def handshake(
    client: BoardClient, board: BoardKind
) -> tuple[Info | None, tuple[FaultCode, str] | None]:
    """INFO, or None and the fault to latch; a board that is not ``board`` is refused.

    A refused board's INFO is kept (status may show what it claimed), but nothing of it
    that changes how time or dose is counted is ever used: the scale is the host's own.
    """
    try:
        info = client.handshake(HANDSHAKE_TIMEOUT_S)
    except ProtocolVersionError as exc:
        return None, (FaultCode.PROTOCOL_VERSION, str(exc))
    except CalibrationCrcError as exc:
        return None, (FaultCode.CALIBRATION_CRC, str(exc))
    except BoardDisconnectedError as exc:
        return None, (FaultCode.BOARD_DISCONNECTED, str(exc))
    except DriverError as exc:
        return None, (FaultCode.BOARD_NOT_ANSWERING, str(exc))
    problem = board.mismatch(info)
    if problem is not None:
        log.error("board refused at handshake: %s", problem)
        return info, (FaultCode.BOARD_MISMATCH, problem)
    return info, None
