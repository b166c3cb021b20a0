"""What the course commands and the diary read from the state directory, read-only.

Owns: the patient's time zone (``--tz``, else $TZ, else the system's zone), the dates
the diary holds entries to (``care.diary_entry.CourseDates`` from the installed
prescription's issue date and the ledger's first session under it), and the diary's
IRLS totals for the checkpoints (``care.course.IrlsTotal``, each with its baseline
mark), read without creating a diary. Nothing here writes the ledger.

Does not own the figures (``care.course``), the checks of an entry (``care.diary``)
nor any command's output.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from care.course import IrlsTotal, first_day_of
from care.diary import Diary, diary_exists
from care.diary_entry import CourseDates
from profiles.errors import ProfileError, TrustStoreError
from profiles.locator import printable
from profiles.regular_file import read_regular_file
from profiles.signing import TrustStore
from profiles.store import load_installed
from safety.errors import SafetyError
from safety.records import read_records

__all__ = [
    "CourseInputError",
    "diary_course_dates",
    "diary_irls_totals",
    "zone_named",
]


_ONLY_FUTURE = ": only a date in the future is refused"


class CourseInputError(ValueError):
    """An input the course cannot use (a time zone); the message is for people."""


LOCALTIME: Final = Path("/etc/localtime")
"""The system's zone file (tests replace it)."""
MAX_ZONE_FILE_BYTES: Final = 64 * 1024
"""A zone file (TZif) is at most a few KiB; a larger file is not one."""
TIMEZONE_FILE: Final = Path("/etc/timezone")
"""Debian's name of the system's zone, when /etc/localtime is a copy, not a link."""


def zone_named(name: str | None) -> ZoneInfo:
    """``name`` (``--tz``), else $TZ, else the system's zone (/etc/localtime), else
    UTC. Either may name a zone (``Europe/Berlin``, ``:Europe/Berlin``) or a zone file
    (``:/etc/localtime``, ``/usr/share/zoneinfo/Europe/Berlin``). An empty ``--tz`` is
    refused, as an empty ``--date`` is: it names no zone, and taking the default instead
    would hide a script's unset variable."""
    if name is not None and not name.strip():
        raise CourseInputError(
            "the time zone is empty: give one like Europe/Berlin, or leave --tz out"
        )
    chosen = (name or os.environ.get("TZ", "")).removeprefix(":")
    if not chosen:
        return _system_zone()
    if chosen.startswith("/"):
        return _zone_file(Path(chosen))
    return _zone(chosen)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: Europe, too long
        raise CourseInputError(
            f"unknown time zone '{printable(name)}': give one like Europe/Berlin"
        ) from exc


def _zone_file(path: Path) -> ZoneInfo:
    """The zone in a file: by its name when the file is (or links into) a zoneinfo
    folder, so the report names it; else read from the file itself, a regular file of
    at most ``MAX_ZONE_FILE_BYTES`` (a named pipe is refused, never waited on)."""
    try:
        resolved = str(path.resolve())
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
        resolved = str(path)
    if "/zoneinfo/" in resolved:
        with contextlib.suppress(CourseInputError):
            return _zone(resolved.rsplit("/zoneinfo/", 1)[1])
    if path == LOCALTIME:
        with contextlib.suppress(OSError, CourseInputError):
            return _zone(TIMEZONE_FILE.read_text(encoding="utf-8").strip())
    try:
        data, _ = read_regular_file(path, MAX_ZONE_FILE_BYTES)  # a named pipe never blocks
        return ZoneInfo.from_file(io.BytesIO(data), key=str(path))
    except (OSError, ValueError, ProfileError) as exc:
        raise CourseInputError(
            f"the time zone file {printable(str(path))} cannot be read: give a zone like "
            "Europe/Berlin with --tz"
        ) from exc


def _system_zone() -> ZoneInfo:
    """/etc/localtime's zone, else the one /etc/timezone names, else UTC."""
    if LOCALTIME.exists():
        return _zone_file(LOCALTIME)
    with contextlib.suppress(OSError, CourseInputError):
        return _zone(TIMEZONE_FILE.read_text(encoding="utf-8").strip())
    return ZoneInfo("UTC")


def diary_course_dates(
    state_dir: Path, site: Path | None, zone: tzinfo, wall_clock: Callable[[], datetime]
) -> tuple[CourseDates | None, str | None]:
    """The course dates a new diary entry is held to, and a note when they are only
    partly known. ``(None, None)``: no prescription is installed (the diary may be
    kept before the pad is set up). A prescription that cannot be read gives
    ``(None, note)``; a treatment record that cannot be read gives the issue date only."""
    try:
        trust = TrustStore.from_site_file(site)
    except TrustStoreError as exc:
        return None, f"the course's dates are not known (site configuration: {exc}){_ONLY_FUTURE}"
    loaded = load_installed(state_dir, trust=trust)
    if loaded is None:
        return None, None
    if loaded.profile is None:
        why = "; ".join(map(str, loaded.problems))
        return None, f"the course's dates are not known (the prescription: {why}){_ONLY_FUTURE}"
    rx = loaded.profile
    try:
        sessions = read_records(state_dir, wall_clock).sessions
    except SafetyError as exc:
        note = (
            f"day 1 of the course is not known ({exc}): only a date before {rx.issued} is refused"
        )
        return CourseDates(rx.issued), note
    return CourseDates(rx.issued, first_day_of(rx, sessions, zone)), None


def diary_irls_totals(state_dir: Path) -> tuple[list[IrlsTotal], int]:
    """The diary's current IRLS totals, oldest first, each with its baseline mark, and
    how many damaged rows were left out; none when there is no diary (none is created).
    Raises ``DiaryStorageError``."""
    if not diary_exists(state_dir):
        return [], 0
    with Diary.open_to_read(state_dir) as diary:
        totals = [IrlsTotal(i.entry_date, i.total, i.baseline) for i in diary.irls()]
        return totals, diary.damaged_rows
