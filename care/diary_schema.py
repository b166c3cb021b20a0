"""The symptom diary's on-disk form: errors, schema, migrations, connection setup.

Owns: the SQL of the diary's tables (``nightly``, ``irls``, ``irls_items``), the
triggers that make them append-only (an UPDATE or DELETE is refused by SQLite itself),
the ``schema_version`` table and the ordered ``MIGRATIONS`` (one transaction per step),
the connection pragmas (WAL, ``synchronous=FULL``, foreign keys), creating the file
with mode 0660 in its own directory (``diary/``, 2770), moving in a diary from its old
place (``diary.sqlite3`` in the state directory itself), a read-only connection
(``connect_read_only``), whether there is a diary to read (``diary_exists``: a file a
failed first open left, holding nothing, is none), and the diary's two error types.

Why its own, group-writable directory: two users write the diary, the patient's CLI
(as ``nirpad``) and the caregiver's page (``nirpad-web``, in the ``nirpad`` group). The
page's unit may write only ``diary/``; the state directory itself, where the dose
ledger lives, stays read-only to it (docs/deployment.md).

Does not own what is written when, or what a valid entry is (``care.diary``,
``care.diary_entry``, ``care.irls``). The pattern follows the dose ledger's schema
module, but nothing is shared with it: the diary is the course's, not the safety
layer's.

Dates are the patient's local calendar dates as ISO text (``2026-03-14``); the time an
entry was written is unix seconds (UTC, ``REAL``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import Final

__all__ = [
    "DIARY_DIR_MODE",
    "DIARY_FILENAME",
    "DIARY_FILE_MODE",
    "MIGRATIONS",
    "MOVED_SUFFIX",
    "OLD_DIARY_FILENAME",
    "SCHEMA_VERSION",
    "DiaryError",
    "DiaryStorageError",
    "adopt_old_diary",
    "connect_read_only",
    "create_private",
    "diary_exists",
    "prepare",
]

log = logging.getLogger(__name__)

DIARY_FILENAME: Final = "diary/diary.sqlite3"
"""Relative to the state directory."""
DIARY_FILE_MODE: Final = 0o660
"""Owner and group (``nirpad``: the CLI and the page) read-write, others nothing."""
DIARY_DIR_MODE: Final = 0o2770
"""setgid: files made in it by either writer keep the directory's group."""
OLD_DIARY_FILENAME: Final = "diary.sqlite3"
"""Where the diary was before it had its own directory (relative to the state directory)."""
MOVED_SUFFIX: Final = ".moved"
"""The old diary, once copied into ``diary/``, is renamed with this suffix (kept)."""


class DiaryError(ValueError):
    """An entry that cannot be recorded; the message is for the patient, ``field``
    names the input at fault (``"date"``, ``"note"``, ``"item 3"``...)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class DiaryStorageError(OSError):
    """The diary file cannot be opened, read or written. ``path`` names it."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


def _append_only(table: str) -> tuple[str, ...]:
    return tuple(
        f"""CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
            BEGIN SELECT RAISE(ABORT, 'the diary is append-only'); END"""
        for verb in ("UPDATE", "DELETE")
    )


_V1: Final[tuple[str, ...]] = (
    # One row per nightly entry. NULL = not answered. ``supersedes`` is the entry this
    # one corrects (the UNIQUE index: an entry is corrected once; correct the newest).
    """CREATE TABLE nightly (
        id INTEGER PRIMARY KEY,
        entry_date TEXT NOT NULL,
        recorded_at_s REAL NOT NULL,
        supersedes INTEGER REFERENCES nightly(id),
        leg_symptoms INTEGER CHECK (leg_symptoms BETWEEN 0 AND 10),
        sleep_quality INTEGER CHECK (sleep_quality BETWEEN 0 AND 10),
        minutes_to_sleep INTEGER CHECK (minutes_to_sleep BETWEEN 0 AND 600),
        awakenings INTEGER CHECK (awakenings BETWEEN 0 AND 50),
        onset INTEGER CHECK (onset BETWEEN 0 AND 3),
        side_effects TEXT NOT NULL DEFAULT '',
        note TEXT NOT NULL DEFAULT '')""",
    "CREATE UNIQUE INDEX nightly_supersedes ON nightly(supersedes)",
    "CREATE INDEX nightly_by_date ON nightly(entry_date)",
    *_append_only("nightly"),
    """CREATE TABLE irls (
        id INTEGER PRIMARY KEY,
        entry_date TEXT NOT NULL,
        recorded_at_s REAL NOT NULL,
        supersedes INTEGER REFERENCES irls(id),
        baseline INTEGER NOT NULL CHECK (baseline IN (0, 1)))""",
    "CREATE UNIQUE INDEX irls_supersedes ON irls(supersedes)",
    "CREATE INDEX irls_by_date ON irls(entry_date)",
    *_append_only("irls"),
    # The item numbers and their scores (never the licensed wording).
    """CREATE TABLE irls_items (
        irls_id INTEGER NOT NULL REFERENCES irls(id),
        item INTEGER NOT NULL CHECK (item BETWEEN 1 AND 10),
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 4),
        PRIMARY KEY (irls_id, item))""",
    *_append_only("irls_items"),
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1,)
"""``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1`` (0 = empty)."""
SCHEMA_VERSION: Final[int] = len(MIGRATIONS)


