"""nirpad history: table, CSV and JSON straight from a ledger with rows."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from firmware_host.cli import main
from profiles.store import install_atomic
from safety.faults import Outcome
from safety.ledger import Ledger
from tests.care.course_fixture import RX_TOML
from tests.firmware_host.locked_out import run_locked_out

T0 = datetime(2025, 3, 3, 19, 0, tzinfo=UTC)


class WallClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Path:
    clock = WallClock()
    ledger = Ledger.open(tmp_path, clock)
    try:
        first = ledger.begin_session(
            "rls-810-standard", "a" * 64, {810: 90.0}, planned_duration_s=1800
        )
        clock.now += timedelta(seconds=1800)
        ledger.end_session(first, Outcome.COMPLETED, {810: 89.95})
        clock.now = T0 + timedelta(days=2)
        second = ledger.begin_session("rls-dual", "b" * 64, {810: 45.0, 850: 45.0})
        clock.now += timedelta(seconds=605)
        ledger.end_session(
            second, Outcome.FAULT, {810: 10.0, 850: 5.25}, fault_code="skin_overtemp"
        )
        clock.now = T0 + timedelta(days=4)
        third = ledger.begin_session("rls-810-standard", "a" * 64, {810: 90.0})
        ledger.checkpoint(third, {810: 1.5}, 5.0)
        ledger.checkpoint(third, {810: 3.0}, 10.0)
    finally:
        ledger.close()
    return tmp_path


def test_json_lists_sessions_oldest_first(
    ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--json", "--state-dir", str(ledger_dir)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["profile_id"] for r in rows] == ["rls-810-standard", "rls-dual", "rls-810-standard"]
    first, second, third = rows
    assert first["started_at"] == "2025-03-03T19:00:00+00:00"
    assert first["duration_s"] == 1800.0 and first["outcome"] == "completed"
    assert first["delivered_fluence_j_cm2"] == pytest.approx(89.95)
    assert first["planned_fluence_j_cm2"] == pytest.approx(90.0)
    assert second["delivered_fluence_by_nm_j_cm2"] == {"810": 10.0, "850": 5.25}
    assert second["outcome"] == "fault" and second["fault_code"] == "skin_overtemp"
    assert third["outcome"] is None and third["duration_s"] is None


def test_csv_has_header_and_rows(ledger_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--csv", "--state-dir", str(ledger_dir)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    assert rows[0]["profile_id"] == "rls-810-standard"
    assert rows[0]["duration_s"] == "1800"
    assert rows[0]["delivered_fluence_j_cm2"] == "89.95"
    assert rows[0]["planned_fluence_j_cm2"] == "90.00"
    assert rows[1]["outcome"] == "fault" and rows[1]["fault_code"] == "skin_overtemp"
    assert rows[1]["delivered_fluence_j_cm2"] == "15.25"
    assert rows[2]["outcome"] == "" and rows[2]["duration_s"] == ""


def test_table_for_people(ledger_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--state-dir", str(ledger_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["date", "profile"]
    assert "30:00" in lines[1] and "90.0" in lines[1] and "completed" in lines[1]
    assert "10:05" in lines[2] and "fault (skin_overtemp)" in lines[2]
    assert "in progress" in lines[3]


def test_no_ledger_is_empty_history_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "fresh"
    assert main(["history", "--state-dir", str(state)]) == 0
    assert "No sessions recorded" in capsys.readouterr().out
    assert main(["history", "--json", "--state-dir", str(state)]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["history", "--csv", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().out.startswith("started_at,")
    assert not state.exists()


def test_damaged_ledger_is_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    assert main(["history", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nirpad: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv", [["history"], ["course"]])
def test_an_empty_ledger_file_is_said_to_be_empty_not_an_old_version(
    ledger_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """A 0-byte ledger (a first opening cut short) beside its backup: the commands say
    it is empty and that the controller restores it, never "schema 0"."""
    install_atomic(ledger_dir, RX_TOML)
    ledger = ledger_dir / "ledger.sqlite3"
    ledger.write_bytes(b"")
    assert main([*argv, "--state-dir", str(ledger_dir)]) == 1
    assert capsys.readouterr().err == (
        "nirpad: The treatment record cannot be read: its file is empty (a first opening "
        "cut short, or the file emptied); the controller restores it from its backup "
        f"(ledger.backup.sqlite3) when it starts ({ledger}).\n"
    )


@pytest.mark.timeout(10)
@pytest.mark.parametrize("argv", [["history"], ["course"], ["report", "-o", "{out}"]])
def test_a_ledger_that_is_not_a_file_is_an_error_not_no_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    install_atomic(state_dir, RX_TOML)
    ledger = state_dir / "ledger.sqlite3"
    os.mkfifo(ledger)  # nobody writes it: an open would wait for ever
    args = [a.format(out=tmp_path / "r.pdf") for a in argv]
    assert main([*args, "--state-dir", str(state_dir)]) == 1
    out, err = capsys.readouterr()
    assert "No sessions" not in out
    assert err == f"nirpad: The treatment record cannot be read: it is not a file ({ledger}).\n"


def test_a_session_in_progress_shows_the_dose_of_its_last_checkpoint(
    ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--json", "--state-dir", str(ledger_dir)]) == 0
    third = json.loads(capsys.readouterr().out)[2]
    assert third["outcome"] is None
    assert third["delivered_fluence_j_cm2"] == pytest.approx(3.0)
    assert third["delivered_fluence_by_nm_j_cm2"] == {"810": 3.0}


def test_a_session_in_progress_without_a_checkpoint_shows_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Ledger.open(tmp_path, WallClock()) as ledger:
        ledger.begin_session("rls-810-standard", "a" * 64, {810: 90.0})
    assert main(["history", "--json", "--state-dir", str(tmp_path)]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert only["outcome"] is None and only["delivered_fluence_j_cm2"] == 0.0


def test_a_damaged_row_is_left_out_and_counted_on_stderr(
    ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(ledger_dir / "ledger.sqlite3") as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json' WHERE id = 2")
    conn.close()
    assert main(["history", "--json", "--state-dir", str(ledger_dir)]) == 0
    out, err = capsys.readouterr()
    assert [r["profile_id"] for r in json.loads(out)] == ["rls-810-standard"] * 2
    assert err == (
        "nirpad: 1 damaged row(s) of the treatment record could not be read and are not "
        "shown; the rest is.\n"
    )


def test_history_reads_the_ledger_without_writing_it(
    ledger_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A caregiver's read needs no write access: nothing is migrated, created or locked."""
    with sqlite3.connect(ledger_dir / "ledger.sqlite3") as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # everything in the main file
    conn.close()
    before = {p.name: p.read_bytes() for p in ledger_dir.iterdir()}
    ledger_dir.chmod(0o555)
    try:
        assert main(["history", "--json", "--state-dir", str(ledger_dir)]) == 0
    finally:
        ledger_dir.chmod(0o755)
    assert len(json.loads(capsys.readouterr().out)) == 3
    assert {p.name: p.read_bytes() for p in ledger_dir.iterdir()} == before


