"""Record events that change how the ledger's rules count, and the SQL that reads them.

Owns: the event kinds (stable strings, stored in the ``events`` table), which of them
count as a session for the interval and weekly rules (a restore from the backup, a
reset by a caregiver, a confirmed clock: each may hide a session the record lost or
misdated, so each counts as one that ended at that moment), the clamp that a confirmed
clock puts on the sessions written before it, and the query of the newest counted
sessions with those applied. Never loosens a rule: every event only adds. Also the
record's own refusals, in words (``record_problem``: lost, a clock jump not confirmed,
the clock behind the newest record), read alike by the controller (``safety.ledger``)
and by the commands that read the record alone (``safety.records``).

Does not own the connection or the transactions (``safety.ledger``), nor when events
are written (``safety.ledger_guard``, ``safety.trusted_clock``, ``safety.core``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Final

from safety.ledger_rules import (
    RECORD_TIME_MAX_S,
    RECORD_TIME_MIN_S,
    Counted,
    format_time,
    is_record_time,
)
from safety.ledger_schema import utc

__all__ = [
    "COUNTS_AS_SESSION",
    "INTERVAL_SINCE",
    "EventKind",
    "EventRecord",
    "clock_behind_problem",
    "clock_jump_problem",
    "counted_sessions",
    "course_first_start",
    "damaged_row_problem",
    "history_size",
    "lost_problem",
    "record_problem",
]


class EventKind(StrEnum):
    LEDGER_RESTORED = "ledger_restored"
    LEDGER_LOST = "ledger_lost"
    LEDGER_RESET = "ledger_reset"
    CLOCK_JUMP = "clock_jump"
    CLOCK_CONFIRMED = "clock_confirmed"


COUNTS_AS_SESSION: Final = (
    EventKind.LEDGER_RESTORED,
    EventKind.LEDGER_RESET,
    EventKind.CLOCK_CONFIRMED,
)
_COUNTED_KINDS: Final = tuple(str(kind) for kind in COUNTS_AS_SESSION)
INTERVAL_SINCE: Final = {
    EventKind.LEDGER_RESTORED: "the record was restored from its backup",
    EventKind.LEDGER_RESET: "the record was reset",
    EventKind.CLOCK_CONFIRMED: "the clock was confirmed",
}
"""What the interval runs from, in the refusal's words, when one of these is the latest
end (``Counted.since``)."""


@dataclass(frozen=True, slots=True)
class EventRecord:
    id: int
    at: datetime
    kind: str
    detail: str
    upto_session_id: int | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> EventRecord:
        return cls(
            row["id"],
            utc(row["at_s"]),
            str(row["kind"]),
            str(row["detail"]),
            row["upto_session_id"],
        )


def _clamp(conn: sqlite3.Connection) -> tuple[float, int]:
    """(at_s, upto_session_id) of the newest confirmed clock; sessions up to that id are
    counted at most at that time. No confirmation: nothing is clamped."""
    row = conn.execute(
        "SELECT at_s, upto_session_id FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1",
        (str(EventKind.CLOCK_CONFIRMED),),
    ).fetchone()
    if row is None or row[1] is None:
        return 0.0, 0
    return float(row[0]), int(row[1])


_COUNTED: Final = "(delivered_total_j_cm2 > 0 OR ended_at_s IS NULL)"  # sessions_counted_by_start
_ENDED_CLAMPED: Final = (
    "CASE WHEN id <= :upto AND ended_at_s IS NOT NULL THEN MIN(ended_at_s, :at) ELSE ended_at_s END"
)
_KEPT_SQL: Final = (  # starts the clamp leaves as they are: newest first, along the index
    f"SELECT started_at_s, {_ENDED_CLAMPED}, id FROM sessions WHERE {_COUNTED} "
    "AND NOT (id <= :upto AND started_at_s > :at) ORDER BY started_at_s DESC LIMIT :n"
)
_MOVED_SQL: Final = (  # starts after a confirmed clock's time, written before it: at that time
    f"SELECT :at, {_ENDED_CLAMPED}, id FROM sessions WHERE {_COUNTED} "
    "AND id <= :upto AND started_at_s > :at ORDER BY id DESC LIMIT :n"
)


def counted_sessions(conn: sqlite3.Connection, limit: int) -> list[Counted]:
    """The newest ``limit`` counted sessions, newest first: real sessions (delivered
    something, or unfinished), with a confirmed clock's clamp applied, and every event
    that counts as a session (start = end = its time, named in ``INTERVAL_SINCE``).
    Raises ``ValueError`` for a row whose times are not numbers (a damaged row)."""
    at_s, upto_id = _clamp(conn)
    clamp = {"upto": upto_id, "at": at_s, "n": limit}
    sessions = (
        conn.execute(_KEPT_SQL, clamp).fetchall() + conn.execute(_MOVED_SQL, clamp).fetchall()
    )
    marks = ",".join("?" * len(_COUNTED_KINDS))
    events = conn.execute(
        f"SELECT at_s, kind, id FROM events WHERE kind IN ({marks}) ORDER BY at_s DESC LIMIT ?",
        (*_COUNTED_KINDS, limit),
    ).fetchall()
    rows = [
        Counted(_time_s(r[0], f"session {r[2]}"), _end_s(r[1], f"session {r[2]}")) for r in sessions
    ]
    for at, kind, event_id in events:
        at_s = _time_s(at, f"event {event_id}")
        rows.append(Counted(at_s, at_s, INTERVAL_SINCE[EventKind(kind)]))
    rows.sort(key=lambda row: row.started_at_s, reverse=True)
    return rows[:limit]


def _time_s(value: object, what: str) -> float:
    """A counted row's time; ``ValueError`` for one that is not a number, or is one no
    clock reads (``is_record_time``)."""
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and is_record_time(float(value))
    ):
        return float(value)
    raise ValueError(f"{what} has an unreadable time ({value!r})")


def _end_s(value: object, what: str) -> float | None:
    return None if value is None else _time_s(value, what)


def lost_problem(conn: sqlite3.Connection) -> str | None:
    """Why the record cannot be trusted: it was found lost and nobody reset it yet."""
    row = conn.execute(
        "SELECT kind, detail FROM events WHERE kind IN (?, ?) ORDER BY id DESC LIMIT 1",
        (str(EventKind.LEDGER_LOST), str(EventKind.LEDGER_RESET)),
    ).fetchone()
    if row is None or row[0] != EventKind.LEDGER_LOST:
        return None
    return (
        f"The treatment record was lost ({row[1]}) and no usable backup was found, so the "
        "pad cannot know when the last session was. A caregiver must run "
        "`nirpad ledger reset`; the first session is then allowed one full interval later."
    )


def clock_jump_problem(conn: sqlite3.Connection) -> str | None:
    """Why no session may start: the clock jumped ahead and nobody confirmed it since.

    Read from the record, so a restart (which trusts the wall clock it finds) does not
    forget a jump; ``nirpad clock confirm`` (which counts as a session) clears it."""
    jump = _newest_id(conn, EventKind.CLOCK_JUMP)
    if jump == 0 or jump < _newest_id(conn, EventKind.CLOCK_CONFIRMED):
        return None
    return (
        "The clock moved ahead while nirpad was running. A caregiver checks the date and "
        "time and confirms them (nirpad clock confirm); the next session then waits one "
        "full interval."
    )


def clock_behind_problem(conn: sqlite3.Connection, now_s: float, tz: tzinfo | None) -> str | None:
    """Why the wall clock cannot be trusted: it reads before the newest record (set back,
    or a Pi without an RTC that booted at an old date); times shown in ``tz``."""
    newest_s = float(conn.execute("SELECT at_s FROM newest_entry").fetchone()[0])
    if now_s >= newest_s:
        return None
    return (
        f"The clock reads {format_time(now_s, tz, seconds=True)} which is before the last "
        f"record ({format_time(newest_s, tz, seconds=True)}). Set the date and time, then "
        f"try again."
    )


def record_problem(conn: sqlite3.Connection, now_s: float, tz: tzinfo | None) -> str | None:
    """The first reason the record itself refuses any start, or None: lost and not reset,
    a clock jump not confirmed, the clock behind the newest record. Each needs a person
    to act; waiting for the schedule never clears one."""
    return lost_problem(conn) or clock_jump_problem(conn) or clock_behind_problem(conn, now_s, tz)


def course_first_start(
    conn: sqlite3.Connection, profile_id: str, since: datetime
) -> datetime | None:
    """When the first counted session of ``profile_id`` at or after ``since`` began (UTC),
    or None: the start of a prescription's course. A session counts once it delivered
    light, or while it is still open."""
    row = conn.execute(
        "SELECT MIN(started_at_s) FROM sessions WHERE profile_id = ? "
        "AND started_at_s >= ? AND (delivered_total_j_cm2 > 0 OR ended_at_s IS NULL)",
        (profile_id, since.timestamp()),
    ).fetchone()
    return None if row[0] is None else utc(float(row[0]))


def _newest_id(conn: sqlite3.Connection, kind: EventKind) -> int:
    row = conn.execute("SELECT MAX(id) FROM events WHERE kind = ?", (str(kind),)).fetchone()
    return int(row[0] or 0)


def history_size(conn: sqlite3.Connection) -> tuple[int, int, int, int]:
    """The newest session, event, install and fault ids: a copy with any of them larger
    holds records this one lacks."""
    row = conn.execute(
        "SELECT (SELECT IFNULL(MAX(id), 0) FROM sessions), (SELECT IFNULL(MAX(id), 0) FROM "
        "events), (SELECT IFNULL(MAX(id), 0) FROM installs), (SELECT IFNULL(MAX(id), 0) FROM "
        "faults)"
    ).fetchone()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


_NUMBER: Final = "('real', 'integer')"


def damaged_row_problem(conn: sqlite3.Connection) -> str | None:
    """A session whose times or dose are not numbers (SQLite stores any type in any
    column, and ``integrity_check`` does not look at values), or whose times no clock
    reads (``is_record_time``), or None."""
    row = conn.execute(
        f"SELECT id FROM sessions WHERE typeof(started_at_s) NOT IN {_NUMBER} "
        f"OR (ended_at_s IS NOT NULL AND typeof(ended_at_s) NOT IN {_NUMBER}) "
        f"OR typeof(delivered_total_j_cm2) NOT IN {_NUMBER} "
        "OR started_at_s NOT BETWEEN :lo AND :hi OR ended_at_s NOT BETWEEN :lo AND :hi LIMIT 1",
        {"lo": RECORD_TIME_MIN_S, "hi": RECORD_TIME_MAX_S},
    ).fetchone()
    return None if row is None else f"session {row[0]} has an unreadable time or dose"
