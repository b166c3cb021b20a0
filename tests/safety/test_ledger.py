"""The dose ledger: records, schema and migrations, and every way storage can fail."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from safety.errors import LedgerError
from safety.faults import FaultCode, Outcome
from safety.ledger import LEDGER_FILENAME, MIN_FREE_BYTES, Ledger, LedgerConnection
from safety.ledger_schema import SCHEMA_VERSION, ledger_error, prepare, reason_of

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=UTC)


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


class Storage:
    """What is under the ``ledger`` fixture, through ``Ledger.open(connection=...)``: the
    connections it made (``opened``), and SQL that fails (``fail_on``) as storage fails."""

    def __init__(self) -> None:
        self.opened: list[sqlite3.Connection] = []
        self.failing: tuple[str, str] | None = None
        storage = self

        class Connection(LedgerConnection):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                storage.opened.append(self)

            def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
                if storage.failing is not None and sql.startswith(storage.failing[0]):
                    raise sqlite3.OperationalError(storage.failing[1])
                return super().execute(sql, *args)

        self.connection = Connection

    @property
    def conn(self) -> sqlite3.Connection:
        """The ledger's one connection."""
        (conn,) = self.opened
        return conn

    def fail_on(self, prefix: str, message: str) -> None:
        """SQL starting with ``prefix`` raises OperationalError(``message``) from now on."""
        self.failing = (prefix, message)

    def heal(self) -> None:
        self.failing = None


@pytest.fixture
def storage() -> Storage:
    return Storage()


@pytest.fixture
def ledger(tmp_path: Path, clock: WallClock, storage: Storage) -> Iterator[Ledger]:
    with Ledger.open(tmp_path, clock, display_tz=UTC, connection=storage.connection) as opened:
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path / LEDGER_FILENAME)


# -- records ------------------------------------------------------------------------


def test_light_after_the_close_raises_a_closed_row_and_nothing_else(
    ledger: Ledger, clock: WallClock, caplog: pytest.LogCaptureFixture
) -> None:
    sid = ledger.begin_session("rls-std", "ab" * 32, {810: 4.0}, planned_duration_s=100)
    ledger.add_after_close(sid, {810: 1.0})  # open: the end writes the dose
    ledger.add_after_close(sid + 1, {810: 1.0})  # no such row
    assert f"session {sid} is not a closed session" in caplog.text
    assert f"session {sid + 1} is not a closed session" in caplog.text
    (record,) = ledger.sessions()
    assert record.ended_at is None and record.delivered_fluence_total_j_cm2 == 0.0
    ledger.end_session(sid, Outcome.STOPPED, {810: 1.0})
    clock.advance(seconds=0.1)
    ledger.add_after_close(sid, {810: 1.25})
    (record,) = ledger.sessions()
    assert record.delivered_fluence_j_cm2 == {810: 1.25}
    assert record.delivered_fluence_total_j_cm2 == 1.25
    assert record.outcome is Outcome.STOPPED
    for lower_or_same in (1.0, 1.25):  # never lowered; the same figure is no change
        ledger.add_after_close(sid, {810: lower_or_same})
        assert ledger.sessions()[0].delivered_fluence_j_cm2 == {810: 1.25}


def test_a_session_is_recorded_with_every_column(ledger: Ledger, clock: WallClock) -> None:
    sid = ledger.begin_session(
        "rls-std", "ab" * 32, {810: 44.25, 850: 44.25}, planned_duration_s=1800
    )
    clock.advance(seconds=5)
    ledger.checkpoint(sid, {810: 0.1, 850: 0.1}, 5.0)
    clock.advance(minutes=30)
    ledger.end_session(sid, Outcome.COMPLETED, {810: 44.0, 850: 44.2})
    (record,) = ledger.sessions()
    assert record.id == sid
    assert (record.profile_id, record.profile_sha256) == ("rls-std", "ab" * 32)
    assert record.started_at == T0
    assert record.ended_at == T0 + timedelta(minutes=30, seconds=5)
    assert record.planned_duration_s == 1800
    assert record.planned_fluence_j_cm2 == {810: 44.25, 850: 44.25}
    assert record.planned_fluence_total_j_cm2 == 88.5
    assert record.delivered_fluence_j_cm2 == {810: 44.0, 850: 44.2}
    assert record.delivered_fluence_total_j_cm2 == pytest.approx(88.2)
    assert (record.outcome, record.fault_code) == (Outcome.COMPLETED, None)
    (checkpoint,) = ledger.checkpoints(sid)
    assert (checkpoint.session_id, checkpoint.elapsed_s) == (sid, 5.0)
    assert checkpoint.at == T0 + timedelta(seconds=5)
    assert checkpoint.delivered_fluence_j_cm2 == {810: 0.1, 850: 0.1}
    assert checkpoint.delivered_fluence_total_j_cm2 == pytest.approx(0.2)


