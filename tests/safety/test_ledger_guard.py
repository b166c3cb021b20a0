"""A lost, emptied, damaged or replaced ledger is noticed; a backup stands in for it.

Each way the record can go (deleted, truncated, garbage, an index that no longer
matches its table, an older copy dropped in its place) either is restored from the
newest usable backup, counting the restore as a session ending at that moment, or,
with no backup, marks the record lost until a caregiver's reset, whose first session
waits one full interval. No rule is ever loosened.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from profiles.store import installed_path
from safety.core_connect import open_ledger
from safety.errors import LedgerDamagedError, LedgerError
from safety.faults import Outcome
from safety.ledger import BACKUP_FILENAME, LEDGER_FILENAME, Ledger
from safety.ledger_events import EventKind
from safety.ledger_guard import open_guarded, read_backup_dir, reset_ledger
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)
INTERVAL_H = 20.0


class WallClock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


def _history(state_dir: Path, clock: WallClock, sessions: int = 1) -> None:
    """An installed prescription and ``sessions`` completed sessions, a day apart."""
    installed_path(state_dir).parent.mkdir(parents=True, exist_ok=True)
    installed_path(state_dir).write_text("# a prescription\n")
    with Ledger.open(state_dir, clock) as ledger:
        ledger.record_install("rx", "sha", str(installed_path(state_dir)))
        for _ in range(sessions):
            sid = ledger.begin_session("rx", "sha", {810: 10.0}, planned_duration_s=600)
            clock.advance(minutes=10)
            ledger.end_session(sid, Outcome.COMPLETED, {810: 10.0})
            clock.advance(hours=24)
    clock.advance(hours=-23)  # one hour after the last session


def _refusal(ledger: Ledger) -> str | None:
    return ledger.lost_refusal() or ledger.schedule_refusal(INTERVAL_H, 7)


def test_a_backup_is_written_after_each_session_install_and_event(
    tmp_path: Path, clock: WallClock
) -> None:
    backup = tmp_path / BACKUP_FILENAME
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.record_install("rx", "sha", "p")
        ledger.flush_backups()  # copied on a worker thread
        assert backup.stat().st_mode & 0o777 == 0o640
        sid = ledger.begin_session("rx", "sha", {810: 1.0})
        mtime_ns = backup.stat().st_mtime_ns
        ledger.end_session(sid, Outcome.COMPLETED, {810: 1.0})
        ledger.flush_backups()
        assert backup.stat().st_mtime_ns != mtime_ns
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as conn:
        assert conn.execute("SELECT outcome FROM sessions").fetchall() == [("completed",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_copy_cut_short_by_a_power_cut_is_removed_by_the_next_backup(
    tmp_path: Path, clock: WallClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A process that dies mid-copy leaves the copy's temporary file, as large as the
    ledger; one a power cut. The next copy to that place removes them, and nothing else."""
    cut_short = [tmp_path / f".{BACKUP_FILENAME}.{name}" for name in ("k3j9x2", "a1b2c3")]
    for stray in cut_short:
        stray.write_bytes(b"\0" * 4096)
    others = [tmp_path / f"{BACKUP_FILENAME}.keep", tmp_path / f".{LEDGER_FILENAME}.x"]
    for other in others:
        other.write_text("not ours to remove")
    caplog.set_level(logging.INFO, "safety.ledger_backup")
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.record_install("rx", "sha", "p")
        ledger.flush_backups()
    assert not any(stray.exists() for stray in cut_short)
    assert all(other.exists() for other in others)
    assert (tmp_path / BACKUP_FILENAME).is_file()
    assert "removed 2 ledger backup copy(ies) cut short" in caplog.text


def test_a_failed_backup_is_logged_and_never_stops_the_record(
    tmp_path: Path, clock: WallClock, caplog: pytest.LogCaptureFixture
) -> None:
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.backup_paths = (tmp_path / "file-not-dir" / BACKUP_FILENAME,)
        (tmp_path / "file-not-dir").write_text("x")
        ledger.record_install("rx", "sha", "p")
        assert [i.sha256 for i in ledger.installs()] == ["sha"]
    assert "ledger backup to" in caplog.text


