"""The symptom diary store: checks, corrections, append-only rows, migrations, modes."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from care.diary import Diary, to_json
from care.diary_entry import (
    NOTE_MAX_CHARS,
    CourseDates,
    NightlyEntry,
    SideEffect,
    calendar_date,
    parse_date,
)
from care.diary_schema import (
    DIARY_DIR_MODE,
    DIARY_FILE_MODE,
    DIARY_FILENAME,
    OLD_DIARY_FILENAME,
    SCHEMA_VERSION,
    DiaryError,
    DiaryStorageError,
    diary_exists,
    schema_version,
)

# 23:30 UTC on 14 March is already 15 March in UTC+2: "today" is the patient's date.
NOW = datetime(2026, 3, 14, 23, 30, tzinfo=UTC)
TZ = timezone(timedelta(hours=2))
TODAY = date(2026, 3, 15)
COURSE_START = date(2026, 3, 1)
ISSUED = date(2026, 2, 20)
COURSE = CourseDates(ISSUED, COURSE_START)
FULL_ITEMS = {k: 2 for k in range(1, 11)}


@pytest.fixture
def diary(tmp_path: Path) -> Iterator[Diary]:
    with Diary.open(tmp_path, course=COURSE, wall_clock=lambda: NOW, tz=TZ) as d:
        yield d


def rows(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path / DIARY_FILENAME)
    try:
        tables = ("nightly", "irls", "irls_items")
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def test_a_nightly_entry_is_stored_and_read_back(diary: Diary) -> None:
    entry = NightlyEntry(
        TODAY,
        leg_symptoms=6,
        sleep_quality=4,
        minutes_to_sleep=45,
        awakenings=3,
        onset=2,
        side_effects=frozenset({SideEffect.WARMTH, SideEffect.OTHER}),
        note="tingling in the left calf, ça va",
    )
    new_id = diary.add_nightly(entry)
    [stored] = diary.nightly()
    assert stored.id == new_id
    assert stored.entry == entry
    assert stored.recorded_at == NOW
    assert to_json(stored)["side_effects"] == ["other", "warmth"]


def test_today_is_the_patients_local_date(diary: Diary) -> None:
    assert diary.today() == TODAY  # UTC is still on the 14th
    diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=1))
    assert [n.entry.entry_date for n in diary.nightly()] == [TODAY]


@pytest.mark.parametrize(
    "answer",
    [{"leg_symptoms": 0}, {"side_effects": frozenset({SideEffect.WARMTH})}, {"note": "ok"}],
)
def test_any_one_answer_is_enough(diary: Diary, answer: dict[str, Any]) -> None:
    diary.add_nightly(NightlyEntry(TODAY, **answer))
    assert diary.nightly()[0].entry.leg_symptoms == answer.get("leg_symptoms")


@pytest.mark.parametrize("note", ["", "   ", "\u200b"])
def test_a_new_entry_that_answers_nothing_is_refused(diary: Diary, note: str) -> None:
    """It would count as a night recorded in the clinic's report, with nothing in it."""
    with pytest.raises(DiaryError, match="Nothing to record") as refused:
        diary.add_nightly(NightlyEntry(TODAY, note=note))
    assert refused.value.field == "entry"
    assert diary.nightly() == []


def test_a_correction_may_clear_every_answer(diary: Diary) -> None:
    first = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=4))
    diary.add_nightly(NightlyEntry(TODAY), corrects=first)
    [current] = diary.nightly()
    assert current.entry.leg_symptoms is None


