"""The ledger read-only: what the course of treatment and the clinic may read.

Owns: opening ``<state_dir>/ledger.sqlite3`` read-only (``file:…?mode=ro``: never
created, never migrated, never written; a missing ledger is an empty record, one that
is not a file an error; an empty file, with no tables, is an error that says so and
what the controller's start will do with it, ``ledger_guard.empty_ledger_at_start``),
the sessions, faults and installs as frozen records, oldest first, and when the
schedule next allows a start under the controller's own rule (``schedule_rule``, used
by ``safety.start_guards`` too, so the two can never disagree), with the record's own
refusal that the controller's guards check before the schedule
(``ledger_events.record_problem``: lost, a clock jump not confirmed, the clock behind).

Does not own the ledger's schema or its writes (``safety.ledger``,
``safety.ledger_schema``) nor what the records mean for a course (``care``).
A session still running shows the dose of its newest checkpoint. A row that cannot be
read is skipped and counted in ``Records.damaged_rows``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Final, TypeVar

from profiles.schema import Profile
from safety.errors import LedgerError
from safety.faults import FAULT_MESSAGES, FaultCode, Outcome
from safety.ledger import LEDGER_FILENAME
from safety.ledger_events import counted_sessions, course_first_start, record_problem
from safety.ledger_guard import empty_ledger_at_start
from safety.ledger_rules import schedule_block
from safety.ledger_schema import (
    SCHEMA_VERSION,
    FaultRecord,
    InstallRecord,
    SessionRecord,
    fluence_from_json,
    ledger_error,
    schema_version,
)
from safety.limits import Limits

__all__ = [
    "FAULT_MESSAGES",
    "FaultCode",
    "FaultRecord",
    "InstallRecord",
    "LedgerError",
    "Outcome",
    "Records",
    "ScheduleRule",
    "SessionRecord",
    "read_records",
    "schedule_rule",
]

log = logging.getLogger(__name__)

_R = TypeVar("_R")
_READ: Final = "The treatment record cannot be read"
_CANNOT_MAKE_SIDE_FILES: Final = frozenset({1288, 1544})
"""SQLITE_READONLY_CANTINIT and SQLITE_READONLY_DIRECTORY (extended result codes)."""


@dataclass(frozen=True, slots=True)
class ScheduleRule:
    """The interval and weekly rules a start is held to (hours, sessions in 7 days)."""

    min_interval_h: float
    max_sessions_per_week: int


def schedule_rule(rx: Profile, limits: Limits) -> ScheduleRule:
    """The controller's schedule rule for ``rx``: the prescription tightened by the
    device's (site-tightened) limits: the longer interval, the fewer sessions."""
    return ScheduleRule(
        max(rx.min_interval_h, limits.min_interval_h),
        min(rx.sessions_per_week, limits.sessions_per_week_max),
    )


@dataclass(frozen=True, slots=True)
class Records:
    """What the ledger holds, oldest first; ``next_start_allowed_at`` (UTC) is None
    when the schedule allows a start now or no rule was asked about; ``record_problem``
    (with a rule) is why the record refuses any start whatever the schedule says, or None:
    a reader checks it first, as the controller does; ``course_first_start`` (with
    ``course_of``) is when that prescription's course began, or None."""

    sessions: tuple[SessionRecord, ...] = ()
    faults: tuple[FaultRecord, ...] = ()
    installs: tuple[InstallRecord, ...] = ()
    next_start_allowed_at: datetime | None = None
    record_problem: str | None = None
    course_first_start: datetime | None = None
    damaged_rows: int = 0


def read_records(
    state_dir: Path,
    wall_clock: Callable[[], datetime],
    rule: ScheduleRule | None = None,
    course_of: Profile | None = None,
) -> Records:
    """The ledger's records, read-only; with ``rule``, also when the schedule next
    allows a start as of ``wall_clock()`` (timezone-aware) and the record's own refusal
    then; with ``course_of``, when that prescription's course began (the start guard's
    reading, ``Ledger.first_session_at``). No ledger: empty records.
    Raises ``LedgerError`` for a ledger that cannot be read or has another schema, or
    that is not a file (a folder, a named pipe, a link to nothing), or in a folder that
    cannot be searched: never read as none."""
    path = state_dir / LEDGER_FILENAME
    if not _ledger_exists(path):
        return Records()
    if not path.is_file():  # never opened: SQLite's open would wait on a named pipe
        raise LedgerError(f"{_READ}: it is not a file ({path}).", path=str(path))
    with _read_only(path) as conn:
        _check_version(conn, path)
        damaged: list[int] = []
        sessions = _rows(conn, "sessions", SessionRecord.from_row, damaged)
        records = Records(
            sessions=tuple(_with_checkpoint(conn, s) for s in sessions),
            faults=tuple(_rows(conn, "faults", FaultRecord.from_row, damaged)),
            installs=tuple(_rows(conn, "installs", InstallRecord.from_row, damaged)),
        )
        if rule is not None:
            records = _with_start(records, conn, path, rule, wall_clock())
        if course_of is not None:
            since = datetime.combine(course_of.issued, time.min, UTC)
            first = course_first_start(conn, course_of.id, since)
            records = replace(records, course_first_start=first)
    if damaged:  # one line a read, not one a row; each reader says it in its own words
        log.info("%d damaged row(s) of %s skipped", len(damaged), path)
    return replace(records, damaged_rows=len(damaged))