def test_sessions_are_newest_first_and_limited(ledger: Ledger, clock: WallClock) -> None:
    ids = []
    for _ in range(3):
        ids.append(ledger.begin_session("p", "h", {810: 1.0}))
        ledger.end_session(ids[-1], Outcome.STOPPED, {810: 0.5})
        clock.advance(days=1)
    assert [s.id for s in ledger.sessions()] == ids[::-1]
    assert [s.id for s in ledger.sessions(limit=2)] == ids[:0:-1]


def test_the_last_session_is_the_one_begun_last_even_after_the_clock_went_back(
    ledger: Ledger, clock: WallClock
) -> None:
    assert ledger.last_session() is None
    first = ledger.begin_session("p", "h", {810: 1.0})
    clock.advance(days=-1)  # the wall clock is set back a day
    last = ledger.begin_session("p", "h", {810: 1.0})
    assert [s.id for s in ledger.sessions()] == [first, last]  # by their wall times
    record = ledger.last_session()
    assert record is not None and record.id == last


def test_a_fault_session_keeps_its_code(ledger: Ledger) -> None:
    sid = ledger.begin_session("p", "h", {810: 1.0})
    ledger.record_fault(FaultCode.SKIN_OVERTEMP, "too warm", sid)
    ledger.end_session(sid, Outcome.FAULT, {810: 0.2}, fault_code=FaultCode.SKIN_OVERTEMP)
    (record,) = ledger.sessions()
    assert (record.outcome, record.fault_code) == (Outcome.FAULT, "skin_overtemp")


def test_faults_and_installs_are_newest_first(ledger: Ledger, clock: WallClock) -> None:
    sid = ledger.begin_session("p", "h", {810: 1.0})
    ledger.record_fault(FaultCode.BOARD_RESET, "restarted", sid)
    clock.advance(seconds=1)
    ledger.record_fault("self_test_failed", "no answer")
    ledger.record_install("rls-std", "cd" * 32, "/var/lib/nirpad/prescription.toml")
    clock.advance(seconds=1)
    ledger.record_install("rls-low", "ef" * 32, "/x.toml")
    faults = ledger.faults()
    assert [(f.code, f.session_id) for f in faults] == [
        ("self_test_failed", None),
        ("board_reset", sid),
    ]
    assert faults[1].message == "restarted"
    assert faults[1].at == T0
    assert [f.code for f in ledger.faults(session_id=sid)] == ["board_reset"]
    assert len(ledger.faults(limit=1)) == 1
    installs = ledger.installs()
    assert [(i.profile_id, i.path) for i in installs] == [
        ("rls-low", "/x.toml"),
        ("rls-std", "/var/lib/nirpad/prescription.toml"),
    ]
    assert installs[1].sha256 == "cd" * 32
    assert installs[0].at == T0 + timedelta(seconds=2)
    assert len(ledger.installs(limit=1)) == 1


def test_records_survive_a_reopen(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock) as first:
        sid = first.begin_session("p", "h", {810: 1.0})
        first.checkpoint(sid, {810: 0.5}, 5.0)
    with Ledger.open(tmp_path, clock) as second:
        assert [s.id for s in second.sessions()] == [sid]
        assert len(second.checkpoints(sid)) == 1


