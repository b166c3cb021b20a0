"""``nirpad report`` on a state directory holding the six-week course and its diary."""

from __future__ import annotations

import csv
import errno
import importlib.metadata
import io
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from care.report_fhir import parse_bundle
from firmware_host import output_files, report_commands
from firmware_host.cli import main
from profiles.store import install_atomic
from tests.care.report_fixture import write_course_with_diary
from tests.care.test_report_pdf import pdf_text

NOW = datetime(2026, 12, 23, 12, tzinfo=UTC)
RX_TOML = b"""schema_version = 1
id = "rls-810"
name = "RLS 810 nm evenings"
prescriber = "Dr Test"
issued = 2026-10-01
expires = 2027-03-01
duration_min = 30
ramp_s = 0.0
sessions_per_week = 3
min_interval_h = 20.0
course_weeks = 6

[[channels]]
wavelength_nm = 810
irradiance_mw_cm2 = 25.0

[mode]
kind = "cw"

[window]
start = "18:00"
end = "23:00"
"""


@pytest.fixture(scope="module")
def course_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state_dir = tmp_path_factory.mktemp("state")
    write_course_with_diary(state_dir)
    install_atomic(state_dir, RX_TOML)
    (state_dir / "site.toml").write_text('[device]\nserial = "NP-0042"\n', encoding="utf-8")
    return state_dir


@pytest.fixture(autouse=True)
def _now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_commands, "wall_clock", lambda: NOW)
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)


def _report(state_dir: Path, *args: str) -> int:
    return main(["report", "--state-dir", str(state_dir), "--tz", "Europe/Berlin", *args])