BAD_NIGHTLY: list[tuple[dict[str, Any], str, str]] = [
    ({"leg_symptoms": 11}, "leg_symptoms", "Leg symptoms must be a whole number from 0 to 10"),
    ({"leg_symptoms": -1}, "leg_symptoms", "from 0 to 10, not -1"),
    ({"sleep_quality": 10.5}, "sleep_quality", "Sleep quality must be a whole number"),
    ({"sleep_quality": True}, "sleep_quality", "not True"),
    ({"minutes_to_sleep": 601}, "minutes_to_sleep", "from 0 to 600"),
    ({"awakenings": 51}, "awakenings", "Awakenings must be a whole number from 0 to 50"),
    ({"onset": 4}, "onset", "Time of onset must be a whole number from 0 to 3"),
    ({"side_effects": frozenset({"itch"})}, "side_effects", "Unknown side effect 'itch'"),
    ({"note": "x" * (NOTE_MAX_CHARS + 1)}, "note", "501 characters long; at most 500"),
    ({"note": "bad \udcff byte"}, "note", "not readable text (it must be UTF-8)"),
    ({"note": b"bad \xff byte"}, "note", "not readable text (it must be UTF-8)"),
    ({"note": "two\nlines"}, "note", "one line of text, without control characters"),
    ({"note": "esc \x1b[31m"}, "note", "without control characters"),
    ({"note": "two\u2028lines"}, "note", "one line of text"),  # a line separator
    ({"note": "two\u2029paragraphs"}, "note", "one line of text"),
    ({"note": "dose \u202eok"}, "note", "reorders the text around it"),
    ({"note": "a \u2067b\u2069 c"}, "note", "reorders the text around it"),
    ({"entry_date": TODAY + timedelta(days=1)}, "date", "2026-03-16 is in the future"),
    ({"entry_date": COURSE_START - timedelta(days=1)}, "date", "before the course began"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_NIGHTLY)
def test_a_bad_nightly_entry_is_refused_and_nothing_written(
    diary: Diary, tmp_path: Path, change: dict[str, Any], field: str, message: str
) -> None:
    diary.add_nightly(NightlyEntry(COURSE_START, leg_symptoms=3))
    before = rows(tmp_path)
    fields: dict[str, Any] = {"entry_date": TODAY, "leg_symptoms": 3, **change}
    with pytest.raises(DiaryError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        diary.add_nightly(NightlyEntry(**fields))
    assert err.value.field == field
    assert isinstance(err.value, ValueError)
    assert rows(tmp_path) == before


INVISIBLE_NOTES = [
    "   ",
    "\u200b",  # zero-width space
    "\u200c\u200d",  # zero-width non-joiner, joiner
    "\u2060",  # word joiner
    "\ufeff",  # byte-order mark
    "\u00a0\u3000",  # no-break and ideographic spaces
    " \u200b\u00ad\u200f ",  # a soft hyphen, a right-to-left mark
    "\u3164\u115f\u1160\uffa0",  # the Hangul fillers
    "\u2800",  # the braille blank
    "\u034f\ufe0f\U000e0100",  # a grapheme joiner, variation selectors
]


@pytest.mark.parametrize("note", INVISIBLE_NOTES)
def test_a_note_that_shows_nothing_is_no_note(diary: Diary, tmp_path: Path, note: str) -> None:
    diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=3, note=note))
    [stored] = diary.nightly()
    assert (stored.entry.leg_symptoms, stored.entry.note) == (3, "")
    conn = sqlite3.connect(tmp_path / DIARY_FILENAME)
    try:
        assert conn.execute("SELECT note FROM nightly").fetchall() == [("",)]
    finally:
        conn.close()


def test_a_note_with_something_to_show_is_kept_as_typed(diary: Diary) -> None:
    diary.add_nightly(NightlyEntry(TODAY, note=" \u200bcalf\u200d "))
    assert diary.nightly()[0].entry.note == " \u200bcalf\u200d "


def test_the_edges_of_every_range_are_accepted(diary: Diary) -> None:
    diary.add_nightly(NightlyEntry(COURSE_START, 0, 0, 0, 0, 0, note="x" * NOTE_MAX_CHARS))
    diary.add_nightly(NightlyEntry(TODAY, 10, 10, 600, 50, 3))
    assert len(diary.nightly()) == 2


def test_a_correction_supersedes_without_overwriting(diary: Diary, tmp_path: Path) -> None:
    first = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=8))
    second = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=3), corrects=first)
    [current] = diary.nightly()
    assert (current.id, current.supersedes, current.entry.leg_symptoms) == (second, first, 3)
    history = diary.nightly(history=True)
    assert [(h.id, h.superseded_by, h.entry.leg_symptoms) for h in history] == [
        (first, second, 8),
        (second, None, 3),
    ]
    assert rows(tmp_path)["nightly"] == 2


