"""The ledger's storage seam: a full disk refuses writes only, and dropped connections
are closed without a write, also those made after an earlier drop."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from hil.rigs.ledger_storage import LedgerStorage
from safety.errors import LedgerError
from safety.ledger import Ledger


def _now() -> dt.datetime:
    return dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)


def test_a_full_disk_refuses_writes_and_keeps_reads(tmp_path: Path) -> None:
    storage = LedgerStorage()
    with Ledger.open(tmp_path, _now, connection=storage.connection) as ledger:
        storage.full = True
        assert ledger.sessions() == []  # reads work
        assert "disk is full" in (ledger.writable_refusal() or "")
        assert storage.refused > 0
        storage.full = False
        assert ledger.writable_refusal() is None


def test_dropped_connections_are_closed_and_later_ones_tracked(tmp_path: Path) -> None:
    storage = LedgerStorage()
    first = Ledger.open(tmp_path, _now, connection=storage.connection)
    storage.drop_connections()
    with pytest.raises(LedgerError):
        first.sessions()  # its connection is closed under it
    second = Ledger.open(tmp_path, _now, connection=storage.connection)
    storage.drop_connections()
    with pytest.raises(LedgerError):
        second.sessions()
    with Ledger.open(tmp_path, _now) as plain:  # the file is whole; nothing was written
        assert plain.sessions() == []
    first.close()
    second.close()


def test_the_seam_is_a_plain_sqlite_connection() -> None:
    assert issubclass(LedgerStorage().connection, sqlite3.Connection)
