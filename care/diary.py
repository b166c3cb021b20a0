"""The symptom diary: an append-only store of nightly entries and weekly IRLS scores.

Owns: ``diary/diary.sqlite3`` in the state directory (created 0660 in a 2770 directory,
WAL), appending entries
after they are checked, corrections (a new entry that ``supersedes`` an old one; nothing
is ever updated or deleted, and SQLite triggers refuse it if tried), which entry a
correction may start from (``correctable_nightly``), and the two views
readers get: the current one (superseded entries hidden) and the full history; also
reading it where it cannot be written (``Diary.open_to_read``: a full or read-only disk),
and leaving out a damaged row (one this code never writes) with a count
(``Diary.damaged_rows``) instead of failing every read for it.

A bad entry raises ``DiaryError`` (its ``field`` says which input) and writes nothing:
every check runs before the transaction, the rest inside one ``BEGIN IMMEDIATE``.
One current entry per date and kind: a second one for the same date must correct the
first. Dates are the patient's local dates; ``course`` (``CourseDates``) says which
dates the course allows (none before day 1; a baseline IRLS from the prescription's
issue date to day 1); without it only a future date is refused.

Does not own what the entries mean for the course (``care.course``) or the ledger.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path
from types import TracebackType
from typing import Final, TypeVar

from care.diary_entry import CourseDates, NightlyEntry, SideEffect, check_date
from care.diary_schema import (
    DIARY_FILENAME,
    OLD_DIARY_FILENAME,
    DiaryError,
    DiaryStorageError,
    adopt_old_diary,
    connect_read_only,
    create_private,
    diary_exists,
    prepare,
)
from care.irls import Band, band_of, check_items
from safety.ledger_schema import reason_of

__all__ = [
    "DIARY_FILENAME",
    "Diary",
    "StoredIrls",
    "StoredNightly",
    "diary_damaged_text",
    "diary_exists",
    "to_json",
]

log = logging.getLogger(__name__)
_NIGHTLY_COLUMNS: Final = (
    "leg_symptoms",
    "sleep_quality",
    "minutes_to_sleep",
    "awakenings",
    "onset",
)
_ID_MAX: Final = 2**63 - 1
NOTHING_TO_RECORD: Final = "Nothing to record: answer at least one question."
"""A new nightly entry that answers nothing is refused, whatever it came from."""
"""The largest id SQLite stores (a signed 64-bit integer)."""
_DAMAGE: Final = (ValueError, TypeError, KeyError, AttributeError, OverflowError)
"""What reading a damaged row raises (the ledger's reader takes the same)."""
_E = TypeVar("_E")


@dataclass(frozen=True, slots=True)
class StoredNightly:
    """A nightly entry as recorded; ``superseded_by`` is None for a current one."""

    id: int
    recorded_at: datetime
    supersedes: int | None
    superseded_by: int | None
    entry: NightlyEntry


@dataclass(frozen=True, slots=True)
class StoredIrls:
    """An IRLS as recorded: item number -> score 0-4."""

    id: int
    recorded_at: datetime
    supersedes: int | None
    superseded_by: int | None
    entry_date: date
    baseline: bool
    items: Mapping[int, int]

    @property
    def total(self) -> int:
        return sum(self.items.values())

    @property
    def band(self) -> Band:
        return band_of(self.total)


class Diary:
    """The open diary. Use ``Diary.open``; close it (or use ``with``)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        course: CourseDates | None,
        wall_clock: Callable[[], datetime],
        tz: tzinfo | None,
    ) -> None:
        self._conn = conn
        self.path = path
        self.course = course
        self._wall_clock = wall_clock
        self._tz = tz
        self._damaged: set[tuple[str, int]] = set()

    @classmethod
    def open(
        cls,
        state_dir: Path,
        *,
        course: CourseDates | None = None,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
        busy_timeout_s: float = 2.0,
    ) -> Diary:
        """Open (creating and migrating if needed) the diary in ``state_dir``; a diary
        at the old place is moved in first (``adopt_old_diary``).

        ``wall_clock`` returns aware UTC; ``tz`` is the patient's zone (None: the
        system's local zone), which decides what "today" is."""
        path = state_dir / DIARY_FILENAME
        try:
            adopt_old_diary(state_dir)
        except (OSError, sqlite3.Error) as exc:
            old = state_dir / OLD_DIARY_FILENAME
            raise _storage_error("The diary at its old place cannot be moved in", old, exc) from exc
        if os.path.lexists(path) and not path.is_file():  # a folder, a named pipe
            raise DiaryStorageError(
                f"The symptom diary cannot be opened: it is not a file ({path}).", path=path
            )
        try:
            create_private(path)
            conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise _storage_error("The symptom diary cannot be opened", path, exc) from exc
        conn.row_factory = sqlite3.Row
        try:
            prepare(conn, path)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise _storage_error("The symptom diary cannot be opened", path, exc) from exc
            raise
        return cls(conn, path, course=course, wall_clock=wall_clock, tz=tz)

    @classmethod
    def open_to_read(
        cls,
        state_dir: Path,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
    ) -> Diary:
        """``open``; where the diary cannot be opened to write (a full or read-only
        disk), opened to read only instead (``connect_read_only``), so it can still be
        listed and reported. Only for reading: nothing may be added to it. ``wall_clock``
        and ``tz`` as for ``open``, for ``today``. Raises ``open``'s ``DiaryStorageError`` when the
        read-only open cannot be done either."""
        try:
            return cls.open(state_dir, wall_clock=wall_clock, tz=tz)
        except DiaryStorageError as exc:
            path = state_dir / DIARY_FILENAME
            conn = connect_read_only(path)
            if conn is None:
                raise
            log.info("diary: read only, as it cannot be written: %s", exc)
        conn.row_factory = sqlite3.Row
        return cls(conn, path, course=None, wall_clock=wall_clock, tz=tz)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Diary:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def today(self) -> date:
        """The patient's local date now."""
        return self._wall_clock().astimezone(self._tz).date()

    def add_nightly(self, entry: NightlyEntry, *, corrects: int | None = None) -> int:
        """Append a nightly entry (correcting entry ``corrects``); returns its id. A new
        entry must answer something; a correction may clear every answer."""
        entry.validated(today=self.today(), course=self.course)
        if corrects is None and not entry.holds_answer:
            raise DiaryError(NOTHING_TO_RECORD, field="entry")
        values = [getattr(entry, name) for name in _NIGHTLY_COLUMNS]
        effects = ",".join(sorted(e.value for e in entry.side_effects))
        sql = (
            "INSERT INTO nightly (entry_date, recorded_at_s, supersedes, "
            f"{', '.join(_NIGHTLY_COLUMNS)}, side_effects, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )

        def insert(conn: sqlite3.Connection, now_s: float) -> int:
            row = (entry.entry_date.isoformat(), now_s, corrects, *values, effects, entry.note)
            return int(conn.execute(sql, row).lastrowid or 0)

        return self._append("nightly", entry.entry_date, corrects, insert)

    def add_irls(
        self,
        entry_date: date,
        items: Mapping[int, int],
        *,
        baseline: bool = False,
        corrects: int | None = None,
    ) -> int:
        """Append an IRLS (all ten items, 0-4 each); returns its id."""
        check_date(entry_date, today=self.today(), course=self.course, baseline=baseline)
        scores = check_items(items)

        def insert(conn: sqlite3.Connection, now_s: float) -> int:
            cursor = conn.execute(
                "INSERT INTO irls (entry_date, recorded_at_s, supersedes, baseline) "
                "VALUES (?, ?, ?, ?)",
                (entry_date.isoformat(), now_s, corrects, int(baseline)),
            )
            new_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO irls_items (irls_id, item, score) VALUES (?, ?, ?)",
                [(new_id, k, v) for k, v in scores.items()],
            )
            return new_id

        return self._append("irls", entry_date, corrects, insert)

    def entry_date(self, table: str, entry_id: int) -> date | None:
        """The day entry ``entry_id`` of ``table`` (``"nightly"`` or ``"irls"``) is
        about, or None when there is no such entry."""
        if table not in ("nightly", "irls"):
            raise ValueError(f"no diary table {table!r}")
        if not 1 <= entry_id <= _ID_MAX:
            return None
        try:
            row = self._conn.execute(
                f"SELECT entry_date FROM {table} WHERE id = ?", (entry_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise _storage_error("The symptom diary cannot be read", self.path, exc) from exc
        return None if row is None else date.fromisoformat(row["entry_date"])

    def correctable_nightly(self, entry_id: int) -> StoredNightly:
        """Nightly entry ``entry_id``, current (not corrected yet), as a correction of
        it starts from; raises DiaryError, in ``add_nightly``'s words, when there is
        no such entry or it was already corrected."""
        try:
            _check_correctable(self._conn, "nightly", entry_id)
            row = self._conn.execute(
                "SELECT *, NULL AS superseded_by FROM nightly WHERE id = ?", (entry_id,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise _storage_error("The symptom diary cannot be read", self.path, exc) from exc
        try:
            return _nightly_from_row(row)
        except _DAMAGE as exc:
            raise DiaryError(
                f"The nightly entry {entry_id} is damaged and cannot be corrected; record "
                "the day's entry anew with --date.",
                field="corrects",
            ) from exc

    @property
    def damaged_rows(self) -> int:
        """Rows the reads so far left out as damaged (each counted once): rows this
        code never writes (a date that is not one, a side effect it does not know, an
        IRLS without its ten scores). The rest is read; the reader says how many."""
        return len(self._damaged)

    def nightly(self, *, history: bool = False) -> list[StoredNightly]:
        """Nightly entries by date (then id); superseded ones only with ``history``."""
        rows = self._read("nightly", history)
        return self._parsed("nightly", rows, _nightly_from_row)

    def irls(self, *, history: bool = False) -> list[StoredIrls]:
        """IRLS entries by date (then id); superseded ones only with ``history``."""
        rows = self._read("irls", history)
        try:
            item_rows = self._conn.execute("SELECT irls_id, item, score FROM irls_items").fetchall()
        except sqlite3.Error as exc:
            raise _storage_error("The symptom diary cannot be read", self.path, exc) from exc
        items: dict[int, dict[int, int]] = {}
        for item_row in item_rows:
            items.setdefault(item_row["irls_id"], {})[item_row["item"]] = item_row["score"]
        return self._parsed("irls", rows, lambda row: _irls_from_row(row, items.get(row["id"], {})))

    def _parsed(
        self, table: str, rows: list[sqlite3.Row], build: Callable[[sqlite3.Row], _E]
    ) -> list[_E]:
        """The entries of ``rows``; a damaged row is left out, counted and logged."""
        entries: list[_E] = []
        for row in rows:
            try:
                entries.append(build(row))
            except _DAMAGE as exc:  # DiaryError, too: an IRLS without its ten scores
                self._damaged.add((table, int(row["id"])))
                log.warning("damaged diary %s row %s left out: %s", table, row["id"], exc)
        return entries

    def _read(self, table: str, history: bool) -> list[sqlite3.Row]:
        where = "" if history else "WHERE newer.id IS NULL"
        sql = (
            f"SELECT t.*, newer.id AS superseded_by FROM {table} AS t "
            f"LEFT JOIN {table} AS newer ON newer.supersedes = t.id "
            f"{where} ORDER BY t.entry_date, t.id"
        )
        try:
            return self._conn.execute(sql).fetchall()
        except sqlite3.Error as exc:
            raise _storage_error("The symptom diary cannot be read", self.path, exc) from exc

    def _append(
        self,
        table: str,
        entry_date: date,
        corrects: int | None,
        insert: Callable[[sqlite3.Connection, float], int],
    ) -> int:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                _check_place(conn, table, entry_date, corrects)
                new_id = insert(conn, self._wall_clock().timestamp())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _storage_error("The diary entry was not recorded", self.path, exc) from exc
        log.info("diary: %s entry %d for %s recorded", table, new_id, entry_date.isoformat())
        return new_id


def _check_place(
    conn: sqlite3.Connection, table: str, entry_date: date, corrects: int | None
) -> None:
    """Refuse correcting a missing or already-corrected entry, and a second current
    entry for the same date (other than the one corrected)."""
    what, article = _what(table)
    if corrects is not None:
        _check_correctable(conn, table, corrects)
    same_day = conn.execute(
        f"SELECT t.id FROM {table} AS t LEFT JOIN {table} AS newer ON newer.supersedes = t.id "
        "WHERE newer.id IS NULL AND t.entry_date = ? AND t.id IS NOT ?",
        (entry_date.isoformat(), corrects),
    ).fetchone()
    if same_day is not None:
        raise DiaryError(
            f"There is already {article} {what} for {entry_date.isoformat()} ({same_day[0]}); "
            f"to change it, correct {same_day[0]}.",
            field="date",
        )


def _check_correctable(conn: sqlite3.Connection, table: str, corrects: int) -> None:
    """Refuse correcting an entry that is not there or was already corrected."""
    what, _ = _what(table)
    if not 1 <= corrects <= _ID_MAX:  # SQLite cannot even look it up
        raise DiaryError(f"There is no {what} {corrects} to correct.", field="corrects")
    found = conn.execute(f"SELECT id FROM {table} WHERE id = ?", (corrects,)).fetchone()
    if found is None:
        raise DiaryError(f"There is no {what} {corrects} to correct.", field="corrects")
    newer = conn.execute(f"SELECT id FROM {table} WHERE supersedes = ?", (corrects,)).fetchone()
    if newer is not None:
        raise DiaryError(
            f"The {what} {corrects} was already corrected by {newer[0]}; "
            f"correct {newer[0]} instead.",
            field="corrects",
        )


def _what(table: str) -> tuple[str, str]:
    """What an entry of ``table`` is called, and its article."""
    return ("nightly entry", "a") if table == "nightly" else ("IRLS", "an")


def diary_damaged_text(damaged_rows: int, left: str) -> str:
    """What a reader is told of the diary's rows it left out (``left``: "shown",
    "counted")."""
    return (
        f"{damaged_rows} damaged row(s) of the symptom diary could not be read and are not "
        f"{left}; the rest is."
    )


def _nightly_from_row(row: sqlite3.Row) -> StoredNightly:
    if not isinstance(row["note"], str):
        raise TypeError(f"the note is not text ({type(row['note']).__name__})")
    effects = frozenset(SideEffect(v) for v in row["side_effects"].split(",") if v)
    entry = NightlyEntry(
        date.fromisoformat(row["entry_date"]),
        side_effects=effects,
        note=row["note"],
        **{name: row[name] for name in _NIGHTLY_COLUMNS},
    )
    return StoredNightly(
        row["id"], _utc(row["recorded_at_s"]), row["supersedes"], row["superseded_by"], entry
    )


def _irls_from_row(row: sqlite3.Row, items: Mapping[int, int]) -> StoredIrls:
    return StoredIrls(
        id=row["id"],
        recorded_at=_utc(row["recorded_at_s"]),
        supersedes=row["supersedes"],
        superseded_by=row["superseded_by"],
        entry_date=date.fromisoformat(row["entry_date"]),
        baseline=bool(row["baseline"]),
        items=check_items(items),
    )


def _utc(at_s: float) -> datetime:
    return datetime.fromtimestamp(at_s, UTC)


FULL_BELOW_BYTES: Final = 64 * 1024
"""Less free space than this beside the diary: a failed write is the disk being full."""


def _storage_error(action: str, path: Path, exc: BaseException) -> DiaryStorageError:
    """In a person's words (``safety.ledger_schema.reason_of``). SQLite often reports a
    full disk as a plain "disk I/O error" (a write to its journal that failed): then the
    free space beside the diary tells."""
    reason = reason_of(exc)
    if "i/o error" in str(exc).lower() and _free_bytes(path.parent) < FULL_BELOW_BYTES:
        reason = "the disk is full"
    return DiaryStorageError(f"{action}: {reason} ({path}).", path=path)


def _free_bytes(folder: Path) -> float:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return math.inf


def to_json(value: StoredNightly | StoredIrls) -> dict[str, object]:
    """The JSON form of a stored entry (``nirpad diary show --json``)."""
    base: dict[str, object] = {
        "id": value.id,
        "recorded_at": value.recorded_at.isoformat(),
        "supersedes": value.supersedes,
        "superseded_by": value.superseded_by,
    }
    if isinstance(value, StoredIrls):
        return {
            **base,
            "date": value.entry_date.isoformat(),
            "baseline": value.baseline,
            "items": {str(k): v for k, v in value.items.items()},
            "total": value.total,
            "band": value.band.value,
        }
    entry = value.entry
    return {
        **base,
        "date": entry.entry_date.isoformat(),
        **{name: getattr(entry, name) for name in _NIGHTLY_COLUMNS},
        "side_effects": sorted(e.value for e in entry.side_effects),
        "note": entry.note,
    }