def test_the_file_is_wal_with_the_current_schema(ledger: Ledger, tmp_path: Path) -> None:
    assert ledger.path == tmp_path / LEDGER_FILENAME
    with closing(raw(tmp_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    assert SCHEMA_VERSION == 2


def test_the_files_are_private_to_owner_and_group(tmp_path: Path, clock: WallClock) -> None:
    """Health data: a new ledger, its WAL and shared-memory files give others no access."""
    old_umask = os.umask(0o022)  # a typical interactive shell's
    try:
        with Ledger.open(tmp_path, clock) as opened:
            opened.begin_session("p", "h", {810: 1.0})
            files = sorted(tmp_path.glob(LEDGER_FILENAME + "*"))
            assert [f.name[len(LEDGER_FILENAME) :] for f in files] == ["", "-shm", "-wal"]
            assert {oct(f.stat().st_mode & 0o777) for f in files} == {oct(0o640)}
    finally:
        os.umask(old_umask)


def test_an_existing_ledger_keeps_its_mode(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock):
        pass
    (tmp_path / LEDGER_FILENAME).chmod(0o600)
    with Ledger.open(tmp_path, clock) as reopened:
        assert reopened.sessions() == []
    assert (tmp_path / LEDGER_FILENAME).stat().st_mode & 0o777 == 0o600


def test_the_state_dir_is_created(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path / "a" / "b", clock) as opened:
        assert opened.path.exists()


def test_closed_ledger_refuses_and_close_is_idempotent(tmp_path: Path, clock: WallClock) -> None:
    opened = Ledger.open(tmp_path, clock)
    opened.close()
    opened.close()
    with pytest.raises(LedgerError, match="is closed") as caught:
        opened.sessions()
    assert caught.value.path == str(tmp_path / LEDGER_FILENAME)
    assert "closed" in (opened.writable_refusal() or "")


# -- refused writes ----------------------------------------------------------------


def test_ending_a_session_that_is_not_open_is_refused(ledger: Ledger) -> None:
    sid = ledger.begin_session("p", "h", {810: 1.0})
    ledger.end_session(sid, Outcome.STOPPED, {810: 0.1})
    with pytest.raises(LedgerError, match=f"Session {sid} is not open"):
        ledger.end_session(sid, Outcome.COMPLETED, {810: 1.0})
    with pytest.raises(LedgerError, match="Session 99 is not open"):
        ledger.end_session(99, Outcome.COMPLETED, {810: 1.0})
    assert ledger.sessions()[0].outcome == Outcome.STOPPED


def test_a_checkpoint_for_an_unknown_session_is_refused(ledger: Ledger) -> None:
    with pytest.raises(LedgerError, match="could not save a dose checkpoint"):
        ledger.checkpoint(42, {810: 1.0}, 5.0)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.1])
def test_impossible_fluence_is_refused(ledger: Ledger, value: float) -> None:
    with pytest.raises(LedgerError, match="Refusing to record fluence"):
        ledger.begin_session("p", "h", {810: value})
    assert ledger.sessions() == []


def test_a_wall_clock_without_a_zone_is_refused(tmp_path: Path) -> None:
    with (
        Ledger.open(tmp_path, lambda: datetime(2026, 1, 1)) as naive,
        pytest.raises(LedgerError, match="without a time zone"),
    ):
        naive.record_fault("x", "y")


# -- schema and migrations ----------------------------------------------------------