def _with_start(
    records: Records, conn: sqlite3.Connection, path: Path, rule: ScheduleRule, now: datetime
) -> Records:
    """``records`` with when the schedule next allows a start and the record's refusal."""
    allowed = _next_start(conn, path, rule, now)  # first: it refuses a time without a zone
    problem = record_problem(conn, now.timestamp(), None)
    return replace(records, next_start_allowed_at=allowed, record_problem=problem)


def _ledger_exists(path: Path) -> bool:
    """Whether something of the ledger's name is there; a folder that cannot be searched
    (no permission) raises ``LedgerError``: never read as "no ledger", no sessions."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ledger_error(_READ, path, exc) from exc
    return True


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        conn = _connect_read_only(path)
    except sqlite3.Error as exc:
        raise ledger_error(_READ, path, exc) from exc
    with closing(conn):
        conn.row_factory = sqlite3.Row
        try:
            yield conn
        except sqlite3.Error as exc:
            raise ledger_error(_READ, path, exc) from exc


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """``mode=ro``; where that cannot work, ``immutable=1``.

    A reader of a WAL database must create its ``-shm`` file when the writer closed
    cleanly and removed it; a reader that may not write the directory (the caregiver's
    page under its unit) cannot, and SQLite says so with its own codes. Only then, and
    only with no ``-wal`` and no ``-journal`` file beside it (everything is in the main
    file), is it read as immutable: no locks, no side files, nothing written. Any other
    failure (a lock held too long, a hot journal, a damaged file) is reported."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        if not _may_read_immutable(path, exc):
            raise
        return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro&immutable=1", uri=True)
    return conn


def _may_read_immutable(path: Path, exc: sqlite3.Error) -> bool:
    """The reader only lacks the right to make the side files, and none is left."""
    if getattr(exc, "sqlite_errorcode", None) not in _CANNOT_MAKE_SIDE_FILES:
        return False
    return not any(path.with_name(path.name + s).exists() for s in ("-wal", "-journal"))


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a ledger of another schema; one with no tables at all is empty, not old:
    said so, with what the controller's start does with it."""
    version = schema_version(conn)
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
        raise LedgerError(
            f"{_READ}: its file is empty (a first opening cut short, or the file emptied); "
            f"{empty_ledger_at_start(path.parent)} ({path}).",
            path=str(path),
        )
    if version != SCHEMA_VERSION:
        raise LedgerError(
            f"{_READ}: it has schema {version} and this nirpad reads schema "
            f"{SCHEMA_VERSION}; the controller updates it when it starts ({path}).",
            path=str(path),
        )


def _rows(
    conn: sqlite3.Connection,
    table: str,
    build: Callable[[sqlite3.Row], _R],
    damaged: list[int],
) -> list[_R]:
    order = "started_at_s, id" if table == "sessions" else "at_s, id"
    records: list[_R] = []
    for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}"):
        try:
            records.append(build(row))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            damaged.append(int(row["id"]))
            log.debug("damaged %s row %s skipped: %s", table, row["id"], exc)
    return records


def _with_checkpoint(conn: sqlite3.Connection, record: SessionRecord) -> SessionRecord:
    """A running session with the dose of its newest checkpoint (at most seconds old)."""
    if record.ended_at is not None:
        return record
    row = conn.execute(
        "SELECT delivered_j_cm2, delivered_total_j_cm2 FROM checkpoints "
        "WHERE session_id = ? ORDER BY id DESC LIMIT 1",
        (record.id,),
    ).fetchone()
    if row is None:
        return record
    return replace(
        record,
        delivered_fluence_j_cm2=fluence_from_json(row[0]),
        delivered_fluence_total_j_cm2=float(row[1]),
    )


def _next_start(
    conn: sqlite3.Connection, path: Path, rule: ScheduleRule, now: datetime
) -> datetime | None:
    if now.utcoffset() is None:
        raise LedgerError(f"{_READ}: the clock gave a time without a zone ({now}).", path=str(path))
    try:
        recent = counted_sessions(conn, rule.max_sessions_per_week)
    except ValueError as exc:
        raise LedgerError(
            f"The treatment record is damaged: {exc} ({path}).", path=str(path)
        ) from exc
    blocked = schedule_block(
        recent, now.timestamp(), rule.min_interval_h, rule.max_sessions_per_week
    )
    return None if blocked is None else datetime.fromtimestamp(blocked.at_s, UTC)
