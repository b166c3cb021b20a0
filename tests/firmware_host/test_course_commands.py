"""``nirpad course``, ``nirpad remind`` and ``nirpad calendar`` on a state directory."""

from __future__ import annotations

import errno
import importlib.resources
import json
import os
import sqlite3
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pytest

from care.diary_schema import DIARY_FILENAME
from care.remind import RemindSettings
from firmware_host import course_commands, course_inputs, output_files
from firmware_host.cli import main
from firmware_host.course_inputs import CourseInputError, zone_named
from profiles.store import install_atomic
from safety.ledger import Ledger
from safety.ledger_events import EventKind
from tests.care.course_fixture import RX_TOML, local, write_diary, write_six_weeks

UNTIL = date(2026, 11, 19)
"""The ledger holds the course's sessions up to this day (none in the future)."""
DUE = local(date(2026, 11, 21), 19, 30)
"""Week 6 has 17 and 19 Nov; 14, 17 and 19 Nov were the last 7 days' three until 19:00."""


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The state directory, in ``tmp_path`` (a calendar is never written into it)."""
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    state = tmp_path / "state"
    state.mkdir()
    write_six_weeks(state, until=UNTIL)
    install_atomic(state, RX_TOML)
    return state


def _at(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    monkeypatch.setattr(course_commands, "wall_clock", lambda: now)


def _run(state_dir: Path, *args: str) -> int:
    return main([args[0], "--state-dir", str(state_dir), "--tz", "Europe/Berlin", *args[1:]])


def _events(ics: Path) -> list[Any]:
    """The VEVENTs of the calendar file at ``ics``, in file order."""
    return list(icalendar.Calendar.from_ical(ics.read_bytes()).walk("VEVENT"))


def test_course_json_has_the_figures(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, DUE)
    assert _run(state_dir, "course", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["first_day"] == "2026-10-13" and data["current_week"] == 6
    assert [w["done"] for w in data["weeks"]] == [3, 3, 0, 3, 3, 2]
    assert data["total"]["missed"] == 3 and data["total"]["early_stops"]["stopped"] == 1
    assert data["next_checkpoint"]["name"] == "follow-up, 4 weeks after the course"
    assert data["tonight"] == {
        "status": "due",
        "text": "session due tonight between 18:00 and 23:00",
        "due_now": True,
    }
    assert data["earlier_courses"][0]["profile_id"] == "rls-old"


def test_course_joins_the_diarys_irls_into_the_checkpoints(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_diary(state_dir)  # 24 (baseline) on 12 Oct, 20, 16, and 12 on 22 Dec
    _at(monkeypatch, DUE)  # 21 Nov: the IRLS of 22 Dec is not yet there
    assert _run(state_dir, "course", "--json") == 0
    week2, week4, follow_up = json.loads(capsys.readouterr().out)["checkpoints"]
    assert {c["irls_baseline"] for c in (week2, week4, follow_up)} == {24}
    assert (week2["irls_baseline_on"], week2["irls_baseline_marked"]) == ("2026-10-12", True)
    assert (week2["irls_baseline_band"], week2["irls_latest_band"]) == ("severe", "moderate")
    assert [c["irls_latest"] for c in (week2, week4, follow_up)] == [20, 16, 16]
    assert [c["irls_change"] for c in (week2, week4, follow_up)] == [-4, -8, -8]
    assert week4["irls_latest_on"] == "2026-11-10"
    assert _run(state_dir, "course") == 0
    out = capsys.readouterr().out
    assert (
        "Checkpoint: week 2 review on 2026-10-27: 2 of 2 weeks on target; baseline IRLS 24 "
        "(severe, 2026-10-12), then 20 (moderate, 2026-10-27): -4"
    ) in out


def test_course_tells_a_baseline_not_recorded_as_one(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The IRLS of 12 Oct not marked baseline: the checkpoints take it in the baseline's
    place, and the line says it is a stand-in."""
    from tests.care import course_fixture

    unmarked = tuple((day, scores, False) for day, scores, _ in course_fixture.DIARY_IRLS)
    monkeypatch.setattr(course_fixture, "DIARY_IRLS", unmarked)
    write_diary(state_dir)
    _at(monkeypatch, DUE)
    assert _run(state_dir, "course") == 0
    assert (
        "week 2 review on 2026-10-27: 2 of 2 weeks on target; baseline IRLS 24 (severe, "
        "2026-10-12, the last before day 1, not recorded as the baseline), then 20 "
        "(moderate, 2026-10-27): -4"
    ) in capsys.readouterr().out


