"""The dose ledger: what was delivered, when, and whether another session may start.

Owns: ``<state_dir>/ledger.sqlite3`` (SQLite, WAL, ``synchronous=FULL``) and every write
to it: sessions, dose checkpoints, faults and profile installs, each in one short
transaction. It answers the rules that must survive a reboot: the minimum interval and
the weekly budget (``schedule_refusal``), the record's own refusals (``record_refusal``:
lost, a clock jump not confirmed, a wall clock behind the newest record), and whether
the ledger can be written at all (``writable_refusal``). After a crash it closes
unfinished sessions as power-lost and counts them high, never low
(``reconcile_after_crash``).

Does not own: when to checkpoint or what the dose is (``dose``/``core``), the schema
and record types (``safety.ledger_schema``), or showing refusals (``firmware_host``).
Every SQLite or OS error leaves here as ``LedgerError`` with a readable message.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Final, Self, TypeVar

from safety.errors import LedgerError
from safety.faults import Outcome
from safety.ledger_backup import LedgerBackup
from safety.ledger_events import (
    EventKind,
    EventRecord,
    clock_behind_problem,
    counted_sessions,
    course_first_start,
    damaged_row_problem,
    history_size,
    lost_problem,
    record_problem,
)
from safety.ledger_rules import Blocked, format_time, power_lost_dose, schedule_block
from safety.ledger_schema import (
    CheckpointRecord,
    FaultRecord,
    InstallRecord,
    SessionRecord,
    fluence_from_json,
    fluence_to_json,
    ledger_error,
    prepare,
)
from safety.limits import LEASE_MAX_MS

__all__ = [
    "BACKUP_FILENAME",
    "LEDGER_FILENAME",
    "CheckpointRecord",
    "FaultRecord",
    "InstallRecord",
    "Ledger",
    "LedgerConnection",
    "SessionRecord",
]

log = logging.getLogger(__name__)

LEDGER_FILENAME: Final = "ledger.sqlite3"
BACKUP_FILENAME: Final = "ledger.backup.sqlite3"
"""The backup beside the ledger, rewritten after each session's end, each install and
each record event (``Ledger.backup_now``)."""
LEDGER_FILE_MODE: Final = 0o640
"""Owner read-write, group read (a caregiver's group), others nothing."""
MIN_FREE_BYTES: Final = 4 * 1024 * 1024
"""Below this much free space ``writable_refusal`` refuses a start, naming this floor and
what is free (one session writes about 40 kB of checkpoints, the WAL and its
checkpointing need room too). "The disk is full" is kept for a write that failed so."""
_PROBE_BYTES: Final = 64 * 1024
_LEASE_MAX_S: Final = LEASE_MAX_MS / 1000.0


_R = TypeVar("_R")


def read_summary(conn: sqlite3.Connection) -> tuple[float, int]:
    """(newest record's time, newest session id or 0) of an open ledger database."""
    newest_s = float(conn.execute("SELECT at_s FROM newest_entry").fetchone()[0])
    last_id = conn.execute("SELECT MAX(id) FROM sessions").fetchone()[0]
    return newest_s, int(last_id or 0)


def create_private(path: Path) -> None:
    """Create an empty ledger file readable by owner and group only (health data).

    SQLite gives its -wal and -shm files the database file's mode, so they follow.
    An existing file keeps the mode it has."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, LEDGER_FILE_MODE))


class LedgerConnection(sqlite3.Connection):
    """The ledger's SQLite connection: a plain one, whose methods tests can replace.

    ``Ledger.open`` takes the class to connect with (``connection``). A test rig gives a
    subclass of its own, through ``SafetyCore.connect`` (``ledger_connection``), to
    inject what the storage can do to the ledger: a full disk, or a process that dies
    (its connections dropped without another write)."""


class Ledger:
    """The open ledger. Use ``Ledger.open``; close it (or use ``with``)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        wall_clock: Callable[[], datetime],
        display_tz: tzinfo | None,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self._wall_clock = wall_clock
        self._display_tz = display_tz
        self.damaged_rows = 0
        """Rows the readers skipped because they could not be read (see ``_records``)."""
        self._last_failure: str | None = None
        self._failures_since = 0
        self._backups = LedgerBackup(path, (path.parent / BACKUP_FILENAME,))

    @classmethod
    def open(
        cls,
        state_dir: Path,
        wall_clock: Callable[[], datetime],
        *,
        display_tz: tzinfo | None = None,
        busy_timeout_s: float = 2.0,
        connection: type[sqlite3.Connection] = LedgerConnection,
    ) -> Ledger:
        """Open (creating and migrating if needed) the ledger in ``state_dir``.

        ``wall_clock`` returns timezone-aware UTC; ``display_tz`` is the zone of the
        times in messages (None: the system's local zone); ``connection`` is the class
        SQLite connects with (see ``LedgerConnection``). Raises ``LedgerError`` if the
        file is unreadable, damaged, locked or from a newer version.
        """
        path = state_dir / LEDGER_FILENAME
        action = "The treatment record cannot be opened"
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            create_private(path)
            conn = sqlite3.connect(
                path, timeout=busy_timeout_s, isolation_level=None, factory=connection
            )
        except (OSError, sqlite3.Error) as exc:
            raise ledger_error(action, path, exc) from exc
        try:
            try:
                prepare(conn, path)
            except sqlite3.Error as exc:
                raise ledger_error(action, path, exc) from exc
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        log.info("ledger open at %s", path)
        return cls(conn, path, wall_clock, display_tz)

    def close(self) -> None:
        """Wait for the backups asked for, then close the connection."""
        self._backups.wait()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"The treatment record is closed ({self.path}).", path=str(self.path))
        return self._conn

    def _now_s(self) -> float:
        return self._timestamp(self._wall_clock())

    def _timestamp(self, at: datetime) -> float:
        """``at`` (a reading of the wall clock) in unix seconds; one without a zone
        raises ``LedgerError``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise LedgerError(
                f"The wall clock gave a time without a time zone ({at}); the ledger "
                f"needs UTC ({self.path}).",
                path=str(self.path),
            )
        return at.timestamp()

    def _at_s(self, at: datetime | None) -> tuple[float, float]:
        """(a record's time, the newest record's time after it): ``at``, or now when it is
        None. A record written late (kept while the disk was full) keeps the time it
        happened; the newest record's time takes the later of that and now, so a wall
        clock set back in between still reads as behind the record."""
        now_s = self._now_s()
        at_s = now_s if at is None else self._timestamp(at)
        return at_s, max(now_s, at_s)

    def _log_write_failure(self, what: str, exc: sqlite3.Error) -> None:
        """The first failure of a kind is an error line; the same failure again (records
        kept and retried every second while a disk is full) is counted, and the count
        is logged once writes work again."""
        text = str(exc)
        if text != self._last_failure:
            self._last_failure, self._failures_since = text, 0
            log.error("ledger write failed (%s): %s", what, exc)
        else:
            self._failures_since += 1

    def _log_write_success(self) -> None:
        if self._last_failure is not None:
            log.info(
                "ledger writes work again (%d more failures of: %s)",
                self._failures_since,
                self._last_failure,
            )
            self._last_failure, self._failures_since = None, 0

    @contextlib.contextmanager
    def _write(self, what: str, now_s: float) -> Iterator[sqlite3.Connection]:
        """One short transaction; any SQLite error becomes ``LedgerError``."""
        conn = self._db()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("UPDATE newest_entry SET at_s = MAX(at_s, ?)", (now_s,))
                conn.execute("COMMIT")
                self._log_write_success()
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            self._log_write_failure(what, exc)
            raise ledger_error(
                f"The treatment record could not save {what}", self.path, exc
            ) from exc

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        conn = self._db()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise ledger_error(
                f"The treatment record could not read {what}", self.path, exc
            ) from exc

    def _records(
        self, build: Callable[[sqlite3.Row], _R], rows: list[sqlite3.Row], what: str
    ) -> list[_R]:
        """Records from rows; a damaged row is skipped, counted in ``damaged_rows`` and
        logged, so one bad row never stops a reader (the schedule refuses on its own)."""
        records: list[_R] = []
        for row in rows:
            try:
                records.append(build(row))
            except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
                self.damaged_rows += 1
                log.error("damaged %s row %s skipped: %s", what, row["id"], exc)
        return records

    def _fmt(self, at_s: float, *, seconds: bool = False) -> str:
        return format_time(at_s, self._display_tz, seconds=seconds)

    # -- writes ------------------------------------------------------------------

    def begin_session(
        self,
        profile_id: str,
        profile_sha256: str,
        planned_fluence_j_cm2: dict[int, float],
        *,
        planned_duration_s: float | None = None,
    ) -> int:
        """Record a session's start; returns its id. ``planned_duration_s`` lets a crash
        be counted at the plan's average rate (without it: the hard maximum rate)."""
        now_s = self._now_s()
        planned_json, planned_total = fluence_to_json(planned_fluence_j_cm2, self.path)
        with self._write("the session start", now_s) as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (profile_id, profile_sha256, started_at_s, "
                "planned_duration_s, planned_j_cm2, planned_total_j_cm2) VALUES (?,?,?,?,?,?)",
                (
                    profile_id,
                    profile_sha256,
                    now_s,
                    planned_duration_s,
                    planned_json,
                    planned_total,
                ),
            )
        session_id = cursor.lastrowid
        assert session_id is not None  # an INSERT into a rowid table always sets it
        log.info("session %d begun (profile %s)", session_id, profile_id)
        return session_id

    def checkpoint(
        self, session_id: int, delivered_fluence_j_cm2: dict[int, float], elapsed_s: float
    ) -> None:
        """Record the dose delivered so far (call at least every 5 s while treating)."""
        now_s = self._now_s()
        delivered_json, total = fluence_to_json(delivered_fluence_j_cm2, self.path)
        with self._write("a dose checkpoint", now_s) as conn:
            conn.execute(
                "INSERT INTO checkpoints (session_id, at_s, elapsed_s, delivered_j_cm2, "
                "delivered_total_j_cm2) VALUES (?,?,?,?,?)",
                (session_id, now_s, elapsed_s, delivered_json, total),
            )

    def end_session(
        self,
        session_id: int,
        outcome: Outcome,
        delivered_fluence_j_cm2: dict[int, float],
        fault_code: str | None = None,
        *,
        ended_at: datetime | None = None,
    ) -> None:
        """Close an open session with its outcome and final delivered dose.

        ``ended_at`` is when the light went off, read from this ledger's wall clock when
        the end was decided (None: now): an end kept while the disk was full is written
        at that time, not when the write finally succeeds. The end is never before the
        session's start or its last checkpoint: a wall clock set back during the session
        would give it a negative duration (and the clinic's FHIR period an end before
        its start); the later end only makes the next interval wait longer."""
        end_s, newest_s = self._at_s(ended_at)
        delivered_json, total = fluence_to_json(delivered_fluence_j_cm2, self.path)
        with self._write("the session end", newest_s) as conn:
            ended_at_s = max(end_s, _last_known_s(conn, session_id))
            self._close_session(
                conn, session_id, ended_at_s, outcome, delivered_json, total, fault_code
            )
        log.info("session %d ended: %s, %.3f J/cm²", session_id, outcome, total)
        self.backup_now()

    def add_after_close(self, session_id: int, delivered_fluence_j_cm2: dict[int, float]) -> None:
        """Raise a closed session's delivered dose to ``delivered_fluence_j_cm2``: light its
        board reported after the close (``safety.after_close``). A row that already holds
        as much is left as it is; a figure is never lowered. No closed row of that id
        (the ledger was replaced): logged as an error, not raised, so the records kept
        behind it are not held up for ever."""
        now_s = self._now_s()
        delivered_json, total = fluence_to_json(delivered_fluence_j_cm2, self.path)
        with self._write("the light after a session's end", now_s) as conn:
            row = conn.execute(
                "SELECT delivered_total_j_cm2 FROM sessions "
                "WHERE id = ? AND ended_at_s IS NOT NULL",
                (session_id,),
            ).fetchone()
            if row is not None and row[0] < total:
                conn.execute(
                    "UPDATE sessions SET delivered_j_cm2 = ?, delivered_total_j_cm2 = ? "
                    "WHERE id = ?",
                    (delivered_json, total, session_id),
                )
        if row is None:  # never retried: it would hold up every record kept behind it
            log.error(
                "session %d is not a closed session of %s: the light after its end "
                "(%.4f J/cm²) is not recorded",
                session_id,
                self.path,
                total,
            )
            return
        self.backup_now()

    def _close_session(
        self,
        conn: sqlite3.Connection,
        session_id: int,
        ended_at_s: float,
        outcome: Outcome,
        delivered_json: str,
        total: float,
        fault_code: str | None,
    ) -> None:
        cursor = conn.execute(
            "UPDATE sessions SET ended_at_s = ?, outcome = ?, delivered_j_cm2 = ?, "
            "delivered_total_j_cm2 = ?, fault_code = ? WHERE id = ? AND ended_at_s IS NULL",
            (ended_at_s, Outcome(outcome).value, delivered_json, total, fault_code, session_id),
        )
        if cursor.rowcount != 1:
            raise LedgerError(
                f"Session {session_id} is not open in the treatment record ({self.path}).",
                path=str(self.path),
            )

    @property
    def backup_paths(self) -> tuple[Path, ...]:
        """Where ``backup_now`` copies the ledger (the opener may add a second place)."""
        return self._backups.places

    @backup_paths.setter
    def backup_paths(self, places: tuple[Path, ...]) -> None:
        self._backups.places = places

    def backup_now(self) -> None:
        """Copy the ledger to each of ``backup_paths`` on a worker thread (never waits,
        never raises: the record itself was saved; a failed copy is logged and the
        previous backup stays). ``safety.ledger_backup``."""
        self._backups.request()

    def flush_backups(self) -> None:
        """Wait until the copies asked for so far are written."""
        self._backups.wait()

    def record_fault(
        self,
        code: str,
        message: str,
        session_id: int | None = None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Record a fault at ``at``, when it latched (None: now): a fault row kept while
        the disk was full is written at that time, not when the write succeeds."""
        at_s, newest_s = self._at_s(at)
        with self._write("a fault", newest_s) as conn:
            conn.execute(
                "INSERT INTO faults (at_s, code, message, session_id) VALUES (?,?,?,?)",
                (at_s, str(code), message, session_id),
            )

    def record_event(self, kind: EventKind, detail: str, *, backup: bool = True) -> None:
        """Append an event (``safety.ledger_events``) with the newest session id; then back
        up, unless ``backup`` is False (the loop's own events, which may come while
        treating: the next session's end backs them up)."""
        now_s = self._now_s()
        with self._write(f"the event {kind}", now_s) as conn:
            self._insert_event(conn, now_s, kind, detail)
        if backup:
            self.backup_now()

    @staticmethod
    def _insert_event(conn: sqlite3.Connection, now_s: float, kind: EventKind, detail: str) -> None:
        conn.execute(
            "INSERT INTO events (at_s, kind, detail, upto_session_id) "
            "VALUES (?, ?, ?, (SELECT MAX(id) FROM sessions))",
            (now_s, str(kind), detail),
        )

    def confirm_clock(self, detail: str) -> None:
        """A caregiver confirms the clock is right now, after it was set too far ahead.

        Never shortens an interval: the confirmation counts as a session ending now, and
        every session written before it is counted at most at this time; the newest
        record's time is set to now, so the clock is no longer "behind the last record".
        """
        now_s = self._now_s()
        with self._write("the clock confirmation", now_s) as conn:
            self._insert_event(conn, now_s, EventKind.CLOCK_CONFIRMED, detail)
            conn.execute("UPDATE newest_entry SET at_s = ?", (now_s,))
        self.backup_now()
        log.info("clock confirmed at %s: %s", self._fmt(now_s), detail)

    def summary(self) -> tuple[float, int]:
        """(newest record's time, newest session id or 0): to compare with a backup."""
        with self._read("the newest record") as conn:
            return read_summary(conn)

    def record_install(self, profile_id: str, sha256: str, path: str) -> None:
        now_s = self._now_s()
        with self._write("the profile install", now_s) as conn:
            conn.execute(
                "INSERT INTO installs (at_s, profile_id, sha256, path) VALUES (?,?,?,?)",
                (now_s, profile_id, sha256, str(path)),
            )
        self.backup_now()

    # -- recovery ----------------------------------------------------------------

    def reconcile_after_crash(self, checkpoint_interval_s: float = 5.0) -> list[int]:
        """Close every unfinished session as power-lost; returns their ids.

        Delivered = last checkpoint + (one checkpoint interval + one maximum lease, the
        time the board may keep emitting after the host dies) at the higher of the
        plan's average rate and the rate between the last two checkpoints, capped at
        the plan but never below the last checkpoint. Call only at start-up, before
        any session of this run begins.
        """
        if not (math.isfinite(checkpoint_interval_s) and checkpoint_interval_s > 0):
            raise ValueError(f"checkpoint_interval_s must be > 0, not {checkpoint_interval_s}")
        now_s = self._now_s()
        with self._read("unfinished sessions") as conn:
            rows = conn.execute("SELECT id FROM sessions WHERE ended_at_s IS NULL ORDER BY id")
            unfinished = [int(row[0]) for row in rows]
        for session_id in unfinished:
            with self._write("a power-lost session", now_s) as conn:
                self._close_power_lost(
                    conn, session_id, checkpoint_interval_s + _LEASE_MAX_S, now_s
                )
            log.warning("session %d closed as power-lost after a crash", session_id)
        return unfinished

    def _close_power_lost(
        self, conn: sqlite3.Connection, session_id: int, extra_s: float, now_s: float
    ) -> None:
        session = conn.execute(
            "SELECT planned_duration_s, planned_j_cm2 FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        last_two = conn.execute(
            "SELECT elapsed_s, delivered_j_cm2 FROM checkpoints WHERE session_id = ? "
            "ORDER BY id DESC LIMIT 2",
            (session_id,),
        ).fetchall()
        checkpoints = [(row[0], fluence_from_json(row[1])) for row in last_two]
        planned = fluence_from_json(session[1])
        delivered = power_lost_dose(planned, session[0], checkpoints, extra_s)
        last_known_s = _last_known_s(conn, session_id)
        ended_at_s = max(last_known_s, min(now_s, last_known_s + extra_s))
        delivered_json, total = fluence_to_json(delivered, self.path)
        self._close_session(
            conn, session_id, ended_at_s, Outcome.POWER_LOST, delivered_json, total, None
        )

    # -- refusals ----------------------------------------------------------------

    def schedule_refusal(
        self, min_interval_h: float, max_sessions_per_week: int, now_s: float | None = None
    ) -> str | None:
        """Why a session may not start now by the interval or weekly rule, or None.

        ``now_s`` (unix seconds) replaces the wall clock's now: the controller passes its
        trusted time, which never runs ahead of its monotonic clock."""
        blocked = self._schedule(min_interval_h, max_sessions_per_week, now_s)
        return None if blocked is None else blocked.message

    def next_start_allowed_at(
        self, min_interval_h: float, max_sessions_per_week: int, now_s: float | None = None
    ) -> datetime | None:
        """When the schedule next allows a start (UTC), or None if it allows one now."""
        blocked = self._schedule(min_interval_h, max_sessions_per_week, now_s)
        return None if blocked is None else datetime.fromtimestamp(blocked.at_s, UTC)

    def _schedule(
        self, min_interval_h: float, max_sessions_per_week: int, now_s: float | None
    ) -> Blocked | None:
        if not (math.isfinite(min_interval_h) and min_interval_h >= 0):
            raise ValueError(f"min_interval_h must be >= 0, not {min_interval_h}")
        if max_sessions_per_week < 1:
            raise ValueError(f"max_sessions_per_week must be >= 1, not {max_sessions_per_week}")
        if now_s is None:
            now_s = self._now_s()
        with self._read("the session history") as conn:
            try:
                recent = counted_sessions(conn, max_sessions_per_week)
            except ValueError as exc:
                raise LedgerError(
                    f"The treatment record is damaged: {exc} ({self.path}). Restore it from "
                    "its backup, or a caregiver runs `nirpad ledger reset`.",
                    path=str(self.path),
                ) from exc
        blocked = schedule_block(recent, now_s, min_interval_h, max_sessions_per_week)
        if blocked is None:
            return None
        return Blocked(blocked.at_s, blocked.message.format(at=self._fmt(blocked.at_s)))

    def clock_refusal(self) -> str | None:
        """Why the wall clock cannot be trusted (behind the newest record), or None."""
        now_s = self._now_s()
        with self._read("the newest record") as conn:
            return clock_behind_problem(conn, now_s, self._display_tz)

    def lost_refusal(self) -> str | None:
        """Why the record cannot be trusted (found lost, not yet reset), or None."""
        with self._read("the record's events") as conn:
            return lost_problem(conn)

    def record_refusal(self) -> str | None:
        """Why the record itself refuses any start (lost, a clock jump not confirmed, the
        clock behind the newest record: ``ledger_events.record_problem``), or None."""
        now_s = self._now_s()
        with self._read("the record's events") as conn:
            return record_problem(conn, now_s, self._display_tz)

    def damaged_row_problem(self) -> str | None:
        """A counted session whose time or dose cannot be read, or None."""
        with self._read("the session history") as conn:
            return damaged_row_problem(conn)

    def history(self) -> tuple[int, int, int, int]:
        """How much history this ledger holds (``safety.ledger_events.history_size``)."""
        with self._read("the record's size") as conn:
            return history_size(conn)

    def writable_refusal(self) -> str | None:
        """Why the ledger cannot be written now (less free space than ``MIN_FREE_BYTES``, a
        full disk, read-only, damaged…), or None.

        Checks the free space, then writes a small blob in a transaction and rolls back.
        """
        action = "The treatment record cannot be saved"
        try:
            free_bytes = shutil.disk_usage(self.path.parent).free
            conn = self._db()
            if free_bytes < MIN_FREE_BYTES:
                return f"{action}: {_too_little_free(free_bytes)} ({self.path})."
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("INSERT INTO write_probe VALUES (zeroblob(?))", (_PROBE_BYTES,))
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
        except (OSError, sqlite3.Error, LedgerError) as exc:
            return (
                str(exc)
                if isinstance(exc, LedgerError)
                else str(ledger_error(action, self.path, exc))
            )
        return None

    # -- reads -------------------------------------------------------------------

    def sessions(self, limit: int | None = None) -> list[SessionRecord]:
        """Sessions, newest first."""
        with self._read("the sessions") as conn:
            rows = conn.execute(
                "SELECT * FROM sessions ORDER BY started_at_s DESC, id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return self._records(SessionRecord.from_row, rows, "session")

    def last_session(self) -> SessionRecord | None:
        """The session begun last (the highest id: a wall clock set back since does not
        reorder it), or None when there is none."""
        with self._read("the last session") as conn:
            rows = conn.execute("SELECT * FROM sessions ORDER BY id DESC LIMIT 1").fetchall()
        records = self._records(SessionRecord.from_row, rows, "session")
        return records[0] if records else None

    def checkpoints(self, session_id: int) -> list[CheckpointRecord]:
        """A session's dose checkpoints, oldest first."""
        with self._read("the checkpoints") as conn:
            rows = conn.execute(
                "SELECT * FROM checkpoints WHERE session_id = ? ORDER BY id", (session_id,)
            ).fetchall()
        return self._records(CheckpointRecord.from_row, rows, "checkpoint")

    def faults(self, limit: int | None = None, session_id: int | None = None) -> list[FaultRecord]:
        """Recorded faults, newest first; only one session's if ``session_id`` is given."""
        with self._read("the faults") as conn:
            rows = conn.execute(
                "SELECT * FROM faults WHERE ?1 IS NULL OR session_id = ?1 "
                "ORDER BY at_s DESC, id DESC LIMIT ?2",
                (session_id, -1 if limit is None else limit),
            ).fetchall()
        return self._records(FaultRecord.from_row, rows, "fault")

    def events(self, limit: int | None = None) -> list[EventRecord]:
        """Record events (restores, resets, clock jumps and confirmations), newest first."""
        with self._read("the record's events") as conn:
            rows = conn.execute(
                "SELECT * FROM events ORDER BY id DESC LIMIT ?", (-1 if limit is None else limit,)
            ).fetchall()
        return self._records(EventRecord.from_row, rows, "event")

    def installs(self, limit: int | None = None) -> list[InstallRecord]:
        """Profile installs, newest first."""
        with self._read("the installs") as conn:
            rows = conn.execute(
                "SELECT * FROM installs ORDER BY at_s DESC, id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return self._records(InstallRecord.from_row, rows, "install")

    def first_session_at(self, profile_id: str, since: datetime) -> datetime | None:
        """When the first counted session of ``profile_id`` at or after ``since`` began
        (UTC), or None: the start of a prescription's course."""
        with self._read("the session history") as conn:
            return course_first_start(conn, profile_id, since)


def _too_little_free(free_bytes: int) -> str:
    """The free-space floor in words: what the rule is and what is free, not "the disk is
    full" (a disk with 3.9 MB free is not)."""
    floor_mib = MIN_FREE_BYTES // (1024 * 1024)
    return (
        f"less than {floor_mib} MiB is free on its disk ({free_bytes // 1024} KiB); free some space"
    )


def _last_known_s(conn: sqlite3.Connection, session_id: int) -> float:
    """The latest time a session's row or its checkpoints were written at (its start
    when it has none; -inf for no such session, whose close then refuses)."""
    row = conn.execute(
        "SELECT MAX(started_at_s, COALESCE((SELECT MAX(at_s) FROM checkpoints "
        "WHERE session_id = sessions.id), started_at_s)) FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    return -math.inf if row is None else float(row[0])