@pytest.mark.parametrize("how", ["deleted", "truncated", "garbage"])
def test_a_lost_or_damaged_ledger_is_restored_from_its_backup(
    tmp_path: Path, clock: WallClock, how: str
) -> None:
    _history(tmp_path, clock, sessions=2)
    main = tmp_path / LEDGER_FILENAME
    for suffix in ("-wal", "-shm"):
        Path(f"{main}{suffix}").unlink(missing_ok=True)
    if how == "deleted":
        main.unlink()
    elif how == "truncated":
        main.write_bytes(b"")
    else:
        main.write_bytes(os.urandom(8192))
    with open_guarded(tmp_path, clock) as ledger:
        assert len(ledger.sessions()) == 2
        (event,) = ledger.events()
        assert event.kind == EventKind.LEDGER_RESTORED
        assert str(tmp_path / BACKUP_FILENAME) in event.detail
        refusal = _refusal(ledger)  # the restore counts as a session ending now, and says so
        assert refusal is not None and "20 h after the record was restored from its" in refusal
        assert ledger.next_start_allowed_at(INTERVAL_H, 7) == clock() + timedelta(hours=20)
    kept = sorted(p.name for p in tmp_path.glob(f"{LEDGER_FILENAME}.damaged-*"))
    assert kept == (["ledger.sqlite3.damaged-20261125T202000Z"] if how == "garbage" else [])


def test_a_ledger_older_than_its_backup_is_replaced_and_kept(
    tmp_path: Path, clock: WallClock
) -> None:
    _history(tmp_path, clock, sessions=1)
    old_copy = tmp_path / "old.sqlite3"
    with Ledger.open(tmp_path, clock) as ledger:
        own = ledger.backup_paths
        ledger.backup_paths = (old_copy,)
        ledger.backup_now()  # a copy of the ledger as it is now
        ledger.flush_backups()
        ledger.backup_paths = own
        sid = ledger.begin_session("rx", "sha", {810: 10.0})
        ledger.end_session(sid, Outcome.COMPLETED, {810: 10.0})  # backed up as well
    main = tmp_path / LEDGER_FILENAME
    for suffix in ("-wal", "-shm"):
        Path(f"{main}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(old_copy, main)  # somebody puts an older copy in its place
    with open_guarded(tmp_path, clock) as ledger:
        assert len(ledger.sessions()) == 2
        assert ledger.events()[0].kind == EventKind.LEDGER_RESTORED
        assert "older than its backup" in ledger.events()[0].detail
    assert len(list(tmp_path.glob(f"{LEDGER_FILENAME}.replaced-*"))) == 1


def test_without_a_backup_the_record_is_lost_until_a_caregiver_resets_it(
    tmp_path: Path, clock: WallClock
) -> None:
    _history(tmp_path, clock)
    (tmp_path / BACKUP_FILENAME).unlink()
    (tmp_path / LEDGER_FILENAME).unlink()
    clock.advance(hours=30)  # the lost record would have allowed a start by now
    with open_guarded(tmp_path, clock) as ledger:
        problem = _refusal(ledger)
        assert problem is not None and "was lost" in problem and "nirpad ledger reset" in problem
    with open_guarded(tmp_path, clock) as ledger:  # a restart changes nothing
        assert ledger.lost_refusal() is not None
        assert [e.kind for e in ledger.events()] == [EventKind.LEDGER_LOST]
    with reset_ledger(tmp_path, clock, "caregiver") as ledger:
        assert ledger.lost_refusal() is None
        refusal = ledger.schedule_refusal(INTERVAL_H, 7)
        assert refusal is not None and "20 h after the record was reset" in refusal
    clock.advance(hours=20)
    with open_guarded(tmp_path, clock) as ledger:
        assert _refusal(ledger) is None
        kinds = [e.kind for e in ledger.events()]
        assert kinds == [EventKind.LEDGER_RESET, EventKind.LEDGER_LOST]


def test_a_fresh_device_is_not_taken_for_a_lost_record(tmp_path: Path, clock: WallClock) -> None:
    with open_guarded(tmp_path, clock) as ledger:
        assert ledger.events() == [] and _refusal(ledger) is None


def test_a_damaged_ledger_without_a_backup_needs_a_reset(tmp_path: Path, clock: WallClock) -> None:
    (tmp_path / LEDGER_FILENAME).write_bytes(os.urandom(8192))
    with pytest.raises(LedgerDamagedError, match="nirpad ledger reset"):
        open_guarded(tmp_path, clock)
    reason = open_ledger(tmp_path, clock)[1]
    assert reason is not None and reason.count("The treatment record") == 1  # said once
    with reset_ledger(tmp_path, clock, "caregiver") as ledger:
        assert ledger.schedule_refusal(INTERVAL_H, 7) is not None
    assert len(list(tmp_path.glob(f"{LEDGER_FILENAME}.damaged-*"))) == 1


def test_a_damaged_backup_is_never_restored(tmp_path: Path, clock: WallClock) -> None:
    _history(tmp_path, clock)
    (tmp_path / BACKUP_FILENAME).write_bytes(os.urandom(4096))
    (tmp_path / LEDGER_FILENAME).unlink()
    with open_guarded(tmp_path, clock) as ledger:
        assert ledger.lost_refusal() is not None


def test_the_second_backup_place_stands_in_when_the_state_directory_lost_both(
    tmp_path: Path, clock: WallClock
) -> None:
    state, usb = tmp_path / "state", tmp_path / "usb"
    site = tmp_path / "site.toml"
    site.write_text(f'[ledger]\nbackup_dir = "{usb}"\n')
    assert read_backup_dir(site) == usb
    _history(state, clock)
    ledger, problem = open_ledger(state, clock, read_backup_dir(site))  # backs up to both
    assert ledger is not None and problem is None
    ledger.close()
    assert (usb / BACKUP_FILENAME).is_file()
    (state / BACKUP_FILENAME).unlink()
    (state / LEDGER_FILENAME).unlink()
    with open_guarded(state, clock, usb) as restored:
        assert len(restored.sessions()) == 1
        assert str(usb) in restored.events()[0].detail


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ledger]\nbackup_dir = 3\n", "must be a folder path"),
        ("[ledger", "cannot read"),
        (  # tomllib raises a bare ValueError for it
            f"[limits]\nlease_max_ms = {'1' * 5000}\n",
            r"cannot read \[ledger\]: lease_max_ms \(line 2\) is a number with far too many",
        ),
    ],
)
def test_a_bad_backup_setting_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    site = tmp_path / "site.toml"
    site.write_text(text)
    with pytest.raises(LedgerError, match=message):
        read_backup_dir(site)
    assert read_backup_dir(None) is None
    assert read_backup_dir(tmp_path / "none.toml") is None
    site.write_text("[limits]\n")
    assert read_backup_dir(site) is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_a_site_file_the_reader_refuses_is_a_ledger_error(tmp_path: Path, kind: str) -> None:
    """Only a missing file means no second backup place; a FIFO, a directory, a file
    over 64 KiB or one others may write (and so send the backups elsewhere) is refused."""
    site, words = refused_site_file(tmp_path, kind)
    with pytest.raises(LedgerError) as caught:
        read_backup_dir(site)
    assert str(caught.value).startswith(f"{site}: cannot read [ledger]: {words}")
    assert caught.value.path == str(site)
    assert read_backup_dir(tmp_path / "absent" / "site.toml") is None