def test_a_correction_may_move_the_entry_to_another_date(diary: Diary) -> None:
    first = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=8))
    diary.add_nightly(NightlyEntry(TODAY - timedelta(days=1), leg_symptoms=8), corrects=first)
    assert [n.entry.entry_date for n in diary.nightly()] == [TODAY - timedelta(days=1)]


@pytest.mark.parametrize(
    ("corrects", "entry_date", "message"),
    [
        (None, TODAY, r"already a nightly entry for 2026-03-15 \(1\); to change it, correct 1"),
        (99, TODAY, "There is no nightly entry 99 to correct"),
        (2**63, TODAY, f"There is no nightly entry {2**63} to correct"),  # past SQLite's ids
        (10**30, TODAY, "There is no nightly entry 1000000000000000000000000000000 to"),
        (-(2**63) - 1, TODAY, "There is no nightly entry -9223372036854775809 to correct"),
        (1, COURSE_START, r"already a nightly entry for 2026-03-01 \(2\)"),
    ],
)
def test_duplicates_and_bad_corrections_are_refused(
    diary: Diary, tmp_path: Path, corrects: int | None, entry_date: date, message: str
) -> None:
    diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=8))
    diary.add_nightly(NightlyEntry(COURSE_START, leg_symptoms=1))
    before = rows(tmp_path)
    with pytest.raises(DiaryError, match=message):
        diary.add_nightly(NightlyEntry(entry_date, leg_symptoms=2), corrects=corrects)
    assert rows(tmp_path) == before


def test_an_entry_is_corrected_once_then_its_correction_is(diary: Diary, tmp_path: Path) -> None:
    first = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=8))
    second = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=7), corrects=first)
    before = rows(tmp_path)
    with pytest.raises(DiaryError, match=f"already corrected by {second}; correct {second}"):
        diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=6), corrects=first)
    assert rows(tmp_path) == before
    third = diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=6), corrects=second)
    assert [n.id for n in diary.nightly()] == [third]


