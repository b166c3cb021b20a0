"""The dose ledger's on-disk form: schema, migrations, connection setup, records.

Owns: the SQL of every table and index, the ``schema_version`` table and the ordered
``MIGRATIONS`` (one entry per version step, applied in one transaction each), the
connection pragmas (WAL, ``synchronous=FULL``, foreign keys), the integrity check on
open, the frozen record types handed to readers, and turning SQLite's error texts into
reasons a person can read.

Does not own: what is written when, or the schedule rules (``safety.ledger``).

Times are stored as unix seconds (UTC, ``REAL``), so nothing depends on the local zone
or daylight saving. Per-channel fluences are stored as JSON objects keyed as the
caller keys them (``profiles`` keys by wavelength in nm).
"""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from safety.errors import LedgerDamagedError, LedgerError
from safety.faults import Outcome
from safety.ledger_rules import is_record_time

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "CheckpointRecord",
    "FaultRecord",
    "InstallRecord",
    "SessionRecord",
    "fluence_from_json",
    "fluence_to_json",
    "ledger_error",
    "prepare",
    "schema_version",
]

_V1: Final[tuple[str, ...]] = (
    """CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        profile_id TEXT NOT NULL,
        profile_sha256 TEXT NOT NULL,
        started_at_s REAL NOT NULL,
        ended_at_s REAL,
        planned_duration_s REAL,
        planned_j_cm2 TEXT NOT NULL,
        planned_total_j_cm2 REAL NOT NULL,
        delivered_j_cm2 TEXT NOT NULL DEFAULT '{}',
        delivered_total_j_cm2 REAL NOT NULL DEFAULT 0,
        outcome TEXT,
        fault_code TEXT)""",
    # The budget/interval query: newest counted sessions first (partial index).
    """CREATE INDEX sessions_counted_by_start ON sessions(started_at_s)
        WHERE delivered_total_j_cm2 > 0 OR ended_at_s IS NULL""",
    "CREATE INDEX sessions_unfinished ON sessions(id) WHERE ended_at_s IS NULL",
    """CREATE TABLE checkpoints (
        id INTEGER PRIMARY KEY,
        session_id INTEGER NOT NULL REFERENCES sessions(id),
        at_s REAL NOT NULL,
        elapsed_s REAL NOT NULL,
        delivered_j_cm2 TEXT NOT NULL,
        delivered_total_j_cm2 REAL NOT NULL)""",
    "CREATE INDEX checkpoints_by_session ON checkpoints(session_id)",
    """CREATE TABLE faults (
        id INTEGER PRIMARY KEY,
        at_s REAL NOT NULL,
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        session_id INTEGER REFERENCES sessions(id))""",
    """CREATE TABLE installs (
        id INTEGER PRIMARY KEY,
        at_s REAL NOT NULL,
        profile_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        path TEXT NOT NULL)""",
    # The newest wall time ever written, kept in the same transaction as each write.
    "CREATE TABLE newest_entry (at_s REAL NOT NULL)",
    "INSERT INTO newest_entry VALUES (-1e308)",
    # writable_refusal() inserts here and rolls back.
    "CREATE TABLE write_probe (data BLOB)",
)

_V2: Final[tuple[str, ...]] = (
    # Record events that change how the rules count: a restore from the backup, a lost
    # record and its reset by a caregiver, a clock jump seen while running, a clock
    # confirmed by a caregiver. ``detail`` is for people; ``upto_session_id`` is the
    # newest session id when the event was written (a confirmed clock clamps the times
    # of the sessions up to it).
    """CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at_s REAL NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        upto_session_id INTEGER)""",
    "CREATE INDEX events_by_kind ON events(kind, id)",
)

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_V1, _V2)
"""``MIGRATIONS[i]`` takes the schema from version ``i`` to ``i + 1`` (0 = empty)."""
SCHEMA_VERSION: Final[int] = len(MIGRATIONS)

_DAMAGED: Final = "the file is damaged"
INTEGRITY_CHECK_ERRORS: Final = 5
"""How many problems ``PRAGMA integrity_check`` reports at most (it stops there)."""
_REASONS: Final[tuple[tuple[str, str], ...]] = (
    ("disk is full", "the disk is full"),
    ("readonly", "the storage is read-only"),
    ("read-only", "the storage is read-only"),
    ("locked", "another program is using it"),
    ("busy", "another program is using it"),
    ("not a database", _DAMAGED),
    ("malformed", _DAMAGED),
    ("corrupt", _DAMAGED),
    ("unable to open", "it cannot be opened (missing folder or no permission)"),
    ("disk i/o error", "the storage reported an error"),
    ("permission denied", "this user has no permission"),
)


def reason_of(exc: BaseException) -> str:
    """A person's words for what went wrong in SQLite or the file system."""
    words = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    text = words.lower()
    for needle, reason in _REASONS:
        if needle in text:
            return reason
    return words


