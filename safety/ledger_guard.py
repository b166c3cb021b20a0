"""Opening the ledger so that its loss or damage is noticed, and repaired from a backup.

Owns: the decision, at start-up, between the ledger as it is, a restore from the newest
usable backup (the ledger is missing, empty, damaged, or older than its backup), and a
ledger marked lost (it is new although a prescription was installed, and no backup can
stand in: treatment waits for a caregiver's ``nirpad ledger reset``). Also the reset
itself, and the optional second backup place of the site configuration; and that decision
in words for a reader of an empty ledger file (``empty_ledger_at_start``). A damaged file
is moved aside, never deleted. Never loosens a rule: a restore and a reset each count as
a session ending at that moment (``safety.ledger_events``).

Does not own the file format or the writes (``safety.ledger``), nor the backups'
timing (``Ledger.backup_now``, after each session's end, install and event).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from profiles.errors import SiteFileError, SiteFileFault
from profiles.site_file import read_site_file
from profiles.store import installed_path
from safety.errors import LedgerDamagedError, LedgerError
from safety.ledger import (
    BACKUP_FILENAME,
    LEDGER_FILENAME,
    Ledger,
    LedgerConnection,
    create_private,
    read_summary,
)
from safety.ledger_backup import backup_history
from safety.ledger_events import EventKind, damaged_row_problem
from safety.ledger_schema import INTEGRITY_CHECK_ERRORS

__all__ = [
    "NEWER_BY_S",
    "backup_places",
    "empty_ledger_at_start",
    "open_guarded",
    "read_backup_dir",
    "reset_ledger",
]

log = logging.getLogger(__name__)

NEWER_BY_S: Final = 1.0
"""A backup whose newest record is this much newer than the ledger's (or that has a
later session) means the ledger was replaced by an older copy."""
_SIDE_FILES: Final = ("", "-wal", "-shm")


@dataclass(frozen=True, slots=True)
class _Backup:
    path: Path
    newest_s: float
    last_session_id: int


def read_backup_dir(site_config: Path | None) -> Path | None:
    """``[ledger] backup_dir`` of the site configuration: a second backup place, or None.

    A missing file or table is None; a file ``profiles.site_file`` refuses, or a value
    that is not a non-empty string, is an error for the person who wrote it
    (``LedgerError``)."""
    if site_config is None:
        return None
    try:
        table = read_site_file(site_config).get("ledger", {})
    except SiteFileError as exc:
        if exc.fault is SiteFileFault.MISSING:
            return None
        raise LedgerError(
            f"{site_config}: cannot read [ledger]: {exc.reason}", path=str(site_config)
        ) from exc
    value = table.get("backup_dir") if isinstance(table, dict) else None
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise LedgerError(
            f"{site_config}: [ledger] backup_dir must be a folder path, not {value!r}",
            path=str(site_config),
        )
    return Path(value)


def open_guarded(
    state_dir: Path,
    wall_clock: Callable[[], datetime],
    backup_dir: Path | None = None,
    connection: type[sqlite3.Connection] = LedgerConnection,
) -> Ledger:
    """The ledger, restored or marked lost if need be; ``LedgerError`` if none can be had.

    ``connection``: the class the ledger connects with (``Ledger.open``)."""
    main = state_dir / LEDGER_FILENAME
    existed = main_kept = main.is_file() and main.stat().st_size > 0
    places = backup_places(state_dir, backup_dir)
    opener = _Opener(state_dir, wall_clock, connection)
    try:
        ledger = opener.open_sound()
    except LedgerDamagedError as exc:
        return _restore_or_raise(opener, places, exc, "the record is damaged")
    ledger.backup_paths = places
    backup = _best_backup(places)
    if existed and _prescribed_without_install(state_dir, ledger):
        existed = False  # a record that never saw the installed prescription: not this pad's
    if existed:
        if backup is not None and _newer(backup, ledger.summary()):
            ledger.close()
            why = "the record is older than its backup"
            return _restore(opener, places, backup, why, "replaced")
        return ledger
    if backup is not None:
        ledger.close()
        why = "the record was missing, empty or had no install of the prescription"
        return _restore(opener, places, backup, why, "replaced" if main_kept else None)
    if installed_path(state_dir).exists():
        detail = "the record was missing, empty or had no install of the installed prescription"
        log.error("ledger lost: %s", detail)
        ledger.record_event(EventKind.LEDGER_LOST, detail)
    return ledger


def empty_ledger_at_start(state_dir: Path) -> str:
    """What ``open_guarded`` does at the controller's start with an empty ledger file (no
    tables: its first opening cut short, or the file emptied), in words for a reader who
    found it so: restore the backup beside it, else mark the record lost (a prescription
    is installed) or begin a new one. The site's second backup place, which a reader does
    not know, is named as the one that could still stand in. Never raises."""
    backup = _best_backup((state_dir / BACKUP_FILENAME,))
    if backup is not None:
        return f"the controller restores it from its backup ({backup.path.name}) when it starts"
    second = "when the controller starts, it restores one from the site's second backup place"
    if installed_path(state_dir).exists():
        return (
            f"no usable backup is beside it: {second} if that holds one, else marks the "
            "record lost until a caregiver runs `nirpad ledger reset`"
        )
    return (
        f"no backup is beside it and no prescription is installed: {second} if that holds "
        "one, else begins a new record"
    )


def reset_ledger(
    state_dir: Path,
    wall_clock: Callable[[], datetime],
    who: str,
    backup_dir: Path | None = None,
    connection: type[sqlite3.Connection] = LedgerConnection,
) -> Ledger:
    """A caregiver's reset after a loss or damage with no usable backup: a record that
    can be trusted again, whose first session waits one full interval from now.

    A damaged file is moved aside first, and so is a backup holding more than the new
    record (it could never be updated again). The reset is an event in the new ledger."""
    now = wall_clock()
    opener = _Opener(state_dir, wall_clock, connection)
    try:
        ledger = opener.open_sound()
    except LedgerDamagedError:
        _move_aside(state_dir / LEDGER_FILENAME, now, "damaged")
        ledger = opener.open()
    ledger.backup_paths = backup_places(state_dir, backup_dir)
    for place in ledger.backup_paths:
        theirs = backup_history(place)
        if theirs is not None and any(t > o for t, o in zip(theirs, ledger.history(), strict=True)):
            _move_aside(place, now, "reset")
    ledger.record_event(EventKind.LEDGER_RESET, f"reset by {who}; the history before is unknown")
    log.warning("ledger reset by %s", who)
    return ledger


@dataclass(frozen=True, slots=True)
class _Opener:
    """Where the ledger is, its wall clock and the class it connects with."""

    state_dir: Path
    wall_clock: Callable[[], datetime]
    connection: type[sqlite3.Connection]

    def open(self) -> Ledger:
        return Ledger.open(self.state_dir, self.wall_clock, connection=self.connection)

    def open_sound(self) -> Ledger:
        """``Ledger.open``, and a row the rules cannot read counts as damage too."""
        ledger = self.open()
        problem = ledger.damaged_row_problem()
        if problem is not None:
            ledger.close()
            raise LedgerDamagedError(
                f"The treatment record is damaged: {problem} ({ledger.path}).",
                path=str(ledger.path),
            )
        return ledger


def _prescribed_without_install(state_dir: Path, ledger: Ledger) -> bool:
    """A prescription is installed, but the ledger records no install at all (and has
    not already been found lost, or reset)."""
    if not installed_path(state_dir).exists() or ledger.installs(limit=1):
        return False
    handled = (EventKind.LEDGER_LOST, EventKind.LEDGER_RESET)
    return not any(event.kind in handled for event in ledger.events())


def backup_places(state_dir: Path, backup_dir: Path | None) -> tuple[Path, ...]:
    own = state_dir / BACKUP_FILENAME
    return (own,) if backup_dir is None else (own, backup_dir / BACKUP_FILENAME)


def _newer(backup: _Backup, main: tuple[float, int]) -> bool:
    newest_s, last_id = main
    return backup.last_session_id > last_id or backup.newest_s > newest_s + NEWER_BY_S


def _best_backup(places: tuple[Path, ...]) -> _Backup | None:
    """The usable backup with the most history (newest record), or None."""
    usable = [b for b in (_read_backup(p) for p in places) if b is not None]
    return max(usable, key=lambda b: (b.last_session_id, b.newest_s), default=None)


def _read_backup(path: Path) -> _Backup | None:
    if not path.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            check = conn.execute(f"PRAGMA integrity_check({INTEGRITY_CHECK_ERRORS})").fetchall()
            problem = damaged_row_problem(conn)
            if [row[0] for row in check] != ["ok"] or problem is not None:
                log.error("ledger backup %s is damaged: %s", path, problem or check)
                return None
            newest_s, last_id = read_summary(conn)
    except sqlite3.Error as exc:
        log.error("ledger backup %s is unusable: %s", path, exc)
        return None
    return _Backup(path, newest_s, last_id)


def _restore_or_raise(
    opener: _Opener, places: tuple[Path, ...], damage: LedgerDamagedError, why: str
) -> Ledger:
    backup = _best_backup(places)
    if backup is None:
        raise LedgerDamagedError(
            f"{damage} No usable backup was found: a caregiver must run `nirpad ledger reset`.",
            path=damage.path,
        ) from damage
    return _restore(opener, places, backup, why, "damaged")


def _restore(
    opener: _Opener, places: tuple[Path, ...], backup: _Backup, why: str, keep_as: str | None
) -> Ledger:
    """Move the ledger aside (``keep_as``: its new suffix; None: an empty one is dropped),
    copy the backup into its place, record the restore."""
    main = opener.state_dir / LEDGER_FILENAME
    aside = _move_aside(main, opener.wall_clock(), keep_as)
    create_private(main)
    with (
        contextlib.closing(sqlite3.connect(f"file:{backup.path}?mode=ro", uri=True)) as source,
        contextlib.closing(sqlite3.connect(main)) as target,
    ):
        source.backup(target)
    ledger = opener.open()
    ledger.backup_paths = places
    kept = f"; the old file is kept as {aside.name}" if aside is not None else ""
    detail = f"{why}; restored from {backup.path}{kept}"
    log.error("ledger restored: %s", detail)
    ledger.record_event(EventKind.LEDGER_RESTORED, detail)
    return ledger


def _move_aside(main: Path, now: datetime, keep_as: str | None) -> Path | None:
    """Rename the ledger and its WAL/shm files out of the way (``keep_as`` names why) and
    return the new name; with ``keep_as`` None they are removed (a file just created)."""
    if keep_as is None or not main.exists():
        for suffix in _SIDE_FILES:
            Path(f"{main}{suffix}").unlink(missing_ok=True)
        return None
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = main.with_name(f"{main.name}.{keep_as}-{stamp}")
    for suffix in _SIDE_FILES:
        source = Path(f"{main}{suffix}")
        if source.exists():
            source.rename(Path(f"{aside}{suffix}"))
    return aside
