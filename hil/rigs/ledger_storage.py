"""What storage can do to a running controller's ledger, injected through its seam.

Owns: ``LedgerStorage``, whose ``connection`` class a rig gives the assembly
(``firmware_host.assembly.assemble_stack(ledger_connection=...)``): every SQLite
connection the safety core makes to its ledger is then one of it. Through it a rig can
fill the disk (``full = True``: every write fails as SQLite fails on a full disk, reads
still work; ``refused`` counts the writes refused) and drop its connections
(``drop_connections``: each is closed, with no further write, as the kernel closes the
descriptors of a process that died, or as storage that went away leaves a running host).
Does not own how the ledger and the core handle either (``safety``).
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from safety.ledger import LedgerConnection

__all__ = ["DISK_FULL", "LedgerStorage"]

DISK_FULL: Final = "database or disk is full"
"""SQLite's message for SQLITE_FULL."""
_WRITES: Final = frozenset({"INSERT", "UPDATE", "BEGIN"})


class LedgerStorage:
    """The storage under one host's ledger; ``connection`` goes to the assembly."""

    def __init__(self) -> None:
        self.full = False
        self.refused = 0
        self._open: list[sqlite3.Connection] = []
        self.connection = self._connection_class()

    def drop_connections(self) -> None:
        """Close every ledger connection made so far, writing nothing (a transaction is
        never left open between the loop's steps): the host process died, or its
        storage went away under it."""
        opened = list(self._open)
        self._open.clear()
        for conn in opened:
            conn.close()

    def _check(self, sql: str) -> None:
        """Refuse a write while the disk is full, as SQLite does."""
        words = sql.split(None, 1)
        if self.full and words and words[0].upper() in _WRITES:
            self.refused += 1
            raise sqlite3.OperationalError(DISK_FULL)

    def _connection_class(self) -> type[sqlite3.Connection]:
        opened = self._open
        check = self._check

        class Connection(LedgerConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                opened.append(self)

            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                check(sql)
                return super().execute(sql, *args)

        return Connection