def test_sqlite_itself_refuses_updates_and_deletes(diary: Diary, tmp_path: Path) -> None:
    diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=8))
    diary.add_irls(TODAY, FULL_ITEMS)
    conn = sqlite3.connect(tmp_path / DIARY_FILENAME)
    try:
        for sql in (
            "UPDATE nightly SET leg_symptoms = 1",
            "DELETE FROM nightly",
            "UPDATE irls SET baseline = 1",
            "DELETE FROM irls_items",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(sql)
    finally:
        conn.close()


def test_an_irls_is_stored_with_its_items(diary: Diary) -> None:
    items = {k: k % 5 for k in range(1, 11)}
    new_id = diary.add_irls(COURSE_START, items, baseline=True)
    [stored] = diary.irls()
    assert (stored.id, stored.baseline, dict(stored.items)) == (new_id, True, items)
    assert stored.total == 20
    assert to_json(stored)["band"] == "moderate"


@pytest.mark.parametrize(
    ("items", "field", "message"),
    [
        (
            {k: 1 for k in range(1, 10)},
            "items",
            r"all 10 item scores; 9 given \(missing: item 10\)",
        ),
        ({}, "items", "missing: item 1, item 2"),
        ({**FULL_ITEMS, 11: 0}, "items", "there is no item 11"),
        ({**FULL_ITEMS, 3: 5}, "item 3", "Item 3 must be a whole number from 0 to 4, not 5"),
        ({**FULL_ITEMS, 7: -1}, "item 7", "from 0 to 4, not -1"),
    ],
)
def test_a_bad_irls_is_refused_and_nothing_written(
    diary: Diary, tmp_path: Path, items: dict[int, int], field: str, message: str
) -> None:
    diary.add_irls(COURSE_START, FULL_ITEMS)
    before = rows(tmp_path)
    with pytest.raises(DiaryError, match=message) as err:
        diary.add_irls(TODAY, items)
    assert err.value.field == field
    assert rows(tmp_path) == before


def test_an_irls_date_is_checked(diary: Diary, tmp_path: Path) -> None:
    with pytest.raises(DiaryError, match="in the future") as err:
        diary.add_irls(TODAY + timedelta(days=1), FULL_ITEMS)
    assert err.value.field == "date"
    assert rows(tmp_path) == {"nightly": 0, "irls": 0, "irls_items": 0}


NOT_STARTED = CourseDates(ISSUED, None)
BEFORE_COURSE: list[tuple[CourseDates, str, date, str, str]] = [
    (
        COURSE,
        "nightly",
        date(2026, 2, 28),
        "date",
        r"before the course began \(day 1 was 2026-03-01",
    ),
    (COURSE, "irls", date(2026, 2, 28), "date", "before the course began"),
    (
        NOT_STARTED,
        "nightly",
        date(2026, 2, 19),
        "date",
        "the prescription was issued on 2026-02-20",
    ),
    (NOT_STARTED, "irls", date(2026, 2, 19), "date", "the prescription was issued on 2026-02-20"),
    (COURSE, "baseline", date(2026, 2, 19), "date", "baseline IRLS date 2026-02-19 is before"),
    (COURSE, "baseline", date(2026, 3, 2), "baseline", "as a weekly one, not as the baseline"),
]


@pytest.mark.parametrize(("course", "kind", "entry_date", "field", "message"), BEFORE_COURSE)
def test_a_date_before_the_course_is_refused_and_nothing_written(
    tmp_path: Path,
    course: CourseDates,
    kind: str,
    entry_date: date,
    field: str,
    message: str,
) -> None:
    diary = Diary.open(tmp_path, course=course, wall_clock=lambda: NOW, tz=TZ)
    with diary, pytest.raises(DiaryError, match=message) as err:
        if kind == "nightly":
            diary.add_nightly(NightlyEntry(entry_date, leg_symptoms=3))
        else:
            diary.add_irls(entry_date, FULL_ITEMS, baseline=kind == "baseline")
    assert err.value.field == field
    assert rows(tmp_path) == {"nightly": 0, "irls": 0, "irls_items": 0}


def test_the_days_a_course_allows(tmp_path: Path) -> None:
    with Diary.open(tmp_path, course=NOT_STARTED, wall_clock=lambda: NOW, tz=TZ) as diary:
        diary.add_nightly(NightlyEntry(ISSUED, leg_symptoms=5))  # before the first session
        diary.add_irls(ISSUED, FULL_ITEMS, baseline=True)
    with Diary.open(tmp_path, course=COURSE, wall_clock=lambda: NOW, tz=TZ) as diary:
        diary.add_irls(COURSE_START, FULL_ITEMS, baseline=True)  # on day 1, before the session
        diary.add_nightly(NightlyEntry(COURSE_START, leg_symptoms=4))
        diary.add_irls(TODAY, FULL_ITEMS)
        assert [i.entry_date for i in diary.irls()] == [ISSUED, COURSE_START, TODAY]
    with Diary.open(tmp_path, wall_clock=lambda: NOW, tz=TZ) as diary:  # no course known
        diary.add_nightly(NightlyEntry(date(2025, 1, 1), leg_symptoms=4))
        assert len(diary.nightly()) == 3


def test_an_irls_correction_keeps_the_old_items(diary: Diary, tmp_path: Path) -> None:
    first = diary.add_irls(TODAY, FULL_ITEMS)
    second = diary.add_irls(TODAY, {**FULL_ITEMS, 1: 4}, corrects=first)
    assert [(i.id, i.total) for i in diary.irls()] == [(second, 22)]
    assert [(i.id, i.superseded_by) for i in diary.irls(history=True)] == [
        (first, second),
        (second, None),
    ]
    assert rows(tmp_path) == {"nightly": 0, "irls": 2, "irls_items": 20}


def test_a_new_file_is_migrated_and_private(tmp_path: Path) -> None:
    Diary.open(tmp_path, wall_clock=lambda: NOW).close()
    path = tmp_path / DIARY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == DIARY_FILE_MODE == 0o660
    assert stat.S_IMODE(path.parent.stat().st_mode) == DIARY_DIR_MODE == 0o2770
    conn = sqlite3.connect(path)
    try:
        assert schema_version(conn) == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_wal_files_are_private_too(diary: Diary, tmp_path: Path) -> None:
    diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=1))
    wal = tmp_path / f"{DIARY_FILENAME}-wal"
    assert stat.S_IMODE(wal.stat().st_mode) == 0o660


