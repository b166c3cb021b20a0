"""Backups of the ledger, copied off the caller's thread.

Owns: copying ``ledger.sqlite3`` to each backup place with SQLite's backup API, through a
connection of its own (WAL lets it read a consistent snapshot while the ledger is
written), into a temporary file of its own, then an atomic rename; never over a backup
that holds records the ledger lacks; and removing the temporary file of a copy that a
power cut or a killed process cut short (it is as large as the ledger, and one is left
each time) before the next copy to that place. The copy runs on a short-lived worker thread: a
ledger grows by about 50 kB a session, and the event loop (which asks for a backup at
each session's end) must never wait seconds for a copy of a few hundred MB on an SD
card. Requests that come while a copy runs are folded into one more copy.

Does not own when a backup is asked for (``safety.ledger.Ledger``) nor restoring one
(``safety.ledger_guard``).
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import sqlite3
import tempfile
import threading
from pathlib import Path
from typing import Final

from safety.ledger_events import history_size

__all__ = [
    "BACKUP_FILE_MODE",
    "BACKUP_THREAD_NAME",
    "LedgerBackup",
    "backup_history",
    "copy_ledger",
    "remove_cut_short_copies",
]

log = logging.getLogger(__name__)

BACKUP_FILE_MODE: Final = 0o640
_JOIN_TIMEOUT_S: Final = 60.0
BACKUP_THREAD_NAME: Final = "ledger-backup"


def backup_history(path: Path) -> tuple[int, int, int, int] | None:
    """How much history the backup at ``path`` holds; None if it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return history_size(conn)
    except sqlite3.Error:
        return None


def remove_cut_short_copies(dest: Path) -> int:
    """Remove the temporary files of copies to ``dest`` that never reached their rename
    (the process died mid-copy); returns how many. Only this module writes files of that
    name, and one thread of one controller (the state directory's lock) copies at a time."""
    removed = 0
    for stray in dest.parent.glob(glob.escape(f".{dest.name}.") + "*"):
        with contextlib.suppress(FileNotFoundError):
            stray.unlink()
            removed += 1
    if removed:
        log.info("removed %d ledger backup copy(ies) cut short in %s", removed, dest.parent)
    return removed


def copy_ledger(source: Path, dest: Path) -> None:
    """Copy the ledger at ``source`` to ``dest`` (raises ``OSError``/``sqlite3.Error``, or
    ``FileExistsError`` when ``dest`` holds records ``source`` lacks: it is kept)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_cut_short_copies(dest)
    with contextlib.closing(sqlite3.connect(source, timeout=5.0)) as src:
        theirs, ours = backup_history(dest), history_size(src)
        if theirs is not None and any(t > o for t, o in zip(theirs, ours, strict=True)):
            raise FileExistsError(f"the backup {dest} holds records the ledger lacks; it is kept")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            os.chmod(tmp, BACKUP_FILE_MODE)
            with contextlib.closing(sqlite3.connect(tmp)) as target:
                src.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")  # one file, readable read-only
            with open(tmp, "rb") as written:
                os.fsync(written.fileno())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    dir_fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LedgerBackup:
    """Copies ``source`` to each of ``places`` on a worker thread, on ``request()``."""

    def __init__(self, source: Path, places: tuple[Path, ...]) -> None:
        self.source = source
        self.places = places
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again = False

    def request(self) -> None:
        """Start a copy now, or one more after the copy that runs (never waits)."""
        with self._lock:
            if self._thread is not None:
                self._again = True
                return
            self._thread = threading.Thread(target=self._run, name=BACKUP_THREAD_NAME, daemon=True)
            self._thread.start()

    def wait(self) -> None:
        """Until no copy runs or is pending (close, tests)."""
        while True:
            with self._lock:
                thread = self._thread
            if thread is None:
                return
            thread.join(_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.error("ledger backup still running after %.0f s", _JOIN_TIMEOUT_S)
                return

    def _run(self) -> None:
        while True:
            for dest in self.places:
                try:
                    copy_ledger(self.source, dest)
                except (OSError, sqlite3.Error) as exc:
                    log.error("ledger backup to %s failed: %s", dest, exc)
            with self._lock:
                if not self._again:
                    self._thread = None
                    return
                self._again = False