def ledger_error(action: str, path: object, exc: BaseException) -> LedgerError:
    """``LedgerError("<action>: <reason> (<path>).")`` for an SQLite or OS error
    (``LedgerDamagedError`` when the reason is a damaged file)."""
    reason = reason_of(exc)
    kind = LedgerDamagedError if reason == _DAMAGED else LedgerError
    return kind(f"{action}: {reason} ({path}).", path=str(path))


def prepare(conn: sqlite3.Connection, path: object) -> None:
    """Set the pragmas, check integrity and migrate; raises LedgerError or sqlite3.Error."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise LedgerError(
            f"The treatment record cannot be opened: it cannot use write-ahead logging "
            f"(journal mode {mode}) ({path}).",
            path=str(path),
        )
    conn.execute("PRAGMA synchronous=FULL")  # a committed checkpoint survives a power cut
    conn.execute("PRAGMA foreign_keys=ON")
    # integrity_check, not quick_check: quick_check does not compare indexes with their
    # tables, so a broken index (a wrong answer to the schedule query) went unnoticed.
    # It reads every page: about 1 s per 100 MB here; a year of use is about 5 MB.
    problems = [row[0] for row in conn.execute(f"PRAGMA integrity_check({INTEGRITY_CHECK_ERRORS})")]
    if problems != ["ok"]:
        raise LedgerDamagedError(
            f"The treatment record is damaged ({path}): {'; '.join(map(str, problems))}.",
            path=str(path),
        )
    _migrate(conn, path)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open ledger (0 for an empty file)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone() if has_table else None
    return int(row[0]) if row is not None and row[0] is not None else 0


def _migrate(conn: sqlite3.Connection, path: object) -> None:
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"The treatment record was written by a newer nirpad (schema {version}; this "
            f"version knows up to {SCHEMA_VERSION}). Update nirpad ({path}).",
            path=str(path),
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


def fluence_to_json(fluence_j_cm2: dict[int, float], path: object) -> tuple[str, float]:
    """The JSON text and the total of a per-channel fluence; refuses NaN, inf, < 0."""
    for key, value in fluence_j_cm2.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise LedgerError(
                f"Refusing to record fluence {value!r} J/cm² for channel {key}: "
                f"it must be a finite number, 0 or more ({path}).",
                path=str(path),
            )
    data = {str(int(k)): float(v) for k, v in sorted(fluence_j_cm2.items())}
    return json.dumps(data, separators=(",", ":")), math.fsum(data.values())


def fluence_from_json(text: str) -> dict[int, float]:
    return {int(k): float(v) for k, v in json.loads(text).items()}


def utc(at_s: float) -> datetime:
    """A record's time (unix seconds) as a UTC datetime; ``ValueError`` for a number
    that cannot be one (``is_record_time``): the row is damaged."""
    if not is_record_time(at_s):
        raise ValueError(f"{at_s!r} s is not a time a clock reads")
    return datetime.fromtimestamp(at_s, UTC)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One session. ``ended_at``/``outcome`` are None while it is unfinished."""

    id: int
    profile_id: str
    profile_sha256: str
    started_at: datetime
    ended_at: datetime | None
    planned_duration_s: float | None
    planned_fluence_j_cm2: dict[int, float]
    planned_fluence_total_j_cm2: float
    delivered_fluence_j_cm2: dict[int, float]
    delivered_fluence_total_j_cm2: float
    outcome: Outcome | None
    fault_code: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> SessionRecord:
        return cls(
            id=row["id"],
            profile_id=row["profile_id"],
            profile_sha256=row["profile_sha256"],
            started_at=utc(row["started_at_s"]),
            ended_at=None if row["ended_at_s"] is None else utc(row["ended_at_s"]),
            planned_duration_s=row["planned_duration_s"],
            planned_fluence_j_cm2=fluence_from_json(row["planned_j_cm2"]),
            planned_fluence_total_j_cm2=row["planned_total_j_cm2"],
            delivered_fluence_j_cm2=fluence_from_json(row["delivered_j_cm2"]),
            delivered_fluence_total_j_cm2=row["delivered_total_j_cm2"],
            outcome=None if row["outcome"] is None else Outcome(row["outcome"]),
            fault_code=row["fault_code"],
        )


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    session_id: int
    at: datetime
    elapsed_s: float
    delivered_fluence_j_cm2: dict[int, float]
    delivered_fluence_total_j_cm2: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> CheckpointRecord:
        return cls(
            session_id=row["session_id"],
            at=utc(row["at_s"]),
            elapsed_s=row["elapsed_s"],
            delivered_fluence_j_cm2=fluence_from_json(row["delivered_j_cm2"]),
            delivered_fluence_total_j_cm2=row["delivered_total_j_cm2"],
        )


@dataclass(frozen=True, slots=True)
class FaultRecord:
    id: int
    at: datetime
    code: str
    message: str
    session_id: int | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> FaultRecord:
        return cls(row["id"], utc(row["at_s"]), row["code"], row["message"], row["session_id"])


@dataclass(frozen=True, slots=True)
class InstallRecord:
    id: int
    at: datetime
    profile_id: str
    sha256: str
    path: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> InstallRecord:
        return cls(row["id"], utc(row["at_s"]), row["profile_id"], row["sha256"], row["path"])