def test_course_without_a_diary_shows_no_trend_and_creates_none(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, DUE)
    assert _run(state_dir, "course") == 0
    assert "week 2 review on 2026-10-27: 2 of 2 weeks on target; no baseline IRLS" in (
        capsys.readouterr().out
    )
    assert not (state_dir / DIARY_FILENAME).exists()
    (state_dir / DIARY_FILENAME).parent.mkdir()
    (state_dir / DIARY_FILENAME).write_bytes(b"not a database" * 100)
    assert _run(state_dir, "course", "--json") == 0
    captured = capsys.readouterr()
    assert "the IRLS trend is left out" in captured.err
    assert json.loads(captured.out)["checkpoints"][0]["irls_baseline"] is None


def test_damaged_session_rows_are_said_the_course_counting_the_rest(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, DUE)
    with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
        conn.execute("UPDATE sessions SET planned_j_cm2 = 'not json' WHERE id = 2")
    conn.close()
    assert _run(state_dir, "course") == 0
    err = capsys.readouterr().err
    assert err == (
        "nirpad: 1 damaged row(s) of the treatment record could not be read; the course "
        "counts the rest.\n"
    )
    warnings: list[str] = []
    assert isinstance(course_commands.course_document(state_dir, None, None, warnings), dict)
    assert warnings == [err.removeprefix("nirpad: ").rstrip("\n")]