def test_a_broken_index_is_found_at_open_and_restored(tmp_path: Path, clock: WallClock) -> None:
    """quick_check does not compare an index with its table; integrity_check does."""
    _history(tmp_path, clock, sessions=3)
    main = tmp_path / LEDGER_FILENAME
    with closing(sqlite3.connect(main)) as conn:  # the partial index now means another set
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX sessions_counted_by_start ON "
            "sessions(started_at_s) WHERE delivered_total_j_cm2 < 0' "
            "WHERE name = 'sessions_counted_by_start'"
        )
        conn.commit()
    with closing(sqlite3.connect(main)) as conn:
        assert conn.execute("PRAGMA quick_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA integrity_check").fetchall() != [("ok",)]
    with open_guarded(tmp_path, clock) as ledger:
        assert ledger.events()[0].kind == EventKind.LEDGER_RESTORED
        assert ledger.schedule_refusal(INTERVAL_H, 7) is not None


def test_every_reader_survives_a_damaged_row(tmp_path: Path, clock: WallClock) -> None:
    _history(tmp_path, clock, sessions=2)
    with closing(sqlite3.connect(tmp_path / LEDGER_FILENAME)) as conn:
        conn.execute("UPDATE sessions SET delivered_j_cm2 = 'garbage' WHERE id = 1")
        conn.execute("INSERT INTO faults (at_s, code, message) VALUES ('x', 'c', 'm')")
        conn.commit()
    with Ledger.open(tmp_path, clock) as ledger:
        assert [s.id for s in ledger.sessions()] == [2]
        assert ledger.faults() == []
        assert ledger.damaged_rows == 2


def test_a_session_with_an_unreadable_time_refuses_treatment(
    tmp_path: Path, clock: WallClock
) -> None:
    _history(tmp_path, clock)
    with closing(sqlite3.connect(tmp_path / LEDGER_FILENAME)) as conn:
        conn.execute("UPDATE sessions SET ended_at_s = 'yesterday'")
        conn.commit()
    with (
        Ledger.open(tmp_path, clock) as ledger,
        pytest.raises(LedgerError, match="session 1 has an unreadable time"),
    ):
        ledger.schedule_refusal(INTERVAL_H, 7)


