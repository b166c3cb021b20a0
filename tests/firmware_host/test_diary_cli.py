"""``nirpad diary``, ``nirpad irls`` and ``nirpad diary show`` through ``cli.main``."""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from care.diary_schema import DIARY_FILENAME
from firmware_host import diary_commands
from firmware_host.cli import build_parser, main
from profiles.store import install_atomic
from tests.care.course_fixture import RX_TOML, local, write_six_weeks
from tests.care.test_diary import write_old_diary


class TtyInput(io.StringIO):
    """Typed answers on a stdin that claims to be a terminal."""

    def isatty(self) -> bool:
        return True


class PipeInput(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def piped_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", PipeInput(""))


def count(state: Path, table: str) -> int:
    if not (state / DIARY_FILENAME).exists():
        return 0
    conn = sqlite3.connect(state / DIARY_FILENAME)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def show_json(state: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["diary", "show", "--json", "--state-dir", str(state), *extra]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_flags_record_an_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["diary", "--state-dir", str(tmp_path), "--legs", "6", "--sleep", "4"]
    argv += ["--minutes-to-sleep", "30", "--awakenings", "2", "--onset", "1"]
    argv += ["--side-effect", "warmth", "--side-effect", "headache", "--note", "fine"]
    assert main(argv) == 0
    assert "Recorded diary entry 1 for" in capsys.readouterr().out
    [entry] = show_json(tmp_path, capsys)["nightly"]
    assert entry["leg_symptoms"] == 6
    assert entry["onset"] == 1
    assert entry["side_effects"] == ["headache", "warmth"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--legs", "11"], "Leg symptoms must be a whole number from 0 to 10, not 11"),
        (["--awakenings", "51"], "Awakenings must be a whole number from 0 to 50"),
        (["--legs", "1", "--date", "2999-01-01"], "2999-01-01 is in the future"),
        (["--legs", "1", "--date", "yesterday"], "is not a date: write it as YYYY-MM-DD"),
        (["--legs", "1", "--date", ""], "'' is not a date"),  # an unset variable: not today
        (["--legs", "1", "--date", "2026-W01-1"], "is not a date: write it as YYYY-MM-DD"),
        (["--note", "x" * 501], "501 characters long; at most 500"),
        (["--note", "bad \udcff byte"], "not readable text"),
        (["--legs", "1", "--corrects", "7"], "There is no nightly entry 7 to correct"),
        (["--legs", "1", "--corrects", "9" * 40], f"There is no nightly entry {'9' * 40} to"),
        ([], "Nothing to record: give at least one value"),
        (["--note", " \u200b\ufeff"], "Nothing to record"),  # a note that shows nothing
    ],
)
def test_a_refused_entry_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", "2", "--date", "2026-01-01"]) == 0
    before = count(tmp_path, "nightly")
    capsys.readouterr()
    assert main(["diary", "--state-dir", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Nothing was recorded." in err
    assert count(tmp_path, "nightly") == before == 1


def test_a_note_that_shows_nothing_is_recorded_as_no_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["diary", "--state-dir", str(tmp_path), "--legs", "3", "--note", "\u200b \u2060\ufeff"]
    assert main(argv) == 0
    [entry] = show_json(tmp_path, capsys)["nightly"]
    assert (entry["leg_symptoms"], entry["note"]) == (3, "")
    assert main(["diary", "show", "--state-dir", str(tmp_path)]) == 0
    assert "note:" not in capsys.readouterr().out


def test_a_note_answered_with_nothing_to_show_is_no_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", TtyInput("4\n\n\n\n\n\n\u200b\ufeff \n"))
    assert main(["diary", "--state-dir", str(tmp_path)]) == 0
    [entry] = show_json(tmp_path, capsys)["nightly"]
    assert (entry["leg_symptoms"], entry["note"]) == (4, "")


def test_questions_all_skipped_record_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with no options: an entry with no answer would count as a night recorded."""
    monkeypatch.setattr("sys.stdin", TtyInput("\n" * 7))
    assert main(["diary", "--state-dir", str(tmp_path)]) == 2
    assert "nirpad: Nothing to record: answer at least one question." in capsys.readouterr().err
    assert count(tmp_path, "nightly") == 0


@pytest.mark.parametrize("option", ["--legs", "--minutes-to-sleep", "--corrects"])
def test_a_number_with_an_underscore_is_not_read_as_another(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """``int`` reads ``1_0`` as 10: a typo must not record 10 minutes or correct entry 10."""
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", "2", "--date", "2026-01-01"]) == 0
    capsys.readouterr()
    assert main(["diary", "--state-dir", str(tmp_path), "--sleep", "3", option, "1_0"]) == 2
    assert f"argument {option}: '1_0' is not a whole number" in capsys.readouterr().err
    assert count(tmp_path, "nightly") == 1


OTHER_THREES = ["\u0663", "\uff13", "+3", " 3 "]
"""3 as a patient may type it: Arabic-Indic, fullwidth, with a sign, with spaces."""


def stored_scores(state: Path, sql: str) -> list[tuple[str, object]]:
    conn = sqlite3.connect(state / DIARY_FILENAME)
    try:
        return [(str(kind), value) for kind, value in conn.execute(sql).fetchall()]
    finally:
        conn.close()


@pytest.mark.parametrize("three", OTHER_THREES)
def test_a_score_in_other_digits_is_stored_and_shown_as_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], three: str
) -> None:
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", three]) == 0
    sql = "SELECT typeof(leg_symptoms), leg_symptoms FROM nightly"
    assert stored_scores(tmp_path, sql) == [("integer", 3)]
    [entry] = show_json(tmp_path, capsys)["nightly"]
    assert entry["leg_symptoms"] == 3 and type(entry["leg_symptoms"]) is int
    assert main(["diary", "show", "--state-dir", str(tmp_path)]) == 0
    assert "legs 3/10" in capsys.readouterr().out


def test_irls_scores_in_other_digits_are_stored_and_shown_as_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    items = ",".join(OTHER_THREES + ["3"] * 6)
    assert main(["irls", "--state-dir", str(tmp_path), "--items", items]) == 0
    assert "Total 30 of 40: severe." in capsys.readouterr().out
    sql = "SELECT typeof(score), score FROM irls_items"
    assert stored_scores(tmp_path, sql) == [("integer", 3)] * 10
    answers = [*OTHER_THREES, "", "", ""]  # onset, side effects, note: skipped
    monkeypatch.setattr("sys.stdin", TtyInput("\n".join(answers) + "\n"))
    assert main(["diary", "--state-dir", str(tmp_path)]) == 0  # the questions take them too
    [entry] = show_json(tmp_path, capsys)["nightly"]
    asked = ("leg_symptoms", "sleep_quality", "minutes_to_sleep", "awakenings")
    assert [entry[name] for name in asked] == [3, 3, 3, 3]


def test_corrects_keeps_the_old_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["diary", *state, "--legs", "8"]) == 0
    assert main(["diary", *state, "--legs", "3", "--corrects", "1"]) == 0
    assert "replacing entry 1" in capsys.readouterr().out
    assert [e["leg_symptoms"] for e in show_json(tmp_path, capsys)["nightly"]] == [3]
    history = show_json(tmp_path, capsys, "--history")["nightly"]
    assert [(e["id"], e["superseded_by"]) for e in history] == [(1, 2), (2, None)]


def test_the_terminal_path_asks_and_asks_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = ["12", "1_0", "7", "", "45", "x", "3", "2", "itch", "warmth, redness", "calf tingled"]
    monkeypatch.setattr("sys.stdin", TtyInput("\n".join(answers) + "\n"))
    assert main(["diary", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Leg symptoms tonight" in out
    assert "Leg symptoms must be a whole number from 0 to 10, not 12. Please try again." in out
    assert "'x' is not a whole number" in out
    assert "'1_0' is not a whole number" in out  # not read as 10
    assert "Choose side effects from" in out
    [entry] = show_json(tmp_path, capsys)["nightly"]
    assert (entry["leg_symptoms"], entry["sleep_quality"], entry["minutes_to_sleep"]) == (
        7,
        None,
        45,
    )
    assert (entry["awakenings"], entry["onset"]) == (3, 2)
    assert entry["side_effects"] == ["redness", "warmth"]
    assert entry["note"] == "calf tingled"


BAD_BYTES = "\udcff\udcfe"
"""The bytes ff fe as Python reads them from argv or a terminal (surrogateescape)."""


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["diary", "--legs", BAD_BYTES], "argument --legs: '\\xff\\xfe' is not a whole number"),
        (["diary", "--legs", "1", "--date", BAD_BYTES], "'\\xff\\xfe' is not a date"),
        (["diary", "--legs", "1", "--tz", f"Europe/{BAD_BYTES}"], "zone 'Europe/\\xff\\xfe'"),
        (["diary", "--legs", "1", "--tz", f"/no/{BAD_BYTES}"], "zone file /no/\\xff\\xfe cannot"),
        (["irls", "--items", f"{BAD_BYTES},1"], "Item 1: '\\xff\\xfe' is not a score"),
    ],
)
def test_bytes_that_are_not_text_are_shown_as_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """An argument that is not UTF-8 is named by its bytes (``\\xff``), never by
    Python's stand-in for them (``\\udcff``)."""
    assert main([*argv, "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "\\udc" not in err


def test_a_typed_answer_that_is_not_text_is_shown_as_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = [BAD_BYTES, "3", "", "", "", "", "", ""]
    monkeypatch.setattr("sys.stdin", TtyInput("\n".join(answers) + "\n"))
    assert main(["diary", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "'\\xff\\xfe' is not a whole number. Please try again." in out
    assert "\\udc" not in out


def test_end_of_input_in_the_terminal_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", TtyInput("5\n"))
    assert main(["diary", "--state-dir", str(tmp_path)]) == 1
    assert "cancelled; nothing was recorded" in capsys.readouterr().err
    assert count(tmp_path, "nightly") == 0


def test_irls_items_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["irls", "--state-dir", str(tmp_path), "--items", "4,4,3,3,2,2,1,1,2,2", "--baseline"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Recorded baseline IRLS 1 for" in out
    assert "Total 24 of 40: severe." in out
    [irls] = show_json(tmp_path, capsys)["irls"]
    assert (irls["total"], irls["band"], irls["baseline"]) == (24, "severe", True)
    assert "subscales" not in irls  # no split given by the clinic


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ("1,2,3,4,0,1,2,3,4", "needs all 10 item scores; 9 given (missing: item 10)"),
        ("1,2,3,4,5,1,2,3,4,0", "Item 5 must be a whole number from 0 to 4, not 5"),
        ("1,2,x,4,0,1,2,3,4,0", "Item 3: 'x' is not a score"),
        ("1,2,0_3,4,0,1,2,3,4,0", "Item 3: '0_3' is not a score"),  # not read as 3
        ("1,2,3,4,0,1,2,3,4,0,1", "there is no item 11"),
    ],
)
def test_a_refused_irls_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], items: str, message: str
) -> None:
    assert main(["irls", "--state-dir", str(tmp_path), "--items", "0,0,0,0,0,0,0,0,0,1"]) == 0
    capsys.readouterr()
    assert (
        main(["irls", "--state-dir", str(tmp_path), "--items", items, "--date", "2026-01-01"]) == 2
    )
    assert message in capsys.readouterr().err
    assert (count(tmp_path, "irls"), count(tmp_path, "irls_items")) == (1, 10)


def test_a_second_irls_for_a_day_is_refused_in_plain_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["irls", "--state-dir", str(tmp_path), "--items", "1,1,1,1,1,1,1,1,1,1"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    assert "There is already an IRLS for" in capsys.readouterr().err
    assert count(tmp_path, "irls") == 1


def test_a_huge_corrects_id_for_an_irls_is_refused_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path)]
    assert main(["irls", *state, "--items", "0,0,0,0,0,0,0,0,0,1"]) == 0
    capsys.readouterr()
    assert main(["irls", *state, "--items", "1,0,0,0,0,0,0,0,0,1", "--corrects", "9" * 40]) == 2
    err = capsys.readouterr().err
    assert f"There is no IRLS {'9' * 40} to correct. Nothing was recorded." in err
    assert "Traceback" not in err and "SQLite" not in err
    assert (count(tmp_path, "irls"), count(tmp_path, "irls_items")) == (1, 10)


def test_irls_in_the_terminal_shows_the_clinics_wording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "irls.toml").write_text(
        '[items]\n1 = "Clinic wording one"\n\n[subscales]\n'
        "symptom_severity = [1, 2]\nsymptom_impact = [10]\n",
        encoding="utf-8",
    )
    (tmp_path / "site.toml").write_text('[course]\nirls_wording = "irls.toml"\n', encoding="utf-8")
    answers = ["3", "", "5", "2"] + ["1"] * 8
    monkeypatch.setattr("sys.stdin", TtyInput("\n".join(answers) + "\n"))
    assert main(["irls", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "1. Clinic wording one (0-4): " in out
    assert "item 2 of 10, 0-4: " in out
    assert "Every IRLS item needs a score." in out
    assert "Item 2 must be a whole number from 0 to 4, not 5" in out
    [irls] = show_json(tmp_path, capsys)["irls"]
    assert irls["items"] == {"1": 3, "2": 2, **{str(k): 1 for k in range(3, 11)}}
    assert irls["subscales"] == {"symptom_severity": 5, "symptom_impact": 1}


def test_irls_without_items_off_a_terminal_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["irls", "--state-dir", str(tmp_path)]) == 2
    assert "Give the ten item scores with --items" in capsys.readouterr().err


def test_show_text_and_an_empty_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "fresh"
    assert main(["diary", "show", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().out.count("  none") == 2
    assert not state.exists()  # listing never creates a state directory
    assert main(["diary", "--state-dir", str(state), "--legs", "4", "--note", "ok"]) == 0
    assert main(["irls", "--state-dir", str(state), "--items", "1,1,1,1,1,1,1,1,1,1"]) == 0
    capsys.readouterr()
    assert main(["diary", "show", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "#1" in out and "legs 4/10" in out and "note: ok" in out
    assert "total 10/40 (mild)" in out


@pytest.fixture
def course_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The six-week course's ledger up to 19 Nov (day 1 13 Oct), its prescription
    installed (issued 1 Oct), and the diary's clock at 21:00 on 19 Nov in Berlin."""
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    write_six_weeks(tmp_path, until=date(2026, 11, 19))
    install_atomic(tmp_path, RX_TOML)
    monkeypatch.setattr(diary_commands, "wall_clock", lambda: local(date(2026, 11, 19), 21))
    return tmp_path


def _in_berlin(state: Path, *argv: str) -> int:
    return main([argv[0], "--state-dir", str(state), "--tz", "Europe/Berlin", *argv[1:]])


ITEMS = "3,3,3,3,2,2,2,2,2,2"


OUTSIDE_THE_COURSE: list[tuple[tuple[str, ...], str]] = [
    (("diary", "--date", "2026-10-12", "--legs", "3"), "before the course began (day 1 was"),
    (("irls", "--date", "2026-10-12", "--items", ITEMS), "before the course began"),
    (("irls", "--baseline", "--date", "2026-09-30", "--items", ITEMS), "was issued on 2026-10-01"),
    (("irls", "--baseline", "--date", "2026-10-14", "--items", ITEMS), "as a weekly one, not as"),
    (("diary", "--date", "2026-11-20", "--legs", "3"), "is in the future (today is 2026-11-19)"),
    (("diary", "--legs", "3", "--tz", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
]


@pytest.mark.parametrize(("argv", "message"), OUTSIDE_THE_COURSE)
@pytest.mark.slow
def test_a_date_outside_the_course_writes_nothing(
    course_state: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert _in_berlin(course_state, *argv) == 2
    assert message in capsys.readouterr().err
    assert (count(course_state, "nightly"), count(course_state, "irls")) == (0, 0)


def test_the_course_dates_that_are_accepted(
    course_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        _in_berlin(course_state, "irls", "--baseline", "--date", "2026-10-12", "--items", ITEMS)
        == 0
    )
    assert _in_berlin(course_state, "diary", "--date", "2026-10-13", "--legs", "6") == 0
    assert _in_berlin(course_state, "diary", "--legs", "2") == 0  # today, 19 Nov in Berlin
    assert capsys.readouterr().err == ""
    nightly = show_json(course_state, capsys)["nightly"]
    assert [e["date"] for e in nightly] == ["2026-10-13", "2026-11-19"]


def test_before_the_first_session_the_issue_date_bounds_the_diary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    install_atomic(tmp_path, RX_TOML)  # issued 1 Oct, no session yet
    monkeypatch.setattr(diary_commands, "wall_clock", lambda: local(date(2026, 10, 10), 21))
    assert _in_berlin(tmp_path, "diary", "--date", "2026-09-30", "--legs", "3") == 2
    assert "the prescription was issued on 2026-10-01" in capsys.readouterr().err
    assert _in_berlin(tmp_path, "diary", "--date", "2026-10-01", "--legs", "3") == 0
    assert _in_berlin(tmp_path, "irls", "--baseline", "--items", ITEMS) == 0
    assert not (tmp_path / "ledger.sqlite3").exists()  # the record is only read


def test_an_unreadable_prescription_leaves_only_the_future_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    install_atomic(tmp_path, RX_TOML.replace(b"course_weeks = 6", b"course_weeks = 'six'"))
    monkeypatch.setattr(diary_commands, "wall_clock", lambda: local(date(2026, 10, 10), 21))
    assert _in_berlin(tmp_path, "diary", "--date", "2025-01-01", "--legs", "3") == 0
    err = capsys.readouterr().err
    assert "note: the course's dates are not known (the prescription:" in err
    assert "only a date in the future is refused" in err


def test_in_a_terminal_a_date_before_the_course_is_refused_before_any_question(
    course_state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", TtyInput("5\n" * 12))
    assert _in_berlin(course_state, "diary", "--date", "2026-10-01") == 2
    assert _in_berlin(course_state, "irls", "--baseline") == 2  # 19 Nov: after day 1
    captured = capsys.readouterr()
    assert "Leg symptoms tonight" not in captured.out and "item 1 of 10" not in captured.out
    assert "before the course began" in captured.err and "as a weekly one" in captured.err
    assert (count(course_state, "nightly"), count(course_state, "irls")) == (0, 0)


def test_a_diary_at_its_old_place_is_shown_and_moved_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    write_old_diary(state, tmp_path / "scratch")
    assert [e["date"] for e in show_json(state, capsys)["nightly"]] == ["2026-03-14", "2026-03-15"]
    assert sorted(p.name for p in state.iterdir()) == ["diary", "diary.sqlite3.moved"]
    assert count(state, "nightly") == 2


def test_a_correction_without_date_keeps_the_corrected_entrys_day(
    course_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nirpad diary --corrects 1 --legs 3`` (the docs' example) changes entry 1's
    day; run the next day it must not move last night's entry to today."""
    assert _in_berlin(course_state, "diary", "--date", "2026-11-18", "--legs", "8") == 0
    assert _in_berlin(course_state, "irls", "--date", "2026-11-18", "--items", ITEMS) == 0
    assert _in_berlin(course_state, "diary", "--corrects", "1", "--legs", "3") == 0
    assert _in_berlin(course_state, "irls", "--corrects", "1", "--items", "1," + ITEMS[2:]) == 0
    data = show_json(course_state, capsys)
    assert [(e["date"], e["leg_symptoms"]) for e in data["nightly"]] == [("2026-11-18", 3)]
    assert [(e["date"], e["total"]) for e in data["irls"]] == [("2026-11-18", 22)]


def test_the_irls_wording_follows_the_site_configuration_in_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """$NIRPAD_SITE_CONFIG names the site file for every command (``nirpad course``,
    ``nirpad report``, the diary's course dates): the IRLS wording and its subscales
    too."""
    site_dir = tmp_path / "etc"
    site_dir.mkdir()
    (site_dir / "irls.toml").write_text(
        '[items]\n1 = "Clinic wording one"\n\n[subscales]\n'
        "symptom_severity = [1, 2]\nsymptom_impact = [10]\n",
        encoding="utf-8",
    )
    (site_dir / "site.toml").write_text('[course]\nirls_wording = "irls.toml"\n', encoding="utf-8")
    monkeypatch.setenv("NIRPAD_SITE_CONFIG", str(site_dir / "site.toml"))
    state = tmp_path / "state"
    monkeypatch.setattr("sys.stdin", TtyInput("3\n2\n" + "1\n" * 8))
    assert main(["irls", "--state-dir", str(state)]) == 0
    assert "1. Clinic wording one (0-4): " in capsys.readouterr().out
    [irls] = show_json(state, capsys)["irls"]
    assert irls["subscales"] == {"symptom_severity": 5, "symptom_impact": 1}


@contextlib.contextmanager
def full_disk() -> Iterator[None]:
    """No file may grow past 16 KiB (``RLIMIT_FSIZE``, for root too): as on a full disk,
    the diary (40 KiB, already written) can be read but its 32 KiB shared-memory file,
    which even a reader of a WAL database must make, cannot be."""
    before = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, before)
        signal.signal(signal.SIGXFSZ, handler)


def test_a_diary_on_a_full_disk_is_still_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", "4", "--note", "kept"]) == 0
    capsys.readouterr()
    with full_disk():
        listed = main(["diary", "show", "--json", "--state-dir", str(tmp_path)])
        recorded = main(["diary", "--state-dir", str(tmp_path), "--legs", "5", "--date",
                         "2026-01-02"])  # fmt: skip
    out, err = capsys.readouterr()
    assert listed == 0 and json.loads(out)["nightly"][0]["note"] == "kept"
    assert recorded == 1 and "The symptom diary cannot be opened" in err  # never written


def test_a_first_open_on_a_full_disk_leaves_nothing_that_hides_the_diary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failed first open leaves SQLite's first page; until space is freed the diary
    lists as empty (as before it), then the next entry is recorded and kept."""
    usage = shutil.disk_usage(tmp_path)._replace(free=4096)
    with monkeypatch.context() as patched, full_disk():
        patched.setattr(shutil, "disk_usage", lambda _path: usage)
        recorded = main(["diary", "--state-dir", str(tmp_path), "--legs", "4"])
        listed = main(["diary", "show", "--state-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert recorded == 1 and "The symptom diary cannot be opened: the disk is full" in err
    assert (tmp_path / DIARY_FILENAME).stat().st_size <= 4096
    assert listed == 0 and "Nightly entries:\n  none" in out
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", "5"]) == 0
    assert [e["leg_symptoms"] for e in show_json(tmp_path, capsys)["nightly"]] == [5]


def test_a_diary_whose_log_holds_entries_is_not_read_past_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", "4"]) == 0
    diary = tmp_path / DIARY_FILENAME
    wal = diary.with_name(diary.name + "-wal")
    reader = sqlite3.connect(diary)  # holds the log open, so it is not folded in at close
    reader.execute("SELECT count(*) FROM nightly").fetchone()
    assert main(["diary", "--state-dir", str(tmp_path), "--legs", "5", "--date", "2026-12-04"]) == 0
    log_bytes = wal.read_bytes()
    reader.close()
    wal.write_bytes(log_bytes)  # an entry only the log holds, as after a power cut
    diary.with_name(diary.name + "-shm").unlink(missing_ok=True)
    capsys.readouterr()
    with full_disk():
        assert main(["diary", "show", "--state-dir", str(tmp_path)]) == 1
    assert "The symptom diary cannot be opened" in capsys.readouterr().err


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", ["named pipe", "folder"])
@pytest.mark.parametrize(
    "argv", [["diary", "show"], ["diary", "--legs", "2"], ["irls", "--items", ",".join("1" * 10)]]
)
def test_a_diary_that_is_not_a_file_is_an_error_not_an_empty_diary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, argv: list[str]
) -> None:
    diary = tmp_path / DIARY_FILENAME
    diary.parent.mkdir()
    if kind == "named pipe":
        os.mkfifo(diary)  # nobody writes it: an open would wait for ever
    else:
        diary.mkdir()
    assert main([*argv, "--state-dir", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "none" not in out
    assert err == f"nirpad: The symptom diary cannot be opened: it is not a file ({diary}).\n"


def test_the_diary_usage_shows_its_action_as_optional(capsys: pytest.CaptureFixture[str]) -> None:
    """Plain ``nirpad diary`` records tonight's entry: ``show`` is optional, and the
    usage line says so."""
    assert main(["diary", "--help"]) == 0
    usage = capsys.readouterr().out.split("\n\n")[0]
    assert usage.rstrip().endswith("[ACTION] ...")


@pytest.mark.parametrize(
    ("argv", "action", "legs"),
    [
        (["diary"], None, None),
        (["diary", "--legs", "3"], None, 3),
        (["diary", "--legs", "3", "--date", "2026-12-01"], None, 3),
        (["diary", "show"], "show", None),
        (["diary", "show", "--json", "--history"], "show", None),
    ],
)
def test_the_diary_actions_parse(argv: list[str], action: str | None, legs: int | None) -> None:
    args = build_parser().parse_args(argv)
    assert (args.command, args.diary_action, getattr(args, "leg_symptoms", None)) == (
        "diary",
        action,
        legs,
    )


def test_a_correction_of_the_baseline_irls_stays_the_baseline(
    course_state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Correcting a typo in the baseline IRLS without repeating ``--baseline`` dropped
    the mark: the clinic report then called the corrected baseline "the last before day
    1, not recorded as the baseline", and after day 1 the correction was refused as a
    weekly IRLS before the course. The mark is kept; ``--no-baseline`` removes it."""
    assert _in_berlin(course_state, "irls", "--baseline", "--date", "2026-10-12",
                      "--items", ITEMS) == 0  # fmt: skip
    assert (
        _in_berlin(course_state, "irls", "--corrects", "1", "--items", "4,3,3,3,2,2,2,2,2,2") == 0
    )
    assert "Recorded baseline IRLS 2 for 2026-10-12, replacing entry 1." in capsys.readouterr().out
    [current] = show_json(course_state, capsys)["irls"]
    assert (current["id"], current["total"], current["baseline"]) == (2, 25, True)
    assert (
        _in_berlin(course_state, "irls", "--corrects", "2", "--no-baseline", "--items", ITEMS) == 2
    )
    assert "before the course began" in capsys.readouterr().err  # 12 Oct: not a weekly IRLS
    assert count(course_state, "irls") == 2
