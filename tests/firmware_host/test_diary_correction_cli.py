"""``nirpad diary --corrects ID``: the answers given replace those of entry ID, the
others are kept; ``-`` (or an empty ``--note``) clears one."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date
from pathlib import Path

import pytest

from care.diary import Diary
from care.report_csv import csv_text
from firmware_host import diary_commands
from firmware_host.cli import main
from tests.care.course_fixture import local
from tests.firmware_host.test_diary_cli import PipeInput, TtyInput, count, show_json

FULL_ENTRY = ["--date", "2026-12-04", "--legs", "6", "--sleep", "7", "--minutes-to-sleep", "20"]
FULL_ENTRY += ["--awakenings", "3", "--onset", "1", "--side-effect", "redness"]
FULL_ENTRY += ["--note", "full entry"]
KEPT = {
    "sleep_quality": 7,
    "minutes_to_sleep": 20,
    "awakenings": 3,
    "onset": 1,
    "side_effects": ["redness"],
    "note": "full entry",
}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A diary holding entry 1, a full one for 4 Dec 2026; the clock at 5 Dec."""
    monkeypatch.setattr("sys.stdin", PipeInput(""))
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    monkeypatch.setattr(diary_commands, "wall_clock", lambda: local(date(2026, 12, 5), 9))
    assert diary(tmp_path, *FULL_ENTRY) == 0
    return tmp_path


def diary(state: Path, *argv: str) -> int:
    return main(["diary", "--state-dir", str(state), *argv])


def show_text(state: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["diary", "show", "--state-dir", str(state)]) == 0
    return capsys.readouterr().out


def report_rows(state: Path) -> list[dict[str, str]]:
    """The nightly rows of the clinic's CSV, from the entries the report reads."""
    with Diary.open_to_read(state) as stored:
        text = csv_text([], stored.nightly(), stored.irls(), zone=UTC)
    return [row for row in csv.DictReader(io.StringIO(text)) if row["kind"] == "nightly"]


def test_a_correction_changes_only_the_answers_it_gives(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert diary(state, "--corrects", "1", "--legs", "3") == 0
    assert capsys.readouterr().out == (
        "Recorded diary entry 2 for 2026-12-04, replacing entry 1: leg symptoms 3 (was 6); "
        "the other answers are kept.\n"
    )
    [entry] = show_json(state, capsys)["nightly"]
    assert (entry["id"], entry["supersedes"], entry["leg_symptoms"]) == (2, 1, 3)
    assert {name: entry[name] for name in KEPT} == KEPT
    assert show_text(state, capsys).splitlines()[1] == (
        "  #2 2026-12-04  legs 3/10  sleep 7/10  asleep in 20 min  woke 3x  onset 1  "
        "side effects: redness  note: full entry  (corrects #1)"
    )
    [row] = report_rows(state)
    assert (row["id"], row["supersedes"], row["leg_symptoms"]) == ("2", "1", "3")
    assert (row["sleep_quality"], row["awakenings"], row["onset"]) == ("7", "3", "1")
    assert (row["side_effects"], row["note"]) == ("redness", "full entry")


@pytest.mark.parametrize("note", ["", "-"])
def test_a_dash_or_an_empty_note_clears_an_answer(
    state: Path, capsys: pytest.CaptureFixture[str], note: str
) -> None:
    capsys.readouterr()
    argv = ["--corrects", "1", "--sleep", "-", "--side-effect", "-", "--note", note]
    assert diary(state, *argv) == 0
    assert capsys.readouterr().out == (
        "Recorded diary entry 2 for 2026-12-04, replacing entry 1: sleep quality cleared "
        "(was 7); side effects cleared (was redness); note cleared; the other answers are "
        "kept.\n"
    )
    [entry] = show_json(state, capsys)["nightly"]
    assert (entry["sleep_quality"], entry["side_effects"], entry["note"]) == (None, [], "")
    assert (entry["leg_symptoms"], entry["minutes_to_sleep"], entry["onset"]) == (6, 20, 1)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--corrects", "1", "--legs", "6"], "This correction changes nothing in nightly entry 1"),
        (["--corrects", "1", "--side-effect", "-", "--side-effect", "warmth"], "(none) cannot be"),
        (["--legs", "-", "--date", "2026-12-03"], "Nothing to record"),  # a new entry
    ],
)
def test_a_correction_that_changes_nothing_or_contradicts_itself_writes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    capsys.readouterr()
    assert diary(state, *argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Nothing was recorded." in err
    assert count(state, "nightly") == 1


def test_a_corrected_entry_is_refused_before_any_question(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert diary(state, "--corrects", "1", "--legs", "3") == 0
    capsys.readouterr()
    assert diary(state, "--corrects", "1", "--sleep", "2") == 2  # refused as before
    monkeypatch.setattr("sys.stdin", TtyInput("5\n" * 7))
    assert diary(state, "--corrects", "1") == 2  # refused now before the questions too
    out, err = capsys.readouterr()
    assert err.count("already corrected by 2; correct 2 instead. Nothing was recorded.") == 2
    assert "Leg symptoms" not in out
    assert count(state, "nightly") == 2


def test_the_questions_of_a_correction_offer_the_old_answers(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = ["", "-", "x", "25", "", "", "", ""]  # keep, clear, a bad one, change, keep...
    monkeypatch.setattr("sys.stdin", TtyInput("\n".join(answers) + "\n"))
    capsys.readouterr()
    assert diary(state, "--corrects", "1") == 0
    out = capsys.readouterr().out
    assert "Correcting the diary for 2026-12-04: press Enter to keep an answer, - to clear" in out
    assert "Leg symptoms tonight (0 none - 10 worst) [6]: " in out
    assert "'x' is not a whole number. Please try again." in out
    assert "other; comma-separated) [redness]: " in out
    assert "Note (at most 500 characters) [full entry]: " in out
    assert out.endswith(
        "Recorded diary entry 2 for 2026-12-04, replacing entry 1: sleep quality cleared "
        "(was 7); minutes to fall asleep 25 (was 20); the other answers are kept.\n"
    )
    [entry] = show_json(state, capsys)["nightly"]
    assert (entry["leg_symptoms"], entry["sleep_quality"], entry["minutes_to_sleep"]) == (
        6,
        None,
        25,
    )
    assert (entry["side_effects"], entry["note"]) == (["redness"], "full entry")


def test_questions_answered_as_they_were_record_nothing(
    state: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", TtyInput("\n" * 7))
    assert diary(state, "--corrects", "1") == 2
    assert "This correction changes nothing" in capsys.readouterr().err
    assert count(state, "nightly") == 1