def test_a_ledger_that_never_recorded_the_installed_prescription_is_not_this_pads(
    tmp_path: Path, clock: WallClock
) -> None:
    installed_path(tmp_path).write_text("# a prescription\n")
    with Ledger.open(tmp_path, clock) as other:  # some record, but no install in it
        sid = other.begin_session("rx", "sha", {810: 1.0})
        other.end_session(sid, Outcome.COMPLETED, {810: 1.0})
    (tmp_path / BACKUP_FILENAME).unlink()
    with open_guarded(tmp_path, clock) as ledger:
        assert ledger.lost_refusal() is not None


def test_a_backup_with_a_damaged_page_is_never_restored(tmp_path: Path, clock: WallClock) -> None:
    _history(tmp_path, clock, sessions=3)
    backup = tmp_path / BACKUP_FILENAME
    with closing(sqlite3.connect(f"file:{backup}?mode=ro", uri=True)) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'sessions'")
        root = page.fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with backup.open("r+b") as file:
        file.seek((root - 1) * page_size + 8)
        file.write(b"\xff" * 16)
    (tmp_path / LEDGER_FILENAME).unlink()
    with open_guarded(tmp_path, clock) as ledger:
        assert ledger.lost_refusal() is not None  # not restored from a damaged copy


def test_a_restore_that_fails_is_a_refusal_not_a_crash(
    tmp_path: Path, clock: WallClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(*args: object) -> Ledger:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safety.core_connect.open_guarded", fails)
    ledger, reason = open_ledger(tmp_path, clock)
    assert ledger is None
    assert (
        reason == f"The treatment record cannot be restored: No space left on device ({tmp_path})."
    )


def test_a_ledger_created_anew_never_overwrites_the_backup_of_a_longer_history(
    tmp_path: Path, clock: WallClock, caplog: pytest.LogCaptureFixture
) -> None:
    _history(tmp_path, clock, sessions=2)
    (tmp_path / LEDGER_FILENAME).unlink()
    with Ledger.open(tmp_path, clock) as fresh:  # e.g. a writer that does not guard
        fresh.record_install("rx", "sha", "p")  # tries to back up
    assert "holds records the ledger lacks" in caplog.text
    with open_guarded(tmp_path, clock) as ledger:  # the backup is newer: restored
        assert len(ledger.sessions()) == 2
        assert ledger.events()[0].kind == EventKind.LEDGER_RESTORED


def test_a_row_the_rules_cannot_read_is_damage_restored_from_the_backup(
    tmp_path: Path, clock: WallClock
) -> None:
    _history(tmp_path, clock, sessions=2)
    with closing(sqlite3.connect(tmp_path / LEDGER_FILENAME)) as conn:
        conn.execute("UPDATE sessions SET ended_at_s = 'garbage' WHERE id = 2")
        conn.commit()
    with open_guarded(tmp_path, clock) as ledger:
        assert ledger.damaged_row_problem() is None
        assert ledger.events()[0].kind == EventKind.LEDGER_RESTORED


def test_a_damaged_row_with_a_damaged_backup_is_reset_with_both_kept_aside(
    tmp_path: Path, clock: WallClock
) -> None:
    _history(tmp_path, clock, sessions=2)
    for path in (tmp_path / LEDGER_FILENAME, tmp_path / BACKUP_FILENAME):
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("UPDATE sessions SET started_at_s = 'garbage' WHERE id = 1")
            conn.commit()
    with pytest.raises(LedgerDamagedError, match="session 1 has an unreadable time or dose"):
        open_guarded(tmp_path, clock)
    with reset_ledger(tmp_path, clock, "caregiver") as ledger:
        assert ledger.damaged_row_problem() is None
        assert ledger.schedule_refusal(INTERVAL_H, 7) is not None
    assert len(list(tmp_path.glob(f"{LEDGER_FILENAME}.damaged-*"))) == 1
    assert len(list(tmp_path.glob(f"{BACKUP_FILENAME}.reset-*"))) == 1
    assert (tmp_path / BACKUP_FILENAME).is_file()  # the new record's own backup


def test_a_backup_that_fails_midway_leaves_no_temporary_file(
    tmp_path: Path,
    clock: WallClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def no_room(*args: object) -> None:
        raise OSError(28, "No space left on device")

    with Ledger.open(tmp_path, clock) as ledger:
        monkeypatch.setattr("safety.ledger_backup.os.replace", no_room)
        ledger.record_install("rx", "sha", "p")
        assert [i.sha256 for i in ledger.installs()] == ["sha"]  # the record itself is saved
    assert not list(tmp_path.glob(f".{BACKUP_FILENAME}.*"))
    assert "No space left on device" in caplog.text
