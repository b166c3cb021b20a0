"""The ledger's read-only API: records oldest first, never writing, the controller's schedule."""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
from contextlib import closing
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from safety.errors import LedgerError
from safety.faults import Outcome
from safety.ledger import LEDGER_FILENAME, Ledger
from safety.ledger_events import EventKind
from safety.ledger_guard import open_guarded
from safety.ledger_rules import format_time
from safety.limits import HARD_LIMITS
from safety.records import Records, ScheduleRule, read_records, schedule_rule
from tests.safety.conftest import make_profile

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _write_two_sessions(state_dir: Path, clock: WallClock) -> None:
    with Ledger.open(state_dir, clock) as ledger:
        ledger.record_install("rx", "h1", "/p.toml")
        first = ledger.begin_session("rx", "h1", {810: 45.0}, planned_duration_s=1800)
        clock.now += timedelta(minutes=30)
        ledger.end_session(first, Outcome.COMPLETED, {810: 45.0})
        ledger.record_fault("skin_overtemp", "too warm", first)
        clock.now += timedelta(days=1)
        second = ledger.begin_session("rx", "h1", {810: 45.0}, planned_duration_s=1800)
        clock.now += timedelta(minutes=5)
        ledger.checkpoint(second, {810: 7.5}, 300.0)
        ledger.flush_backups()


def test_a_missing_ledger_is_an_empty_record_and_nothing_is_created(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    assert read_records(state_dir, WallClock(), ScheduleRule(20, 3)) == Records()
    assert not state_dir.exists()


def test_records_come_oldest_first_and_a_running_session_shows_its_checkpoint(
    tmp_path: Path,
) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    records = read_records(tmp_path, clock)
    assert [s.outcome for s in records.sessions] == [Outcome.COMPLETED, None]
    assert records.sessions[1].delivered_fluence_total_j_cm2 == 7.5
    assert [f.code for f in records.faults] == ["skin_overtemp"]
    assert [i.profile_id for i in records.installs] == ["rx"]
    assert records.next_start_allowed_at is None  # no rule asked about
    assert records.damaged_rows == 0


def test_a_running_session_without_a_checkpoint_shows_nothing_delivered(tmp_path: Path) -> None:
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.begin_session("rx", "h1", {810: 45.0})
    (running,) = read_records(tmp_path, clock).sessions
    assert running.ended_at is None and running.delivered_fluence_total_j_cm2 == 0


def test_reading_never_writes_the_ledger(tmp_path: Path) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    path = tmp_path / LEDGER_FILENAME
    before = path.read_bytes()
    read_records(tmp_path, clock, ScheduleRule(20, 3))
    assert path.read_bytes() == before


def test_the_schedule_is_the_controllers_rule(tmp_path: Path) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)  # the second session is still running
    rule = ScheduleRule(20, 3)
    with Ledger.open(tmp_path, clock) as ledger:
        expected = ledger.next_start_allowed_at(20, 3)
    assert expected is not None
    assert read_records(tmp_path, clock, rule).next_start_allowed_at == expected
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.end_session(2, Outcome.STOPPED, {810: 7.5})
    clock.now += timedelta(hours=20)
    assert read_records(tmp_path, clock, rule).next_start_allowed_at is None


def test_the_records_own_refusal_is_read_with_the_schedule(tmp_path: Path) -> None:
    """Lost, a clock jump not confirmed, the clock behind: the controller's words."""
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    rule = ScheduleRule(20, 3)
    assert read_records(tmp_path, clock, rule).record_problem is None
    assert read_records(tmp_path, clock).record_problem is None  # no start asked about
    clock.now -= timedelta(hours=1)  # set back behind the newest record
    with Ledger.open(tmp_path, clock) as ledger:
        behind = ledger.clock_refusal()
    assert behind is not None and "before the last record" in behind
    assert read_records(tmp_path, clock, rule).record_problem == behind
    clock.now += timedelta(hours=1)
    with Ledger.open(tmp_path, clock) as ledger:
        ledger.record_event(EventKind.CLOCK_JUMP, "ahead by 2 days")
        jumped = ledger.record_refusal()
        ledger.record_event(EventKind.LEDGER_LOST, "found empty")
        lost = ledger.record_refusal()
    assert jumped is not None and jumped.startswith("The clock moved ahead")
    assert lost is not None and lost.startswith("The treatment record was lost")
    assert read_records(tmp_path, clock, rule).record_problem == lost


def test_schedule_rule_takes_the_tighter_of_prescription_and_limits() -> None:
    rx = make_profile(min_interval_h=20.0, sessions_per_week=5)
    limits = dataclasses.replace(HARD_LIMITS, min_interval_h=24.0, sessions_per_week_max=3)
    assert schedule_rule(rx, limits) == ScheduleRule(24.0, 3)
    assert schedule_rule(make_profile(min_interval_h=30.0, sessions_per_week=2), limits) == (
        ScheduleRule(30.0, 2)
    )


