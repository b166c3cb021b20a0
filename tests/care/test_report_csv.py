"""The clinic report's CSV, read back with csv.DictReader against the real stores."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from care.diary import StoredNightly
from care.diary_entry import NightlyEntry
from care.report_csv import CSV_COLUMNS, csv_text, write_csv
from tests.care.course_fixture import BERLIN, IRLS
from tests.care.report_outputs_fixture import (
    CORRECTED_DAY,
    CORRECTION_NOTE,
    SESSION_COUNT,
    ReportInputs,
    write_report_inputs,
)

Rows = list[dict[str, str]]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    return write_report_inputs(tmp_path_factory.mktemp("report-csv"))


@pytest.fixture(scope="module")
def rows(inputs: ReportInputs) -> Rows:
    text = csv_text(inputs.sessions, inputs.nightly, inputs.irls, zone=BERLIN)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def of_kind(rows: Rows, kind: str) -> Rows:
    return [row for row in rows if row["kind"] == kind]


def test_one_row_per_session_and_per_current_diary_entry(rows: Rows) -> None:
    assert len(of_kind(rows, "session")) == SESSION_COUNT
    assert len(of_kind(rows, "nightly")) == 15
    assert len(of_kind(rows, "irls")) == len(IRLS)
    assert {row["kind"] for row in rows} == {"session", "nightly", "irls"}


def test_rows_are_in_date_order_sessions_first(rows: Rows) -> None:
    order = {"session": 0, "nightly": 1, "irls": 2}
    keys = [(row["date"], order[row["kind"]]) for row in rows]
    assert keys == sorted(keys)


def test_session_rows_give_back_the_ledger_figures(inputs: ReportInputs, rows: Rows) -> None:
    by_id = {int(row["id"]): row for row in of_kind(rows, "session")}
    for session in inputs.sessions:
        row = by_id[session.id]
        assert row["source"] == "device-measured"
        assert row["prescription"] == session.profile_id
        assert datetime.fromisoformat(row["start"]) == session.started_at
        if session.ended_at is None:
            assert (row["end"], row["outcome"]) == ("", "running")
        else:
            assert datetime.fromisoformat(row["end"]) == session.ended_at
            assert row["outcome"] == session.outcome
        assert float(row["planned_j_cm2"]) == pytest.approx(session.planned_fluence_total_j_cm2)
        delivered = float(row["delivered_j_cm2"])
        assert delivered == pytest.approx(session.delivered_fluence_total_j_cm2, abs=5e-4)
        assert row["fault_code"] == (session.fault_code or "")
        assert row["leg_symptoms"] == row["irls_total"] == ""


def test_times_carry_the_patients_offset_across_daylight_saving(rows: Rows) -> None:
    starts = {row["date"]: row["start"] for row in of_kind(rows, "session")}
    assert starts["2026-10-13"] == "2026-10-13T19:00:00+02:00"
    assert starts["2026-10-25"] == "2026-10-25T22:30:00+01:00"
    assert starts["2026-11-05"] == "2026-11-05T19:00:00+01:00"


def test_early_stop_fault_and_running_session(rows: Rows) -> None:
    by_date = {row["date"]: row for row in of_kind(rows, "session")}
    stopped, fault, running = by_date["2026-11-05"], by_date["2026-12-23"], by_date["2026-12-25"]
    assert (stopped["outcome"], stopped["delivered_j_cm2"]) == ("stopped", "22.500")
    assert (fault["outcome"], fault["fault_code"]) == ("fault", "skin_overtemp")
    assert fault["delivered_j_cm2"] == "15.000"
    assert (running["outcome"], running["end"], running["delivered_j_cm2"]) == (
        "running",
        "",
        "0.000",
    )


def test_irls_rows_give_back_the_diary(inputs: ReportInputs, rows: Rows) -> None:
    irls_rows = of_kind(rows, "irls")
    assert [(date.fromisoformat(r["date"]), int(r["irls_total"])) for r in irls_rows] == list(IRLS)
    assert [r["irls_band"] for r in irls_rows] == ["severe", "moderate", "moderate", "moderate"]
    assert [r["irls_baseline"] for r in irls_rows] == ["true", "false", "false", "false"]
    for row, stored in zip(irls_rows, inputs.irls, strict=True):
        items = {n: int(row[f"irls_item_{n}"]) for n in range(1, 11)}
        assert items == dict(stored.items)
        assert row["source"] == "patient-reported"
        assert datetime.fromisoformat(row["recorded_at"]) == stored.recorded_at


def test_nightly_rows_give_back_the_diary(inputs: ReportInputs, rows: Rows) -> None:
    by_id = {int(row["id"]): row for row in of_kind(rows, "nightly")}
    assert set(by_id) == {stored.id for stored in inputs.nightly}
    for stored in inputs.nightly:
        row = by_id[stored.id]
        assert row["date"] == stored.entry.entry_date.isoformat()
        assert row["leg_symptoms"] == str(stored.entry.leg_symptoms)
        sleep = stored.entry.sleep_quality
        assert row["sleep_quality"] == ("" if sleep is None else str(sleep))
        assert row["minutes_to_sleep"] == row["awakenings"] == row["onset"] == ""
    assert by_id[inputs.nightly[0].id]["side_effects"] == "warmth"


def test_a_correction_replaces_the_entry_it_corrects(inputs: ReportInputs, rows: Rows) -> None:
    nightly = {int(row["id"]): row for row in of_kind(rows, "nightly")}
    assert inputs.corrected_id not in nightly
    correction = nightly[inputs.correction_id]
    assert correction["supersedes"] == str(inputs.corrected_id)
    assert (correction["date"], correction["leg_symptoms"]) == (CORRECTED_DAY.isoformat(), "5")


def test_the_history_gives_the_same_csv(inputs: ReportInputs) -> None:
    current = csv_text(inputs.sessions, inputs.nightly, inputs.irls, zone=BERLIN)
    history = csv_text(inputs.sessions, inputs.nightly_history, inputs.irls, zone=BERLIN)
    assert len(inputs.nightly_history) == len(inputs.nightly) + 1
    assert history == current


def test_a_note_a_spreadsheet_would_run_is_written_as_text(
    inputs: ReportInputs, rows: Rows
) -> None:
    correction = next(row for row in rows if row["id"] == str(inputs.correction_id))
    assert correction["note"] == "'" + CORRECTION_NOTE


def note_in_csv(note: str) -> str:
    """The ``note`` cell of a nightly entry holding ``note``, as a CSV reader reads it."""
    recorded = datetime(2026, 3, 14, 20, 0, tzinfo=BERLIN)
    stored = StoredNightly(1, recorded, None, None, NightlyEntry(date(2026, 3, 14), note=note))
    text = csv_text((), [stored], [], zone=BERLIN)
    [row] = csv.DictReader(io.StringIO(text, newline=""))
    return row["note"]


FORMULA_FORMS = "=+-@＝＋－＠﹦﹢﹣﹫⁼⁺₌₊"
"""The formula characters, plain and in forms NFKC reads as them (fullwidth, small,
superscript, subscript)."""
INVISIBLE = st.characters(categories=["Zs", "Cf"]) | st.sampled_from(" \t\u200b\u2060\ufeff")
ANY_TEXT = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=20)


@pytest.mark.parametrize(
    "note",
    [
        " =1+1",
        "\ufeff=1+1",
        "\u200b\u00a0-1",
        "＝1+1",
        "＋1",
        "－1",
        "＠SUM(A1)",
        "=\u0338 1",
        "\u3164=1+1",
        "\u2800+1",
    ],
)
def test_a_formula_behind_spaces_or_in_another_form_is_written_as_text(note: str) -> None:
    assert note_in_csv(note) == "'" + note


@settings(max_examples=200, deadline=None)
@given(
    lead=st.lists(INVISIBLE, max_size=4).map("".join),
    start=st.sampled_from(FORMULA_FORMS),
    rest=ANY_TEXT,
)
def test_any_note_a_spreadsheet_could_run_gets_the_apostrophe(
    lead: str, start: str, rest: str
) -> None:
    note = lead + start + rest
    assert note_in_csv(note) == "'" + note


@settings(max_examples=200, deadline=None)
@given(first=st.characters(categories=["L", "N"]), rest=ANY_TEXT)
def test_a_note_starting_with_a_letter_or_digit_is_written_as_it_is(first: str, rest: str) -> None:
    assert note_in_csv(first + rest) == first + rest


def test_write_csv_writes_the_same_to_a_file(inputs: ReportInputs, tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        write_csv(out, inputs.sessions, inputs.nightly, inputs.irls, zone=BERLIN)
    expected = csv_text(inputs.sessions, inputs.nightly, inputs.irls, zone=BERLIN)
    assert path.read_bytes() == expected.encode("utf-8")
    assert path.read_bytes().count(b"\r\n") == 1 + SESSION_COUNT + 15 + len(IRLS)


def test_an_empty_record_gives_the_header_alone() -> None:
    assert csv_text((), [], [], zone=BERLIN) == ",".join(CSV_COLUMNS) + "\r\n"