def test_an_empty_file_is_migrated(tmp_path: Path, clock: WallClock) -> None:
    (tmp_path / LEDGER_FILENAME).write_bytes(b"")
    with Ledger.open(tmp_path, clock) as opened:
        opened.record_fault("x", "y")
    with closing(raw(tmp_path)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_a_version_0_database_is_migrated(tmp_path: Path, clock: WallClock) -> None:
    with closing(raw(tmp_path)) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (0)")
        conn.commit()
    with Ledger.open(tmp_path, clock) as opened:
        assert opened.sessions() == []
    with closing(raw(tmp_path)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_a_version_1_ledger_gains_the_events_table_and_keeps_its_rows(
    tmp_path: Path, clock: WallClock
) -> None:
    with Ledger.open(tmp_path, clock) as opened:
        sid = opened.begin_session("p", "h", {810: 1.0})
    with closing(raw(tmp_path)) as conn:  # back to version 1, as an older nirpad left it
        conn.execute("DROP TABLE events")
        conn.execute("UPDATE schema_version SET version = 1")
        conn.commit()
    with Ledger.open(tmp_path, clock) as reopened:
        assert [s.id for s in reopened.sessions()] == [sid]
        assert reopened.events() == []
    with closing(raw(tmp_path)) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_a_future_version_is_refused(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock):
        pass
    with closing(raw(tmp_path)) as conn:
        conn.execute("UPDATE schema_version SET version = 7")
        conn.commit()
    with pytest.raises(LedgerError, match=r"newer nirpad \(schema 7; this version knows up to 2\)"):
        Ledger.open(tmp_path, clock)


def test_a_failed_migration_leaves_nothing_half_done(tmp_path: Path, clock: WallClock) -> None:
    with closing(raw(tmp_path)) as conn:
        conn.execute("CREATE TABLE sessions (x)")  # not ours: migration 1 cannot create it
        conn.commit()
    with pytest.raises(LedgerError, match="cannot be opened"):
        Ledger.open(tmp_path, clock)
    with closing(raw(tmp_path)) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert names == {"sessions"}


def test_a_database_that_cannot_use_wal_is_refused() -> None:
    with (
        closing(sqlite3.connect(":memory:")) as conn,
        pytest.raises(LedgerError, match="write-ahead"),
    ):
        prepare(conn, ":memory:")


# -- damaged, locked, unopenable -------------------------------------------------------


def test_garbage_bytes_are_a_refusal_not_a_crash(tmp_path: Path, clock: WallClock) -> None:
    (tmp_path / LEDGER_FILENAME).write_bytes(os.urandom(8192))
    with pytest.raises(LedgerError) as caught:
        Ledger.open(tmp_path, clock)
    assert str(caught.value).startswith(
        "The treatment record cannot be opened: the file is damaged"
    )


def test_a_damaged_page_is_found_by_the_integrity_check(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock) as opened:
        sid = opened.begin_session("p", "h", {810: 1.0})
        for i in range(20):  # the table stays one leaf page, so quick_check can list it
            opened.checkpoint(sid, {810: i / 100}, i * 5.0)
    with closing(raw(tmp_path)) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'checkpoints'")
        page = root.fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with (tmp_path / LEDGER_FILENAME).open("r+b") as file:
        file.seek((page - 1) * page_size + 8)
        file.write(b"\xff" * 16)
    with pytest.raises(LedgerError, match="The treatment record is damaged") as caught:
        Ledger.open(tmp_path, clock)
    assert "page" in str(caught.value)


def test_a_locked_database_is_refused(tmp_path: Path, clock: WallClock) -> None:
    with Ledger.open(tmp_path, clock):
        pass
    with closing(raw(tmp_path)) as holder:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO faults (at_s, code, message) VALUES (0, 'x', 'y')")
        with pytest.raises(LedgerError, match="another program is using it"):
            Ledger.open(tmp_path, clock, busy_timeout_s=0.05)
        holder.rollback()


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path, clock: WallClock) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("not a directory")
    with pytest.raises(LedgerError, match="cannot be opened") as caught:
        Ledger.open(blocker, clock)
    assert caught.value.path == str(blocker / LEDGER_FILENAME)


# -- writes that fail --------------------------------------------------------------------


def test_disk_full_on_a_checkpoint_raises_ledger_error_and_rolls_back(
    ledger: Ledger, storage: Storage
) -> None:
    sid = ledger.begin_session("p", "h", {810: 1.0})
    storage.fail_on("INSERT INTO checkpoints", "database or disk is full")
    with pytest.raises(LedgerError, match="could not save a dose checkpoint: the disk is full"):
        ledger.checkpoint(sid, {810: 0.5}, 5.0)
    storage.heal()
    assert ledger.checkpoints(sid) == []
    ledger.end_session(sid, Outcome.FAULT, {810: 0.5}, FaultCode.LEDGER_WRITE_FAILED)
    assert ledger.sessions()[0].outcome == Outcome.FAULT


def test_a_commit_that_fails_is_a_ledger_error(ledger: Ledger, storage: Storage) -> None:
    storage.fail_on("COMMIT", "disk I/O error")
    with pytest.raises(LedgerError, match="the storage reported an error"):
        ledger.record_install("p", "h", "/x")
    storage.heal()
    assert ledger.installs() == []


def test_a_real_full_database_fails_cleanly(ledger: Ledger, storage: Storage) -> None:
    sid = ledger.begin_session("p", "h", {810: 1.0})
    conn = storage.conn  # the page limit is the connection's own
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(LedgerError, match="the disk is full"):
        for i in range(10_000):
            ledger.checkpoint(sid, {810: i / 1000, 850: i / 1000}, float(i))
    assert "the disk is full" in (ledger.writable_refusal() or "")


def test_a_read_that_fails_is_a_ledger_error(ledger: Ledger, storage: Storage) -> None:
    storage.fail_on("SELECT", "database disk image is malformed")
    with pytest.raises(LedgerError, match="could not read the sessions: the file is damaged"):
        ledger.sessions()


def test_writable_when_all_is_well(ledger: Ledger, storage: Storage) -> None:
    assert ledger.writable_refusal() is None
    assert ledger.writable_refusal() is None  # the probe left nothing behind
    assert storage.conn.execute("SELECT COUNT(*) FROM write_probe").fetchone()[0] == 0


def test_not_writable_below_the_free_space_floor_which_is_named(
    ledger: Ledger, mocker: MockerFixture
) -> None:
    """3.9 MB free is below the floor, not a full disk: the refusal says the rule and
    what is free ("the disk is full" is for a write that failed so)."""
    usage = mocker.patch("safety.ledger.shutil.disk_usage")
    usage.return_value.free = 3_900_000
    assert ledger.writable_refusal() == (
        "The treatment record cannot be saved: less than 4 MiB is free on its disk "
        f"(3808 KiB); free some space ({ledger.path})."
    )
    usage.return_value.free = MIN_FREE_BYTES - 1
    assert "(4095 KiB)" in (ledger.writable_refusal() or "")
    usage.return_value.free = MIN_FREE_BYTES
    assert ledger.writable_refusal() is None


def test_not_writable_when_the_free_space_cannot_be_read(
    ledger: Ledger, mocker: MockerFixture
) -> None:
    mocker.patch("safety.ledger.shutil.disk_usage", side_effect=OSError(5, "Input/output error"))
    assert "cannot be saved: Input/output error" in (ledger.writable_refusal() or "")


def test_not_writable_when_a_write_fails(ledger: Ledger, storage: Storage) -> None:
    storage.fail_on("INSERT INTO write_probe", "database or disk is full")
    assert "cannot be saved: the disk is full" in (ledger.writable_refusal() or "")


def test_not_writable_when_read_only(ledger: Ledger, storage: Storage) -> None:
    storage.conn.execute("PRAGMA query_only = ON")  # the connection's own, as a read-only mount
    assert "the storage is read-only" in (ledger.writable_refusal() or "")
    with pytest.raises(LedgerError, match="read-only"):
        ledger.record_fault("x", "y")


def test_a_folder_without_permission_is_a_refusal(
    tmp_path: Path, clock: WallClock, mocker: MockerFixture
) -> None:
    """What the service user meets in a read-only or foreign folder. Tests run as root,
    which ignores file modes, so SQLite's own error for it is injected where it occurs."""
    mocker.patch(
        "safety.ledger.sqlite3.connect",
        side_effect=sqlite3.OperationalError("unable to open database file"),
    )
    with pytest.raises(LedgerError, match="cannot be opened") as raised:
        Ledger.open(tmp_path, clock)
    assert "no permission" in str(raised.value)


def test_unknown_errors_keep_their_text() -> None:
    assert reason_of(sqlite3.OperationalError("no such table: x")) == "no such table: x"
    error = ledger_error("Could not", "/p", sqlite3.OperationalError("database is locked"))
    assert (str(error), error.path) == ("Could not: another program is using it (/p).", "/p")


def test_the_same_write_failure_is_logged_once_and_counted(
    ledger: Ledger, storage: Storage, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk with records retried every second must not log a line a second."""
    caplog.set_level("INFO", logger="safety.ledger")
    storage.fail_on("INSERT INTO faults", "database or disk is full")
    for _ in range(30):
        with pytest.raises(LedgerError, match="the disk is full"):
            ledger.record_fault("x", "y")
    storage.heal()
    ledger.record_fault("x", "y")
    lines = [r.getMessage() for r in caplog.records if r.name == "safety.ledger"]
    failed = [line for line in lines if line.startswith("ledger write failed")]
    assert len(failed) == 1
    assert "ledger writes work again (29 more failures of: database or disk is full)" in lines


def test_a_wall_clock_set_back_during_a_session_never_ends_it_before_it_began(
    ledger: Ledger, clock: WallClock
) -> None:
    sid = ledger.begin_session("p", "h", {810: 4.0}, planned_duration_s=1800)
    clock.advance(minutes=10)
    ledger.checkpoint(sid, {810: 1.0}, 600.0)
    checkpoint_at = clock.now
    clock.advance(hours=-3)  # a caregiver sets the clock back, mid-session
    ledger.end_session(sid, Outcome.STOPPED, {810: 1.2})
    [record] = ledger.sessions()
    assert record.ended_at == checkpoint_at  # its last known time, not 3 h before it began
    assert record.ended_at >= record.started_at


def test_a_session_without_checkpoints_set_back_ends_at_its_start(
    ledger: Ledger, clock: WallClock
) -> None:
    sid = ledger.begin_session("p", "h", {810: 4.0})
    started = clock.now
    clock.advance(hours=-1)
    ledger.end_session(sid, Outcome.STOPPED, {810: 0.0})
    assert [r.ended_at for r in ledger.sessions()] == [started]


# -- records written late (kept while the disk was full) ----------------------------------


def test_an_end_written_late_is_at_the_time_the_light_went_off(
    ledger: Ledger, clock: WallClock, storage: Storage
) -> None:
    sid = ledger.begin_session("p", "h", {810: 4.0}, planned_duration_s=1800)
    clock.advance(minutes=10)
    ledger.checkpoint(sid, {810: 1.0}, 600.0)
    clock.advance(seconds=3)
    light_off_at = clock.now
    storage.fail_on("UPDATE sessions", "database or disk is full")
    with pytest.raises(LedgerError, match="the disk is full"):
        ledger.end_session(sid, Outcome.FAULT, {810: 1.1}, ended_at=light_off_at)
    clock.advance(hours=5)  # the disk stays full for hours
    storage.heal()
    ledger.end_session(sid, Outcome.FAULT, {810: 1.1}, ended_at=light_off_at)
    [record] = ledger.sessions()
    assert record.ended_at == light_off_at
    assert ledger.next_start_allowed_at(20.0, 3) == light_off_at + timedelta(hours=20)
    assert ledger.clock_refusal() is None  # the newest record is the write, now


def test_an_end_written_after_the_clock_was_set_back_keeps_its_time_and_is_the_newest(
    ledger: Ledger, clock: WallClock
) -> None:
    sid = ledger.begin_session("p", "h", {810: 4.0})
    clock.advance(minutes=10)
    light_off_at = clock.now
    clock.advance(hours=-3)  # set back while the end waited for room
    ledger.end_session(sid, Outcome.FAULT, {810: 1.1}, ended_at=light_off_at)
    [record] = ledger.sessions()
    assert record.ended_at == light_off_at
    refusal = ledger.clock_refusal()  # the clock reads before the end it recorded
    assert refusal is not None and "before the last record (2026-11-24 19:10:00)" in refusal


def test_an_end_read_from_a_clock_set_back_during_the_session_is_never_before_it(
    ledger: Ledger, clock: WallClock
) -> None:
    sid = ledger.begin_session("p", "h", {810: 4.0}, planned_duration_s=1800)
    clock.advance(minutes=10)
    ledger.checkpoint(sid, {810: 1.0}, 600.0)
    checkpoint_at = clock.now
    clock.advance(hours=-3)  # set back mid-session: the end is read 3 h before it began
    light_off_at = clock.now
    clock.advance(hours=4)  # the clock is right again by the time the end is written
    ledger.end_session(sid, Outcome.FAULT, {810: 1.1}, ended_at=light_off_at)
    [record] = ledger.sessions()
    assert record.ended_at == checkpoint_at


def test_a_fault_written_late_is_at_the_time_it_latched(ledger: Ledger, clock: WallClock) -> None:
    latched_at = clock.now
    clock.advance(hours=2)
    ledger.record_fault("skin_overtemp", "41.0 °C [recorded late]", at=latched_at)
    ledger.record_fault("stuck_on", "now")
    assert [(f.code, f.at) for f in ledger.faults()] == [
        ("stuck_on", clock.now),
        ("skin_overtemp", latched_at),
    ]


def test_a_late_time_without_a_zone_is_refused(ledger: Ledger) -> None:
    sid = ledger.begin_session("p", "h", {810: 4.0})
    with pytest.raises(LedgerError, match="without a time zone"):
        ledger.end_session(sid, Outcome.STOPPED, {810: 0.0}, ended_at=datetime(2026, 1, 1))
    assert ledger.sessions()[0].ended_at is None