def test_a_damaged_row_is_skipped_and_counted(tmp_path: Path) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    with sqlite3.connect(tmp_path / LEDGER_FILENAME) as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json' WHERE id = 1")
    records = read_records(tmp_path, clock)
    assert [s.id for s in records.sessions] == [2]
    assert records.damaged_rows == 1


def test_damaged_rows_are_one_log_line_a_read_not_one_a_row(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    with sqlite3.connect(tmp_path / LEDGER_FILENAME) as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json'")
        conn.execute("UPDATE faults SET at_s = 'x'")
    conn.close()
    caplog.set_level(logging.INFO, logger="safety.records")
    assert read_records(tmp_path, clock).damaged_rows == 3
    assert [r.getMessage() for r in caplog.records if r.name == "safety.records"] == [
        f"3 damaged row(s) of {tmp_path / LEDGER_FILENAME} skipped"
    ]


def test_a_damaged_time_refuses_the_schedule(tmp_path: Path) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    with sqlite3.connect(tmp_path / LEDGER_FILENAME) as conn:
        conn.execute("UPDATE sessions SET ended_at_s = 'x' WHERE id = 1")
    with pytest.raises(LedgerError, match="damaged: session 1 has an unreadable time"):
        read_records(tmp_path, clock, ScheduleRule(20, 3))


def test_a_clock_without_a_zone_is_refused(tmp_path: Path) -> None:
    _write_two_sessions(tmp_path, WallClock())
    with pytest.raises(LedgerError, match="without a zone"):
        read_records(tmp_path, lambda: datetime(2026, 11, 30), ScheduleRule(20, 3))


@pytest.mark.parametrize("version", [1, 99])
def test_another_schema_is_refused_not_migrated(tmp_path: Path, version: int) -> None:
    with sqlite3.connect(tmp_path / LEDGER_FILENAME) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
    with pytest.raises(LedgerError, match=f"schema {version} and this nirpad reads"):
        read_records(tmp_path, WallClock())
    with sqlite3.connect(tmp_path / LEDGER_FILENAME) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "sessions" not in tables


_EMPTY = "The treatment record cannot be read: its file is empty (a first opening cut short, or "
_SECOND = "when the controller starts, it restores one from the site's second backup place if"


@pytest.mark.parametrize(
    ("beside", "at_start", "events"),
    [
        (
            "backup",
            "the controller restores it from its backup (ledger.backup.sqlite3) when it starts",
            [EventKind.LEDGER_RESTORED],
        ),
        (
            "prescription",
            f"no usable backup is beside it: {_SECOND} that holds one, else marks the record "
            "lost until a caregiver runs `nirpad ledger reset`",
            [EventKind.LEDGER_LOST],
        ),
        (
            "nothing",
            f"no backup is beside it and no prescription is installed: {_SECOND} that holds "
            "one, else begins a new record",
            [],
        ),
    ],
)
@pytest.mark.parametrize("contents", [b"", "WAL header"])
def test_an_empty_ledger_file_is_said_to_be_empty_with_what_the_start_does(
    tmp_path: Path, beside: str, at_start: str, events: list[EventKind], contents: bytes | str
) -> None:
    """An empty file (0 bytes, or only the header of a first opening cut short) is not an
    older schema: the reader says it is empty and what the controller's start does with
    it, and the start then does that."""
    clock = WallClock()
    if beside == "backup":
        _write_two_sessions(tmp_path, clock)
    elif beside == "prescription":
        (tmp_path / "prescription.toml").write_text("# a prescription\n")
    path = tmp_path / LEDGER_FILENAME
    path.unlink(missing_ok=True)
    for side in ("-wal", "-shm"):
        path.with_name(path.name + side).unlink(missing_ok=True)
    if isinstance(contents, bytes):
        path.write_bytes(contents)
    else:
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    with pytest.raises(LedgerError) as raised:
        read_records(tmp_path, clock)
    assert str(raised.value) == f"{_EMPTY}the file emptied); {at_start} ({path})."
    with open_guarded(tmp_path, clock) as ledger:
        assert [e.kind for e in ledger.events()] == events


def test_a_file_that_is_not_a_database_is_a_readable_error(tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILENAME).write_bytes(b"x" * 4096)
    with pytest.raises(LedgerError, match="cannot be read: the file is damaged"):
        read_records(tmp_path, WallClock())


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["named pipe", "folder", "link to nothing"])
def test_a_ledger_that_is_not_a_file_is_an_error_not_an_empty_record(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / LEDGER_FILENAME
    if kind == "named pipe":
        os.mkfifo(path)  # nobody writes it: an open would wait for ever
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(tmp_path / "gone.sqlite3")
    with pytest.raises(LedgerError) as refused:
        read_records(tmp_path, WallClock())
    assert str(refused.value) == f"The treatment record cannot be read: it is not a file ({path})."


def test_a_ledger_that_cannot_be_opened_is_a_readable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_two_sessions(tmp_path, WallClock())

    def refuse(*_args: object, **_kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(sqlite3, "connect", refuse)
    with pytest.raises(LedgerError, match="cannot be read: it cannot be opened"):
        read_records(tmp_path, WallClock())


_READER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from safety.records import read_records
records = read_records(Path(sys.argv[1]), lambda: datetime.now(UTC))
print(len(records.sessions), records.sessions[0].outcome)
"""


@pytest.mark.slow
def test_a_reader_that_may_not_write_the_directory_reads_a_cleanly_closed_ledger(
    tmp_path: Path,
) -> None:
    """The caregiver's page under its unit: the controller stopped (no -wal, no -shm)
    and the state directory is not writable to the reader. SQLite cannot make the
    -shm file, so the ledger is read as immutable, and nothing is written."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    state_dir = Path(tempfile.mkdtemp(prefix="nirpad-ro-"))
    try:
        _write_two_sessions(state_dir, WallClock())
        ledger = state_dir / LEDGER_FILENAME
        assert not ledger.with_name(ledger.name + "-shm").exists()
        before = ledger.read_bytes()
        if os.geteuid() == 0:  # root ignores modes: read as nobody, who may not write here
            state_dir.chmod(0o755)
            ledger.chmod(0o644)
            drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        else:
            state_dir.chmod(0o555)
            drop = []
        root = Path(__file__).resolve().parents[2]
        done = subprocess.run(
            [*drop, sys.executable, "-P", "-c", _READER, str(state_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["2", "completed"]
        assert sorted(p.name for p in state_dir.iterdir() if "ledger.sqlite3" in p.name) == [
            "ledger.sqlite3"
        ]
        assert ledger.read_bytes() == before
    finally:
        state_dir.chmod(0o755)
        shutil.rmtree(state_dir)


def test_a_reader_denied_with_a_wal_left_is_refused_not_read_as_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a -wal file left, the main file alone may be stale: never read as immutable."""
    _write_two_sessions(tmp_path, WallClock())
    (tmp_path / f"{LEDGER_FILENAME}-wal").write_bytes(b"")
    uris = _deny_writing_readers(monkeypatch)
    with pytest.raises(LedgerError, match="cannot be read"):
        read_records(tmp_path, WallClock())
    assert len(uris) == 1 and "immutable" not in uris[0]


@pytest.mark.parametrize("side_file", ["-wal", "-journal"])
def test_a_denied_reader_with_a_side_file_left_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side_file: str
) -> None:
    """A -journal left (a crash mid-restore) is a hot journal: the main file alone is
    torn, so it is never read as immutable."""
    _write_two_sessions(tmp_path, WallClock())
    (tmp_path / f"{LEDGER_FILENAME}{side_file}").write_bytes(b"x")
    uris = _deny_writing_readers(monkeypatch)
    with pytest.raises(LedgerError, match="cannot be read"):
        read_records(tmp_path, WallClock())
    assert not any("immutable" in u for u in uris)


def test_a_lock_held_too_long_is_reported_not_read_around(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLITE_BUSY (a writer holds the lock): never read as immutable under a writer."""
    _write_two_sessions(tmp_path, WallClock())
    monkeypatch.setattr(_Denied, "code", 5)
    uris = _deny_writing_readers(monkeypatch)
    with pytest.raises(LedgerError, match="cannot be read"):
        read_records(tmp_path, WallClock())
    assert not any("immutable" in u for u in uris)


def test_a_denied_reader_with_no_wal_reads_the_main_file_as_immutable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_two_sessions(tmp_path, WallClock())
    uris = _deny_writing_readers(monkeypatch)
    records = read_records(tmp_path, WallClock())
    assert [s.outcome for s in records.sessions] == [Outcome.COMPLETED, None]
    assert ["immutable=1" in u for u in uris] == [False, True]


def _deny_writing_readers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """sqlite3.connect where every reader but an immutable one fails as one that may
    not create the -shm file; returns the URIs opened."""
    real_connect = sqlite3.connect
    uris: list[str] = []

    def connect(database: str, *, uri: bool) -> sqlite3.Connection:
        uris.append(database)
        conn = real_connect(database, uri=uri)
        return conn if "immutable=1" in database else _Denied(conn)  # type: ignore[return-value]

    monkeypatch.setattr("safety.records.sqlite3.connect", connect)
    return uris


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / LEDGER_FILENAME).write_bytes(b"not a database at all " * 100)
    with pytest.raises(LedgerError, match="cannot be read"):
        read_records(tmp_path, WallClock())


class _Denied:
    """A connection whose first query fails as a read-only reader's does."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    code = 1544  # SQLITE_READONLY_DIRECTORY, as a reader who may not write the folder gets

    def execute(self, sql: str) -> sqlite3.Cursor:
        exc = sqlite3.OperationalError("attempt to write a readonly database")
        exc.sqlite_errorcode = self.code
        raise exc

    def close(self) -> None:
        self._conn.close()


def test_a_ledger_missing_a_table_is_refused_in_words(tmp_path: Path) -> None:
    from safety.ledger_schema import SCHEMA_VERSION

    conn = sqlite3.connect(tmp_path / LEDGER_FILENAME)
    conn.execute("CREATE TABLE schema_version (version INTEGER)")
    conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION,))
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="cannot be read"):
        read_records(tmp_path, WallClock())


def test_a_folder_that_cannot_be_searched_is_an_error_never_no_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    real_lstat = os.lstat

    def lstat(path: str | os.PathLike[str]) -> os.stat_result:
        if Path(path) == tmp_path / LEDGER_FILENAME:
            raise PermissionError(13, "Permission denied")
        return real_lstat(path)

    monkeypatch.setattr(os, "lstat", lstat)
    with pytest.raises(LedgerError) as raised:
        read_records(tmp_path, clock)
    assert str(raised.value) == (
        "The treatment record cannot be read: this user has no permission "
        f"({tmp_path / LEDGER_FILENAME})."
    )


def test_the_course_begins_at_the_first_session_that_counts_as_the_start_guard_reads_it(
    tmp_path: Path,
) -> None:
    rx = make_profile(id="rx", issued=T0.date())
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        dark = ledger.begin_session("rx", "h1", {810: 45.0})  # ended with no light: not counted
        ledger.end_session(dark, Outcome.STOPPED, {810: 0.0})
        clock.now += timedelta(days=1)
        other = ledger.begin_session("other-rx", "h2", {810: 45.0})
        ledger.end_session(other, Outcome.COMPLETED, {810: 45.0})
        clock.now += timedelta(days=1)
        counted_at = clock.now
        counted = ledger.begin_session("rx", "h1", {810: 45.0})
        ledger.end_session(counted, Outcome.COMPLETED, {810: 45.0})
        guard_reads = ledger.first_session_at("rx", datetime.combine(T0.date(), time.min, UTC))
    assert read_records(tmp_path, clock).course_first_start is None  # not asked
    records = read_records(tmp_path, clock, course_of=rx)
    assert records.course_first_start == guard_reads == counted_at


FAR_TIMES_S = [1e300, -1e300, float("inf"), 253402297200.0]  # the last: 9999-12-31 23:00 UTC
"""Numbers no clock reads: a row damaged so, or a time no local zone can show."""


@pytest.mark.parametrize("far_s", FAR_TIMES_S)
def test_a_time_no_clock_reads_is_a_damaged_row_in_words(tmp_path: Path, far_s: float) -> None:
    """Python's "timestamp out of range for platform time_t" or "year 10000 is out of
    range" reached every reader of the record (history, course, report, reminders) and
    the schedule. Such a row is damaged: skipped and counted, and the schedule, which
    cannot count it, refuses in the record's words."""
    clock = WallClock()
    _write_two_sessions(tmp_path, clock)
    with sqlite3.connect(tmp_path / LEDGER_FILENAME) as conn:
        conn.execute("UPDATE sessions SET started_at_s = ? WHERE id = 1", (far_s,))
        conn.execute("UPDATE faults SET at_s = ?", (far_s,))
    conn.close()
    records = read_records(tmp_path, clock)
    assert [s.id for s in records.sessions] == [2]
    assert records.damaged_rows >= 2
    with pytest.raises(LedgerError, match="damaged: session 1 has an unreadable time"):
        read_records(tmp_path, clock, ScheduleRule(20, 3))
    with Ledger.open(tmp_path, clock) as ledger:
        assert ledger.damaged_row_problem() == "session 1 has an unreadable time or dose"
        with pytest.raises(LedgerError, match="session 1 has an unreadable time"):
            ledger.schedule_refusal(20.0, 3)


@pytest.mark.parametrize("far_s", FAR_TIMES_S)
def test_a_time_no_clock_reads_is_still_said(far_s: float) -> None:
    assert "not a date" in format_time(far_s, UTC, seconds=True)
    assert "not a date" in format_time(far_s, None)
