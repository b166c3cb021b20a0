"""The safety core's hold on the ledger: the open ledger, or why there is none.

Owns: the ledger the core writes to (opened, reconciled and backed up by
``core_connect.open_ledger_again``), the reason treatment is refused when it could not be
opened, trying again every ``LEDGER_REOPEN_S`` (never for a damaged record: only a
caregiver's reset helps), the reset itself, and closing. Does not own what is written
(``core``, ``fault_latch``) nor the rules read from it (``ledger``).
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Final

from safety.core_connect import open_ledger_again
from safety.errors import LedgerError
from safety.ledger import Ledger, LedgerConnection
from safety.ledger_guard import reset_ledger

__all__ = ["LEDGER_REOPEN_S", "LedgerHandle"]

log = logging.getLogger(__name__)

LEDGER_REOPEN_S: Final = 10.0
"""A ledger that could not be opened is tried again this often (a damaged one never:
only a caregiver's reset helps, and each try would read the whole file)."""


class LedgerHandle:
    """The ledger, or the problem that keeps it closed; reopened when storage recovers."""

    def __init__(
        self,
        state_dir: Path,
        wall_clock: Callable[[], datetime],
        clock: Callable[[], float],
        backup_dir: Path | None = None,
        connection: type[sqlite3.Connection] = LedgerConnection,
    ) -> None:
        """Open (restore, reconcile, back up) the ledger in ``state_dir`` now. Every
        connection to it is a ``connection`` (``Ledger.open``)."""
        self._state_dir = state_dir
        self._wall_clock = wall_clock
        self._clock = clock
        self._backup_dir = backup_dir
        self._connection = connection
        self.ledger, self.problem, again = open_ledger_again(
            state_dir, wall_clock, backup_dir, connection
        )
        self._next_reopen_s = clock() + LEDGER_REOPEN_S if again else math.inf

    def reopened(self) -> Ledger | None:
        """The ledger; one that could not be opened is tried again (at most every
        ``LEDGER_REOPEN_S``), so storage that works again is noticed without a restart."""
        if self.ledger is None and self._clock() >= self._next_reopen_s:
            self._next_reopen_s = self._clock() + LEDGER_REOPEN_S
            ledger, problem, again = open_ledger_again(
                self._state_dir, self._wall_clock, self._backup_dir, self._connection
            )
            if ledger is None:
                self.problem = problem
                if not again:
                    self._next_reopen_s = math.inf
            else:
                log.info("the treatment record can be used again")
                self.ledger, self.problem = ledger, None
        return self.ledger

    def ledger_or_raise(self) -> Ledger:
        """The ledger (reopened if it can be), or ``LedgerError`` saying why not."""
        ledger = self.reopened()
        if ledger is None:
            raise LedgerError(self.problem or "no ledger", path="")
        return ledger

    def reset(self, who: str) -> str | None:
        """A caregiver resets a record lost or damaged with no usable backup; None, or
        why not. The first session then waits one full interval."""
        ledger = self.ledger
        try:
            if ledger is not None and ledger.lost_refusal() is None:
                return "The treatment record is not lost; there is nothing to reset."
            if ledger is not None:
                ledger.close()
            self.ledger = reset_ledger(
                self._state_dir, self._wall_clock, who, self._backup_dir, self._connection
            )
        except (LedgerError, OSError) as exc:
            self.ledger = None
            self.problem = f"The treatment record cannot be reset: {exc}"
            return self.problem
        self.problem = None
        return None

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()