def test_course_document_returns_its_warnings_and_never_prints(
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _at(monkeypatch, DUE)
    (state_dir / DIARY_FILENAME).parent.mkdir()
    (state_dir / DIARY_FILENAME).write_bytes(b"not a database" * 100)
    warnings: list[str] = []
    document = course_commands.course_document(state_dir, None, "Europe/Berlin", warnings)
    assert isinstance(document, dict) and document["first_day"] == "2026-10-13"
    [warning] = warnings
    assert warning.startswith("the IRLS trend is left out: The symptom diary cannot be opened")
    with caplog.at_level("WARNING", logger="firmware_host.course_commands"):
        assert isinstance(course_commands.course_document(state_dir, None, "Europe/Berlin"), dict)
    assert "the IRLS trend is left out" in caplog.text
    assert capsys.readouterr() == ("", "")


def test_course_table(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, local(date(2026, 11, 19), 21, 0))
    assert _run(state_dir, "course") == 0
    out = capsys.readouterr().out
    assert "Course: day 1 2026-10-13, last day 2026-11-23 (week 6 of 6)" in out
    assert "below target" in out and "1 stopped" in out
    assert "Tonight: done: tonight's session is recorded" in out
    assert "Next checkpoint: follow-up" in out


def test_remind_exit_codes(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, DUE)
    assert _run(state_dir, "remind") == 0
    assert capsys.readouterr().out == "nirpad: session due tonight between 18:00 and 23:00\n"
    _at(monkeypatch, local(date(2026, 11, 21), 18, 30))  # the weekly budget: from 19:00
    assert _run(state_dir, "remind") == 1
    assert "between 19:00 and 23:00" in capsys.readouterr().out
    _at(monkeypatch, local(date(2026, 11, 20), 19, 30))
    assert _run(state_dir, "remind") == 1
    assert capsys.readouterr().out == "nirpad: not allowed before 19:00 tomorrow\n"
    _at(monkeypatch, local(date(2026, 11, 19), 21, 0))
    assert _run(state_dir, "remind") == 1
    assert "done" in capsys.readouterr().out


def test_no_reminder_while_the_record_refuses_any_start(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The clock jumped and nobody confirmed it: the pad refuses every start, so the
    evening's reminder says why instead of "due"."""
    with Ledger.open(state_dir, lambda: local(date(2026, 11, 20), 9, 0)) as ledger:
        ledger.record_event(EventKind.CLOCK_JUMP, "ahead by 2 days")
    _at(monkeypatch, DUE)
    assert _run(state_dir, "remind") == 1
    assert capsys.readouterr().out.startswith("nirpad: The clock moved ahead while nirpad")
    assert _run(state_dir, "course", "--json") == 0
    tonight = json.loads(capsys.readouterr().out)["tonight"]
    assert (tonight["status"], tonight["due_now"]) == ("record problem", False)


@pytest.mark.parametrize("due", [False, True])
def test_a_remind_table_the_hook_cannot_run_with_is_said_at_every_run(
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    due: bool,
) -> None:
    """Said at 18:15 too, not first on the evening the reminder does not come."""
    site = tmp_path / "site.toml"
    site.write_text('[remind]\nhook = "buzz"\n')
    _at(monkeypatch, DUE if due else local(date(2026, 11, 20), 19, 30))
    assert _run(state_dir, "remind", "--run-hook", "--site-config", str(site)) == (0 if due else 1)
    err = capsys.readouterr().err
    assert err.startswith(f"nirpad: the reminder hook cannot be run: In {site}, [remind] hook")
    assert err.count("\n") == 1


def test_remind_runs_the_hook_without_a_shell(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    out = tmp_path / "hook.txt"
    script = f"import os; open({str(out)!r}, 'w').write(os.environ['NIRPAD_REMINDER'])"
    site = tmp_path / "site.toml"
    site.write_text(f"[remind]\nhook = {json.dumps([sys.executable, '-c', script])}\n")
    _at(monkeypatch, DUE)
    assert _run(state_dir, "remind", "--run-hook", "--site-config", str(site)) == 0
    assert out.read_text() == "nirpad: session due tonight between 18:00 and 23:00"


def test_the_hooks_output_is_discarded_not_held_in_memory() -> None:
    """A hook that prints in a loop until its timeout held gigabytes in nirpad remind;
    its output now goes to /dev/null (the hook exits 0 only if it does)."""
    script = (
        "import os, sys; null = os.stat(os.devnull)\n"
        "same = all(os.path.samestat(os.fstat(fd), null) for fd in (1, 2))\n"
        "sys.exit(0 if same else 1)"
    )
    assert course_commands.run_reminder_hook(RemindSettings((sys.executable, "-c", script)), "x")


@pytest.mark.slow
def test_a_failing_or_hanging_hook_is_reported_not_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fails = RemindSettings((sys.executable, "-c", "raise SystemExit(3)"))
    assert not course_commands.run_reminder_hook(fails, "x")
    hangs = RemindSettings((sys.executable, "-c", "import time; time.sleep(30)"), 1.0)
    assert not course_commands.run_reminder_hook(hangs, "x")
    missing = RemindSettings(("/nonexistent/buzz",))
    assert not course_commands.run_reminder_hook(missing, "x")
    assert not course_commands.run_reminder_hook(RemindSettings(), "x")
    err = capsys.readouterr().err
    assert "exited with status 3" in err
    assert "did not finish in 1 s and was stopped" in err
    assert "/nonexistent/buzz could not run" in err


def test_calendar_writes_an_ics_that_parses_back(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _at(monkeypatch, DUE)
    ics = tmp_path / "course.ics"
    assert _run(state_dir, "calendar", "-o", str(ics)) == 0
    events = _events(ics)
    assert len(events) == 18
    assert events[0].decoded("dtstart").date() == date(2026, 10, 13)


def test_calendar_says_the_absolute_path_it_wrote(
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A quoted ``~`` reaches nirpad unexpanded: the line names the file written, as
    ``nirpad report`` does, not ``~/course.ics``."""
    _at(monkeypatch, DUE)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home)
    assert _run(state_dir, "calendar", "-o", "~/course.ics") == 0
    assert capsys.readouterr().out.endswith(f"written to {home / 'course.ics'}\n")
    assert _run(state_dir, "calendar", "-o", "relative.ics") == 0
    assert capsys.readouterr().out.endswith(f"written to {home / 'relative.ics'}\n")


def test_calendar_after_the_first_session_says_a_given_from_is_not_used(
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _at(monkeypatch, DUE)
    ics = tmp_path / "course.ics"
    assert _run(state_dir, "calendar", "-o", str(ics), "--from", "2026-12-01") == 0
    assert capsys.readouterr().err == (
        "nirpad: note: --from 2026-12-01 is not used: the course began on 2026-10-13, "
        "its first session\n"
    )
    events = _events(ics)
    assert events[0].decoded("dtstart").date() == date(2026, 10, 13)


def test_a_calendar_on_a_full_disk_leaves_the_one_before_intact(
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _at(monkeypatch, DUE)
    folder = tmp_path / "calendars"
    folder.mkdir()
    ics = folder / "course.ics"
    ics.write_bytes(b"last month's calendar")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output_files.os, "fsync", full)
    assert _run(state_dir, "calendar", "-o", str(ics)) == 1
    assert f"cannot write {ics}: the disk is full; nothing was written" in capsys.readouterr().err
    assert ics.read_bytes() == b"last month's calendar"
    assert sorted(p.name for p in folder.iterdir()) == ["course.ics"]  # no temporary left


def test_calendar_before_the_first_session_starts_from_a_given_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    install_atomic(tmp_path, RX_TOML)
    _at(monkeypatch, local(date(2026, 11, 18), 12, 0))
    ics = tmp_path.with_name(tmp_path.name + "-c.ics")  # outside the state directory
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "2026-11-20") == 0
    events = _events(ics)
    assert events[0].decoded("dtstart").date() == date(2026, 11, 20)
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "soon") == 2
    assert "not a date" in capsys.readouterr().err
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "") == 2  # never "today"
    assert "--from '' is not a date" in capsys.readouterr().err
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "2026-W47-5") == 2  # 20 Nov
    assert "--from '2026-W47-5' is not a date: write it as YYYY-MM-DD" in capsys.readouterr().err
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "20261120") == 0
    assert _events(ics)[0].decoded("dtstart").date() == date(2026, 11, 20)
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "9999-12-31") == 2
    assert (
        "--from 9999-12-31 is more than a year after today (2026-11-18): start by 2027-11-19"
        in (capsys.readouterr().err)
    )
    assert not (tmp_path / "ledger.sqlite3").exists()  # read-only: never created


def test_no_prescription_bad_site_and_bad_zone(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    assert main(["course", "--state-dir", str(empty), "--tz", "UTC"]) == 1
    assert "no usable prescription is installed" in capsys.readouterr().err
    assert main(["remind", "--state-dir", str(empty), "--tz", "UTC"]) == 1
    site = tmp_path / "site.toml"
    site.write_text("[course]\nmin_fluence_fraction = 0.5\n")
    assert _run(state_dir, "course", "--site-config", str(site)) == 2
    assert "a site may only tighten the rule" in capsys.readouterr().err
    assert main(["course", "--state-dir", str(state_dir), "--tz", "Mars/Olympus"]) == 2
    assert "unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["course"], ["report", "-o", "r.pdf"], ["diary", "--legs", "3"]])
@pytest.mark.parametrize("tz", ["", "  "])
def test_an_empty_time_zone_is_refused_not_taken_for_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], tz: str
) -> None:
    """As an empty --date is: a script's unset variable must not pass for the system's zone."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    install_atomic(state_dir, RX_TOML)
    args = [a.replace("r.pdf", str(tmp_path / "r.pdf")) for a in argv]
    assert main([*args, "--state-dir", str(state_dir), "--tz", tz]) == 2
    err = capsys.readouterr().err
    assert "the time zone is empty: give one like Europe/Berlin, or leave --tz out" in err
    assert err.count("\n") == 1
    assert sorted(p.name for p in state_dir.iterdir()) == ["prescription.toml"]
    assert not (tmp_path / "r.pdf").exists()


BERLIN_FILE = importlib.resources.files("tzdata") / "zoneinfo" / "Europe" / "Berlin"


@pytest.fixture
def zone_files(tmp_path: Path) -> tuple[Path, Path]:
    """A link into a zoneinfo folder (as /etc/localtime is) and a plain copy."""
    link, copy = tmp_path / "localtime-link", tmp_path / "localtime-copy"
    link.symlink_to(str(BERLIN_FILE))
    copy.write_bytes(BERLIN_FILE.read_bytes())
    return link, copy


@pytest.mark.parametrize(
    ("tz", "name"),
    [
        ("UTC", "UTC"),
        (":Europe/Berlin", "Europe/Berlin"),
        (":{link}", "Europe/Berlin"),  # TZ=:/etc/localtime
        ("{link}", "Europe/Berlin"),  # TZ=/etc/localtime
        (":{copy}", "{copy}"),  # a zone file outside any zoneinfo folder
    ],
)
def test_tz_may_name_a_zone_or_a_zone_file(
    monkeypatch: pytest.MonkeyPatch, zone_files: tuple[Path, Path], tz: str, name: str
) -> None:
    link, copy = zone_files
    monkeypatch.setenv("TZ", tz.format(link=link, copy=copy))
    zone = zone_named(None)
    assert str(zone) == name.format(copy=copy)
    assert datetime(2026, 7, 1, 12, tzinfo=zone).utcoffset() == (
        timedelta(0) if name == "UTC" else timedelta(hours=2)
    )


@pytest.mark.parametrize("form", [":{link}", "{link}", ":Europe/Berlin"])
def test_the_tz_option_takes_what_the_tz_variable_takes(
    monkeypatch: pytest.MonkeyPatch, zone_files: tuple[Path, Path], form: str
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the option wins over the variable
    zone = zone_named(form.format(link=zone_files[0]))
    assert str(zone) == "Europe/Berlin"


def test_without_tz_the_system_zone_file_is_used(
    monkeypatch: pytest.MonkeyPatch, zone_files: tuple[Path, Path], tmp_path: Path
) -> None:
    link, copy = zone_files
    monkeypatch.delenv("TZ", raising=False)
    monkeypatch.setattr(course_inputs, "TIMEZONE_FILE", tmp_path / "no timezone")
    monkeypatch.setattr(course_inputs, "LOCALTIME", link)
    assert str(zone_named(None)) == "Europe/Berlin"
    monkeypatch.setattr(course_inputs, "LOCALTIME", copy)
    assert datetime(2026, 1, 1, 12, tzinfo=zone_named(None)).utcoffset() == timedelta(hours=1)
    monkeypatch.setattr(course_inputs, "LOCALTIME", tmp_path / "none")
    assert str(zone_named(None)) == "UTC"


def test_a_tz_file_that_is_no_zone_is_refused_in_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "zone").write_bytes(b"not a zone file")
    monkeypatch.setenv("TZ", f":{tmp_path / 'zone'}")
    with pytest.raises(CourseInputError, match=r"the time zone file .* cannot be read"):
        zone_named(None)


def test_a_calendar_over_the_treatment_record_is_refused(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _at(monkeypatch, DUE)
    ledger = state_dir / "ledger.sqlite3"
    before = ledger.read_bytes()
    monkeypatch.chdir(state_dir)  # `-o ledger.sqlite3` typed in the state directory
    assert _run(state_dir, "calendar", "-o", "ledger.sqlite3") == 1
    assert capsys.readouterr().err == (
        f"nirpad: cannot write {ledger}: it is in the state directory {state_dir}, which "
        "holds the treatment record; choose another folder; nothing was written\n"
    )
    assert ledger.read_bytes() == before


@pytest.mark.parametrize("name", ["Europe", "Europe/" + "A" * 300])
def test_a_zone_name_that_is_a_folder_or_too_long_is_refused_in_words(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("TZ", name)
    with pytest.raises(CourseInputError) as refused:
        zone_named(None)
    assert str(refused.value) == f"unknown time zone {name!r}: give one like Europe/Berlin"


@pytest.mark.timeout(10)
def test_a_tz_file_that_is_a_named_pipe_is_refused_at_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    os.mkfifo(tmp_path / "zone")  # nobody writes it: an open would wait for ever
    monkeypatch.setenv("TZ", f":{tmp_path / 'zone'}")
    with pytest.raises(CourseInputError, match=r"the time zone file .*zone cannot be read"):
        zone_named(None)


def test_a_tz_file_in_a_loop_of_links_is_refused_in_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(CourseInputError, match=r"the time zone file .*a cannot be read"):
        zone_named(str(tmp_path / "a"))


@pytest.mark.parametrize(
    "argv",
    [("course", "--json"), ("report", "-o", "{out}/r.pdf"), ("diary", "--legs", "2")],
)
@pytest.mark.slow
def test_the_commands_run_with_tz_naming_the_local_zone_file(
    state_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    zone_files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
) -> None:
    monkeypatch.setenv("TZ", f":{zone_files[0]}")
    args = [part.format(out=tmp_path) for part in argv]
    assert main([args[0], "--state-dir", str(state_dir), *args[1:]]) == 0
    assert "unknown time zone" not in capsys.readouterr().err


def test_the_reminder_units_say_what_systemd_needs() -> None:
    import configparser

    import firmware_host

    folder = Path(firmware_host.__file__).parent / "systemd"
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str  # type: ignore[assignment,method-assign]
    service.read(folder / "nirpad-remind.service")
    svc = service["Service"]
    assert svc["Type"] == "oneshot"
    assert svc["ExecStart"] == "/usr/bin/nirpad remind --run-hook --state-dir /var/lib/nirpad"
    assert svc["SuccessExitStatus"] == "1"  # "not due" is not a failed unit
    assert svc["User"] == "nirpad"
    timer_text = (folder / "nirpad-remind.timer").read_text(encoding="utf-8")
    evenings = [line for line in timer_text.splitlines() if line.startswith("OnCalendar=")]
    hours = [int(line.split()[-1].split(":")[0]) for line in evenings]
    assert hours and all(17 <= hour <= 22 for hour in hours)  # evenings only
    assert "WantedBy=timers.target" in timer_text


def test_calendar_plans_only_evenings_the_prescription_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issued 1 Oct, expires 1 Mar: a plan from 20 Feb has one valid week of three
    evenings, not six; a plan from 1 Mar on has none, which is said, not an empty
    (invalid) calendar."""
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    install_atomic(tmp_path, RX_TOML)
    _at(monkeypatch, local(date(2027, 2, 18), 12, 0))
    ics = tmp_path.with_name(tmp_path.name + "-c.ics")  # outside the state directory
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "2027-02-20") == 0
    events = _events(ics)
    assert [e.decoded("dtstart").date() for e in events] == [
        date(2027, 2, 20), date(2027, 2, 22), date(2027, 2, 24), date(2027, 2, 27)
    ]  # fmt: skip
    assert "4 planned sessions from 2027-02-20" in capsys.readouterr().out
    before = ics.read_bytes()
    assert _run(tmp_path, "calendar", "-o", str(ics), "--from", "2027-03-01") == 1
    assert "no evening to plan" in capsys.readouterr().err
    assert ics.read_bytes() == before


def test_a_bad_signing_table_is_a_bad_site_setting(
    tmp_path: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A site file that is valid TOML with an unusable [signing] table is refused
    like any other bad site setting (exit 2, a sentence), and the caregiver's page
    gets the sentence instead of an exception."""
    site = tmp_path / "site.toml"
    site.write_text('[signing]\nrequire_signed = "yes"\n')
    assert _run(state_dir, "course", "--site-config", str(site)) == 2
    err = capsys.readouterr().err
    assert "the site configuration is unusable" in err and "true or false" in err
    document = course_commands.course_document(state_dir, str(site), "Europe/Berlin")
    assert isinstance(document, str) and "the site configuration is unusable" in document