def test_a_state_directory_this_user_may_not_search_is_an_error_not_no_sessions(
    ledger_dir: Path,
) -> None:
    """Run as root without its override of file modes (or as the user running the tests):
    a folder of mode 000 hides the ledger, which is never told as "no sessions"."""
    done = run_locked_out(ledger_dir, ["-m", "firmware_host", "history", "--state-dir", ledger_dir])
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "nirpad: The treatment record cannot be read: this user has no permission "
        f"({ledger_dir / 'ledger.sqlite3'}).\n"
    )


def test_the_table_and_the_csv_round_a_duration_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """17.97 s is 0:18 in the table and 18 in the CSV; 59.6 s is 1:00, never 0:59."""
    clock = WallClock()
    with Ledger.open(tmp_path, clock) as ledger:
        for seconds in (17.97, 59.6):
            session = ledger.begin_session("rls-810-standard", "a" * 64, {810: 90.0})
            clock.now += timedelta(seconds=seconds)
            ledger.end_session(session, Outcome.STOPPED, {810: 1.0})
            clock.now += timedelta(days=1)
    assert main(["history", "--state-dir", str(tmp_path)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in table[1:]] == ["0:18", "1:00"]
    assert main(["history", "--csv", "--state-dir", str(tmp_path)]) == 0
    rows = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert [row["duration_s"] for row in rows] == ["18", "60"]