def create_private(path: Path) -> None:
    """Create the diary's directory (2770) and an empty diary file (0660, whatever the
    umask; SQLite gives -wal/-shm the file's mode). Existing ones keep their modes."""
    _create_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, DIARY_FILE_MODE)
        try:
            os.fchmod(fd, DIARY_FILE_MODE)
        finally:
            os.close(fd)


def _create_dir(folder: Path) -> None:
    with contextlib.suppress(FileExistsError):
        folder.mkdir()
        os.chmod(folder, DIARY_DIR_MODE)


def diary_exists(state_dir: Path) -> bool:
    """Whether ``state_dir`` holds a diary, in ``diary/`` or at the old place (which
    ``adopt_old_diary`` moves in when the diary is opened). Anything of the diary's name
    counts (a folder, a named pipe), so that opening it says what is wrong rather than
    a reader showing no entries; but not a file that holds no diary yet
    (``_holds_no_diary``), so that a reader shows no entries, as before it was made."""
    new, old = state_dir / DIARY_FILENAME, state_dir / OLD_DIARY_FILENAME
    return (os.path.lexists(new) and not _holds_no_diary(new)) or old.is_file()


def _holds_no_diary(path: Path) -> bool:
    """Whether ``path`` is a file with nothing in it yet: empty, or an SQLite database
    without a table and with nothing in a -wal or -journal beside it. A first open that
    fails on a full disk leaves one (SQLite's first page alone); the next open makes it
    the diary. Read as immutable: no lock, no -shm, nothing written (the disk may still
    be full). Anything else, a file that is not a database included, is False."""
    try:
        if not path.is_file() or _has_side_content(path):
            return False
        if path.stat().st_size == 0:
            return True
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
    except (OSError, sqlite3.Error):
        return False
    try:
        return bool(conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0)
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def adopt_old_diary(state_dir: Path) -> bool:
    """When there is no ``diary/diary.sqlite3`` but an old ``diary.sqlite3``, copy it
    into ``diary/`` with SQLite's backup API (what its -wal holds included; mode 0660)
    and rename the old file to ``diary.sqlite3.moved``; True when it did. The copy is
    complete before it takes the new name, so a crash leaves the old file as it was.
    Should the old file not be renamed (a state directory this user may not write),
    it stays where it is, already copied. Raises ``OSError`` or ``sqlite3.Error``."""
    path, old = state_dir / DIARY_FILENAME, state_dir / OLD_DIARY_FILENAME
    if path.exists() or not old.is_file():
        return False
    _create_dir(path.parent)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=".diary.", suffix=".adopting")
    temp = Path(name)
    try:
        os.fchmod(fd, DIARY_FILE_MODE)
        os.close(fd)
        _backup(old, temp)
        os.link(temp, path)  # never over a diary another process moved in meanwhile
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    _sync_folder(path.parent)
    try:
        os.replace(old, old.with_name(old.name + MOVED_SUFFIX))
    except OSError as exc:
        log.warning("diary: copied %s into %s but cannot rename it: %s", old, path, exc)
    else:
        log.warning("diary: moved %s into %s (the old file is kept as %s%s)",
                    old, path, old.name, MOVED_SUFFIX)  # fmt: skip
    return True


def _sync_folder(folder: Path) -> None:
    """The new name on disk before the old file is renamed away."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup(source: Path, target: Path) -> None:
    """Copy ``source`` (which must exist: never created here) into ``target``."""
    src = sqlite3.connect(f"{source.absolute().as_uri()}?mode=rw", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def connect_read_only(path: Path) -> sqlite3.Connection | None:
    """The diary at ``path`` opened to read only, or None when that cannot be done.

    ``mode=ro`` first; a reader of a WAL database must still make its ``-shm`` file,
    which a full or read-only disk refuses. Then, only with no ``-wal`` or ``-journal``
    holding anything beside it (all is in the main file), it is read as immutable: no
    locks, no side files, nothing written. None also for a file that is not a diary of
    this ``SCHEMA_VERSION`` (nothing is migrated here)."""
    if not path.is_file():  # a named pipe would make the open wait for ever
        return None
    uri = path.absolute().as_uri()
    conn = _connect_current(f"{uri}?mode=ro")
    if conn is None and not _has_side_content(path):
        conn = _connect_current(f"{uri}?mode=ro&immutable=1")
    return conn


def _connect_current(uri: str) -> sqlite3.Connection | None:
    """A connection to ``uri`` whose diary is of this schema version, else None."""
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error:
        return None
    try:
        if schema_version(conn) == SCHEMA_VERSION:
            return conn
    except sqlite3.Error:
        pass
    conn.close()
    return None


def _has_side_content(path: Path) -> bool:
    for suffix in ("-wal", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            if path.with_name(path.name + suffix).stat().st_size > 0:
                return True
    return False


def prepare(conn: sqlite3.Connection, path: Path) -> None:
    """Set the pragmas and migrate; raises DiaryStorageError or sqlite3.Error."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise DiaryStorageError(
            f"The symptom diary cannot use write-ahead logging (journal mode {mode}) ({path}).",
            path=path,
        )
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    _migrate(conn, path)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open diary (0 for an empty file)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone() if has_table else None
    return int(row[0]) if row is not None and row[0] is not None else 0


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise DiaryStorageError(
            f"The symptom diary was written by a newer nirpad (schema {version}; this "
            f"version knows up to {SCHEMA_VERSION}). Update nirpad ({path}).",
            path=path,
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for step in range(schema_version(conn), SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (?)", (step + 1,))
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