@pytest.mark.slow
def test_the_report_writes_the_pdf_the_csv_and_the_fhir_bundle(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf, table, bundle = tmp_path / "r.pdf", tmp_path / "r.csv", tmp_path / "r.json"
    code = _report(
        course_dir, "--to", "2026-12-22", "-o", str(pdf), "--csv", str(table), "--fhir", str(bundle)
    )
    assert code == 0, capsys.readouterr().err
    assert capsys.readouterr().out.splitlines() == [
        "Report for 2026-10-13 to 2026-12-22 written:",
        f"  {pdf}",
        f"  {table}",
        f"  {bundle}",
    ]
    pages, text = pdf_text(pdf.read_bytes())
    assert pages == 1
    assert "All 6 weeks 15 / 18 14 81% 1 1 3 4 of 6 weeks on target" in text
    assert "Signature: not signed" in text
    assert "Device serial: NP-0042" in text
    assert f"Software version: nirpad {importlib.metadata.version('nirpad')}" in text
    assert "Generated: 2026-12-23 13:00 CET" in text
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert [r["kind"] for r in rows].count("session") == 15  # September's is before the period
    assert [r["kind"] for r in rows].count("irls") == 4  # the baseline (12 Oct) is kept
    assert [r["kind"] for r in rows].count("nightly") == 15
    parsed = parse_bundle(bundle.read_text(encoding="utf-8"))
    assert parsed.type == "collection"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.json", "r.pdf"]
    assert {oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir()} == {"0o640"}


@pytest.mark.slow
def test_the_default_period_is_day_1_to_today(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _report(course_dir, "-o", str(tmp_path / "r.pdf")) == 0
    assert "Report for 2026-10-13 to 2026-12-23 written:" in capsys.readouterr().out
    _, text = pdf_text((tmp_path / "r.pdf").read_bytes())
    assert "Period 13 Oct 2026 to 23 Dec 2026 (72 days)" in text


@pytest.mark.slow
def test_a_from_before_the_first_record_starts_the_period_there_and_says_so(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a period of 739,956 days from year 1: the record's first day is the earlier
    course's first session, 1 Sep 2026."""
    assert _report(course_dir, "-o", str(tmp_path / "r.pdf"), "--from", "0001-01-01") == 0
    out, err = capsys.readouterr()
    assert "Report for 2026-09-01 to 2026-12-23 written:" in out
    assert err == (
        "nirpad: note: nothing is recorded before 2026-09-01: the period starts then, not "
        "on --from 0001-01-01\n"
    )
    _, text = pdf_text((tmp_path / "r.pdf").read_bytes())
    assert "Period 1 Sep 2026 to 23 Dec 2026 (114 days)" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2026-13-01"), "--from '2026-13-01' is not a date: write it as YYYY-MM-DD"),
        (("--to", "22.12.2026"), "--to '22.12.2026' is not a date: write it as YYYY-MM-DD"),
        (("--from", "2026-W47-1"), "--from '2026-W47-1' is not a date: write it as YYYY-MM-DD"),
        (("--to", "2026-330"), "--to '2026-330' is not a date: write it as YYYY-MM-DD"),
        (
            ("--from", "2026-11-02", "--to", "2026-11-01"),
            "the period starts (2026-11-02) after it ends (2026-11-01)",
        ),
        (("--csv", "r.pdf"), "-o, --csv and --fhir must name different files"),
        (("--csv", "x/../r.pdf"), "-o, --csv and --fhir must name different files"),
        (("--csv", ""), "--csv needs a file name; it was empty"),  # never "no CSV"
        (("--fhir", " "), "--fhir needs a file name; it was empty"),
        (("-o", ""), "-o needs a file name; it was empty"),
        (("--tz", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (
            ("--to", "9999-12-31"),
            "the period ends on 9999-12-31, more than a year after today (2026-12-23)",
        ),
    ],
)
def test_a_bad_date_or_option_is_refused_with_exit_2(
    course_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _report(course_dir, "-o", "r.pdf", *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_no_prescription_installed_is_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    assert _report(state_dir, "-o", str(tmp_path / "r.pdf")) == 1
    assert f"no usable prescription is installed in {state_dir}" in capsys.readouterr().err
    assert not (tmp_path / "r.pdf").exists()
    assert list(state_dir.iterdir()) == []  # no diary or ledger created


@pytest.mark.slow
def test_an_unwritable_output_is_exit_1_without_a_traceback(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no such folder" / "r.pdf"
    assert _report(course_dir, "--to", "2026-11-09", "-o", str(target)) == 1
    err = capsys.readouterr().err
    assert f"cannot write {target}: No such file or directory; nothing was written" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_full_disk_leaves_no_partial_file_and_the_old_report_whole(
    course_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "r.pdf").write_bytes(b"last month's report")
    synced: list[int] = []

    def fsync(fd: int) -> None:  # the PDF fits; the disk is full when the CSV is synced
        synced.append(fd)
        if len(synced) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_files.os, "fsync", fsync)
    code = _report(
        course_dir, "--to", "2026-11-09", "-o", str(tmp_path / "r.pdf"), "--csv",
        str(tmp_path / "r.csv"),
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'r.csv'}: the disk is full; nothing was written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pdf"]  # no temporary file left
    assert (tmp_path / "r.pdf").read_bytes() == b"last month's report"


def test_a_serial_that_is_not_text_is_a_site_error(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[device]\nserial = 42\n", encoding="utf-8")
    code = _report(course_dir, "--site-config", str(site), "-o", str(tmp_path / "r.pdf"))
    assert code == 2
    assert "[device] serial must be text of 1 to 64 printable characters" in (
        capsys.readouterr().err
    )


def test_without_a_site_serial_the_pi_serial_or_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pi = tmp_path / "serial-number"
    pi.write_bytes(b"10000000abcdef01\0")
    monkeypatch.setattr(report_commands, "PI_SERIAL_FILES", (tmp_path / "absent", pi))
    assert report_commands.device_serial(None) == "10000000abcdef01"
    monkeypatch.setattr(report_commands, "PI_SERIAL_FILES", (tmp_path / "absent",))
    assert report_commands.device_serial(None) == "not set"


@pytest.mark.slow
def test_a_pad_without_a_serial_sends_no_placeholder_identifier_to_the_clinic(
    course_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """ "not set" as the patient's identifier would merge every such pad's patient into one
    in a clinic's system; the bundle names none, and the caregiver is told."""
    monkeypatch.setattr(report_commands, "PI_SERIAL_FILES", (tmp_path / "absent",))
    site = tmp_path / "site.toml"
    site.write_text("", encoding="utf-8")
    pdf, bundle = tmp_path / "r.pdf", tmp_path / "r.json"
    args = ("--site-config", str(site), "--to", "2026-12-22", "-o", str(pdf), "--fhir", str(bundle))
    assert _report(course_dir, *args) == 0
    assert capsys.readouterr().err == report_commands.NO_SERIAL_NOTE + "\n"
    text = bundle.read_text(encoding="utf-8")
    assert "not set" not in text
    patient = json.loads(text)["entry"][0]["resource"]
    assert patient["resourceType"] == "Patient" and "identifier" not in patient
    assert "Device serial: not set" in pdf_text(pdf.read_bytes())[1]


@pytest.mark.slow
def test_a_csv_target_that_is_a_folder_is_refused_before_any_file_is_replaced(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.pdf").write_bytes(b"last month's report")
    (tmp_path / "r.csv").mkdir()
    code = _report(
        course_dir, "--to", "2026-11-09", "-o", str(tmp_path / "r.pdf"), "--csv",
        str(tmp_path / "r.csv"),
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot write {tmp_path / 'r.csv'}: it is a folder; nothing was written" in err
    assert (tmp_path / "r.pdf").read_bytes() == b"last month's report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.pdf"]


@pytest.mark.slow
def test_a_folder_that_is_not_writable_is_refused_before_any_file_is_replaced(
    course_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access
    monkeypatch.setattr(  # root may write anywhere: the check is what is tested
        output_files.os, "access", lambda path, mode: Path(path) != locked and access(path, mode)
    )
    code = _report(
        course_dir, "--to", "2026-11-09", "-o", str(tmp_path / "r.pdf"), "--fhir",
        str(locked / "r.json"),
    )  # fmt: skip
    assert code == 1
    assert f"the folder {locked} is not writable; nothing was written" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked"]


@pytest.mark.slow
def test_a_rename_that_fails_after_the_first_names_the_files_written(
    course_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pdf, table, bundle = tmp_path / "r.pdf", tmp_path / "r.csv", tmp_path / "r.json"
    replace = os.replace

    def failing_second(source: str, target: str) -> None:
        if Path(target) == table:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        replace(source, target)

    monkeypatch.setattr(output_files.os, "replace", failing_second)
    code = _report(
        course_dir, "--to", "2026-11-09", "-o", str(pdf), "--csv", str(table), "--fhir",
        str(bundle),
    )  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot write {table}: {os.strerror(errno.EIO)}; written: {pdf}; " in err
    assert f"not written: {table}, {bundle}" in err
    assert "nothing was written" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.pdf"]  # no temporary file left


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ledger.sqlite3", "prescription.toml", "diary/report.pdf"])
def test_a_report_into_the_state_directory_is_refused_and_the_record_kept(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    state_dir = tmp_path / "state"
    shutil.copytree(course_dir, state_dir)
    before = {p: p.read_bytes() for p in state_dir.rglob("*") if p.is_file()}
    target = state_dir / name
    assert _report(state_dir, "--to", "2026-11-09", "-o", str(target)) == 1
    assert capsys.readouterr().err == (
        f"nirpad: cannot write {target}: it is in the state directory {state_dir}, which "
        "holds the treatment record; choose another folder; nothing was written\n"
    )
    assert all(path.read_bytes() == data for path, data in before.items())
    assert not target.exists() or target in before


@pytest.mark.slow
def test_sessions_recorded_after_the_clocks_now_are_said_in_the_report(
    course_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A clock set back to 5 Nov, noon: the sessions after that day were left out of the
    report without a word, the clinic reading 8 sessions for a patient who had done 15.
    The PDF and stderr now say how many start after the report was made (5 Nov 19:00
    and the seven after it)."""
    monkeypatch.setattr(
        report_commands, "wall_clock", lambda: datetime(2026, 11, 5, 11, tzinfo=UTC)
    )
    assert _report(course_dir, "-o", str(tmp_path / "r.pdf")) == 0
    expected = (
        "8 session(s) in the treatment record start after this report was made "
        "(2026-11-05 12:00 CET): the clock was wrong when they were recorded, or is wrong "
        "now. Set the date and time, then make the report again."
    )
    assert f"nirpad: note: {expected}\n" in capsys.readouterr().err
    _, text = pdf_text((tmp_path / "r.pdf").read_bytes())
    assert expected in text
    monkeypatch.setattr(report_commands, "wall_clock", lambda: NOW)
    assert _report(course_dir, "-o", str(tmp_path / "r.pdf")) == 0
    assert "after this report" not in capsys.readouterr().err


@pytest.mark.slow
def test_a_damaged_diary_row_is_left_out_and_said_the_rest_reported(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One diary row with a date that is not one made `nirpad report` and `nirpad diary
    show` refuse with Python's words ("nirpad: Invalid isoformat string: 'garbage'"):
    no report, no listing; an IRLS without its scores read as a total of 0. The rows
    are now left out, and each command says how many it read of them."""
    import sqlite3

    from care.diary_schema import DIARY_FILENAME

    state = tmp_path / "state"
    shutil.copytree(course_dir, state)
    conn = sqlite3.connect(state / DIARY_FILENAME)
    with conn:
        conn.execute("INSERT INTO nightly (entry_date, recorded_at_s) VALUES ('garbage', 1.8e9)")
        conn.execute("INSERT INTO irls (entry_date, recorded_at_s, baseline) VALUES "
                     "('2026-11-02', 1.8e9, 0)")  # fmt: skip
    conn.close()

    def said(count: int, left: str) -> str:
        return (
            f"{count} damaged row(s) of the symptom diary could not be read and are not "
            f"{left}; the rest is."
        )

    assert _report(state, "-o", str(tmp_path / "r.pdf"), "--csv", str(tmp_path / "r.csv")) == 0
    assert f"nirpad: {said(2, 'counted')}\n" in capsys.readouterr().err
    _, text = pdf_text((tmp_path / "r.pdf").read_bytes())
    assert said(2, "counted") in text and "15 nights recorded" in text
    assert "2 Nov 0 none" not in text
    assert main(["diary", "show", "--state-dir", str(state)]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"nirpad: {said(2, 'shown')}\n"
    assert captured.out.count("legs ") == 15 and captured.out.count("total ") == 4
    assert main(["course", "--state-dir", str(state), "--tz", "Europe/Berlin"]) == 0
    assert capsys.readouterr().err == f"nirpad: {said(1, 'counted')}\n"  # the IRLS it reads


def test_a_night_whose_entry_answers_nothing_is_not_reported_as_recorded(
    course_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A correction may clear every answer of a night (and a diary written before a new
    entry had to answer something may hold such entries): the clinic must not read it
    as a night recorded, in the PDF, the CSV or the FHIR bundle."""
    import sqlite3

    from care.diary_schema import DIARY_FILENAME

    state = tmp_path / "state"
    shutil.copytree(course_dir, state)
    conn = sqlite3.connect(state / DIARY_FILENAME)
    with conn:
        first_id, first_date = conn.execute(
            "SELECT id, entry_date FROM nightly ORDER BY entry_date LIMIT 1"
        ).fetchone()
        conn.execute(
            "INSERT INTO nightly (entry_date, recorded_at_s, supersedes, side_effects, note) "
            "VALUES (?, 1.8e9, ?, '', '')",
            (first_date, first_id),
        )
    conn.close()
    pdf, table, bundle = tmp_path / "r.pdf", tmp_path / "r.csv", tmp_path / "r.json"
    args = ("--to", "2026-12-22", "-o", str(pdf), "--csv", str(table), "--fhir", str(bundle))
    assert _report(state, *args) == 0, capsys.readouterr().err
    _, text = pdf_text(pdf.read_bytes())
    assert "14 nights recorded" in text
    rows = list(csv.DictReader(io.StringIO(table.read_text(encoding="utf-8"))))
    assert [r["kind"] for r in rows].count("nightly") == 14
    responses = [
        entry.resource
        for entry in parse_bundle(bundle.read_text(encoding="utf-8")).entry or []
        if entry.resource.__resource_type__ == "QuestionnaireResponse"
    ]
    assert len(responses) == 14 + 4  # the nights and the IRLS