def test_the_modes_hold_under_a_strict_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        with Diary.open(tmp_path, wall_clock=lambda: NOW) as d:
            d.add_nightly(NightlyEntry(date(2026, 3, 14), leg_symptoms=1))
            path = tmp_path / DIARY_FILENAME
            assert stat.S_IMODE(path.with_name(path.name + "-wal").stat().st_mode) == 0o660
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o2770


def test_an_empty_existing_file_is_migrated(tmp_path: Path) -> None:
    (tmp_path / DIARY_FILENAME).parent.mkdir()
    (tmp_path / DIARY_FILENAME).touch(mode=0o640)
    with Diary.open(tmp_path, wall_clock=lambda: NOW) as d:
        d.add_nightly(NightlyEntry(date(2026, 3, 14), leg_symptoms=1))
    with Diary.open(tmp_path, wall_clock=lambda: NOW) as d:  # reopening: no second migration
        assert len(d.nightly()) == 1


def bare_first_page(path: Path) -> None:
    """What a first open that failed on a full disk leaves: SQLite's first page alone
    (the write-ahead log set, no table), about 4 KiB."""
    path.parent.mkdir()
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


@pytest.mark.parametrize("left", ["empty", "first page"])
def test_a_file_holding_nothing_yet_is_no_diary_until_opened(tmp_path: Path, left: str) -> None:
    path = tmp_path / DIARY_FILENAME
    if left == "empty":
        path.parent.mkdir()
        path.touch()
    else:
        bare_first_page(path)
    assert not diary_exists(tmp_path)  # a reader shows no entries, as before it was made
    with Diary.open(tmp_path, wall_clock=lambda: NOW) as d:
        d.add_nightly(NightlyEntry(date(2026, 3, 14), leg_symptoms=1))
    assert diary_exists(tmp_path)
    with Diary.open_to_read(tmp_path) as d:
        assert [n.entry.leg_symptoms for n in d.nightly()] == [1]


def test_a_file_that_is_not_a_database_is_still_a_diary_to_open(tmp_path: Path) -> None:
    """So that opening it says what is wrong, rather than a reader showing no entries."""
    (tmp_path / DIARY_FILENAME).parent.mkdir()
    (tmp_path / DIARY_FILENAME).write_bytes(b"not a database" * 100)
    assert diary_exists(tmp_path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Diary.open(tmp_path, wall_clock=lambda: NOW).close()
    conn = sqlite3.connect(tmp_path / DIARY_FILENAME)
    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(DiaryStorageError, match="written by a newer nirpad"):
        Diary.open(tmp_path, wall_clock=lambda: NOW)


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / DIARY_FILENAME).parent.mkdir()
    (tmp_path / DIARY_FILENAME).write_bytes(b"not a database, just some text" * 100)
    with pytest.raises(DiaryStorageError, match="cannot be opened") as err:
        Diary.open(tmp_path, wall_clock=lambda: NOW)
    assert err.value.path == tmp_path / DIARY_FILENAME


@pytest.mark.parametrize(
    ("free_bytes", "reason"), [(4096, "the disk is full"), (10**9, "the storage reported an error")]
)
def test_sqlite_s_disk_i_o_error_on_a_full_disk_is_said_as_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_bytes: int, reason: str
) -> None:
    """SQLite reports a write that found no room in its journal as "disk I/O error"."""

    def no_room(*_args: object, **_kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("disk I/O error")

    usage = shutil.disk_usage(tmp_path)._replace(free=free_bytes)
    monkeypatch.setattr(sqlite3, "connect", no_room)
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage)
    with pytest.raises(DiaryStorageError) as err:
        Diary.open(tmp_path, wall_clock=lambda: NOW)
    path = tmp_path / DIARY_FILENAME
    assert str(err.value) == f"The symptom diary cannot be opened: {reason} ({path})."


def write_old_diary(state_dir: Path, scratch: Path) -> None:
    """A diary at the old place (``diary.sqlite3`` in the state directory), as a crash
    left it: 14 March checkpointed, 15 March only in its -wal."""
    scratch.mkdir()
    with Diary.open(scratch, wall_clock=lambda: NOW, tz=TZ) as d:
        d.add_nightly(NightlyEntry(date(2026, 3, 14), leg_symptoms=4))
    conn = sqlite3.connect(scratch / DIARY_FILENAME, isolation_level=None)
    try:
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(
            "INSERT INTO nightly (entry_date, recorded_at_s, leg_symptoms) "
            "VALUES ('2026-03-15', 0, 7)"
        )
        for suffix in ("", "-wal"):  # copied while open: the -wal is not checkpointed
            shutil.copy(scratch / f"{DIARY_FILENAME}{suffix}", state_dir / f"diary.sqlite3{suffix}")
    finally:
        conn.close()


def test_a_diary_at_the_old_place_is_moved_in_whole(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    write_old_diary(state, tmp_path / "scratch")
    assert diary_exists(state) and not (state / DIARY_FILENAME).exists()
    with Diary.open(state, wall_clock=lambda: NOW, tz=TZ) as d:
        assert [(n.entry.entry_date, n.entry.leg_symptoms) for n in d.nightly()] == [
            (date(2026, 3, 14), 4),
            (date(2026, 3, 15), 7),
        ]
        d.add_nightly(NightlyEntry(date(2026, 3, 13), leg_symptoms=1))
    assert sorted(p.name for p in state.iterdir()) == ["diary", "diary.sqlite3.moved"]
    assert sorted(p.name for p in (state / "diary").iterdir()) == ["diary.sqlite3"]
    assert stat.S_IMODE((state / DIARY_FILENAME).stat().st_mode) == DIARY_FILE_MODE
    moved = sqlite3.connect(state / "diary.sqlite3.moved")  # kept, whole
    try:
        assert moved.execute("SELECT COUNT(*) FROM nightly").fetchone()[0] == 2
    finally:
        moved.close()


def test_a_diary_in_its_folder_wins_over_one_at_the_old_place(tmp_path: Path) -> None:
    with Diary.open(tmp_path, wall_clock=lambda: NOW, tz=TZ) as d:
        d.add_nightly(NightlyEntry(date(2026, 3, 10), leg_symptoms=2))
    write_old_diary(tmp_path, tmp_path / "scratch")
    with Diary.open(tmp_path, wall_clock=lambda: NOW, tz=TZ) as d:
        assert [n.entry.entry_date for n in d.nightly()] == [date(2026, 3, 10)]
    assert (tmp_path / OLD_DIARY_FILENAME).is_file()  # left alone


def test_an_old_diary_that_cannot_be_renamed_is_still_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    write_old_diary(state, tmp_path / "scratch")
    replace = os.replace

    def read_only_state_dir(source: Path, target: Path) -> None:
        if Path(source) == state / OLD_DIARY_FILENAME:
            raise PermissionError(13, "Permission denied")
        replace(source, target)

    monkeypatch.setattr("care.diary_schema.os.replace", read_only_state_dir)
    with caplog.at_level(logging.WARNING), Diary.open(state, wall_clock=lambda: NOW) as d:
        assert len(d.nightly()) == 2
    assert "cannot rename it: [Errno 13] Permission denied" in caplog.text
    assert (state / OLD_DIARY_FILENAME).is_file()


def test_an_old_diary_that_is_not_a_database_is_a_storage_error_naming_it(
    tmp_path: Path,
) -> None:
    (tmp_path / OLD_DIARY_FILENAME).write_bytes(b"not a database, just some text" * 100)
    with pytest.raises(DiaryStorageError, match="old place cannot be moved in") as err:
        Diary.open(tmp_path, wall_clock=lambda: NOW)
    assert err.value.path == tmp_path / OLD_DIARY_FILENAME
    assert list((tmp_path / "diary").iterdir()) == []  # no partial copy


def test_two_openers_moving_the_old_diary_at_once_lose_no_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While this opener copies the old diary, another one moves it in and writes a
    new entry; this copy must not replace that diary."""
    state = tmp_path / "state"
    state.mkdir()
    write_old_diary(state, tmp_path / "scratch")
    import care.diary_schema as schema

    real_backup = schema._backup

    def the_other_opener_wins(source: Path, target: Path) -> None:
        real_backup(source, target)
        monkeypatch.setattr(schema, "_backup", real_backup)  # the other opener: plain
        with Diary.open(state, wall_clock=lambda: NOW, tz=TZ) as other:
            other.add_nightly(NightlyEntry(date(2026, 3, 13), leg_symptoms=1))

    monkeypatch.setattr(schema, "_backup", the_other_opener_wins)
    with Diary.open(state, wall_clock=lambda: NOW, tz=TZ) as d:
        assert [n.entry.entry_date for n in d.nightly()] == [
            date(2026, 3, 13),
            date(2026, 3, 14),
            date(2026, 3, 15),
        ]
    assert [p.name for p in (state / "diary").iterdir()] == ["diary.sqlite3"]  # no temp left


@pytest.mark.parametrize(
    ("text", "day"), [("2026-11-20", date(2026, 11, 20)), (" 20261120 ", date(2026, 11, 20))]
)
def test_a_date_is_written_yyyy_mm_dd_or_yyyymmdd(text: str, day: date) -> None:
    assert calendar_date(text) == parse_date(text) == day


@pytest.mark.parametrize(
    "text", ["2026-W47-5", "2026W475", "2026-W47", "2026-330", "2026-1120", "٢٠٢٦-١١-٢٠", ""]
)
def test_a_week_or_ordinal_date_is_not_taken(text: str) -> None:
    """``date.fromisoformat`` reads ``2026-W47-5`` as 20 Nov: no patient means it."""
    with pytest.raises(ValueError):
        calendar_date(text)
    with pytest.raises(DiaryError, match="write it as YYYY-MM-DD"):
        parse_date(text)


DAMAGED_ROWS = (
    "INSERT INTO nightly (entry_date, recorded_at_s, note) VALUES ('garbage', 1.8e9, '')",
    "INSERT INTO nightly (entry_date, recorded_at_s, side_effects) VALUES ('2026-03-02', 1.8e9, "
    "'fireworks')",
    "INSERT INTO nightly (entry_date, recorded_at_s) VALUES ('2026-03-03', 1e300)",
    "INSERT INTO nightly (entry_date, recorded_at_s, note) VALUES ('2026-03-04', 1.8e9, X'FFFE')",
    "INSERT INTO irls (entry_date, recorded_at_s, baseline) VALUES ('2026-03-05', 1.8e9, 0)",
)


def test_damaged_rows_are_left_out_and_counted_the_rest_read(
    diary: Diary, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A row the diary's own code would never write (a bad date, an unknown side effect,
    a time out of range, a note that is not text, an IRLS without its item scores) made
    every read fail with Python's words ("Invalid isoformat string: 'garbage'"): no
    `diary show`, no clinic report, for one row. Or it read an IRLS without items as a
    total of 0, "none". Such rows are now left out and counted, as the ledger's are."""
    diary.add_nightly(NightlyEntry(TODAY, leg_symptoms=8))
    diary.add_irls(TODAY, FULL_ITEMS)
    conn = sqlite3.connect(tmp_path / DIARY_FILENAME)
    try:
        for sql in DAMAGED_ROWS:
            conn.execute(sql)
        conn.commit()
    finally:
        conn.close()
    with caplog.at_level(logging.WARNING, logger="care.diary"):
        assert [n.entry.leg_symptoms for n in diary.nightly()] == [8]
        assert [i.total for i in diary.irls()] == [20]
    assert diary.damaged_rows == 5
    assert [i.total for i in diary.irls(history=True)] == [20]
    assert diary.damaged_rows == 5  # each row counted once
    assert "damaged diary nightly row" in caplog.text
    with pytest.raises(DiaryError, match="nightly entry 2 is damaged"):
        diary.correctable_nightly(2)
