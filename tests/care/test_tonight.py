"""Tonight's status: due, done, not allowed yet, and whether a reminder is due now."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from care.adherence import DEFAULT_RULE
from care.course import build_course
from care.tonight import Tonight, tonight
from profiles.schema import Profile
from safety.limits import HARD_LIMITS
from safety.records import ScheduleRule, SessionRecord, read_records, schedule_rule
from tests.care.course_fixture import BERLIN, course_profile, local, write_six_weeks


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[SessionRecord, ...]:
    state_dir = tmp_path_factory.mktemp("state")
    return read_records(state_dir, write_six_weeks(state_dir)).sessions


def _status(
    sessions: tuple[SessionRecord, ...],
    now: datetime,
    next_allowed: datetime | None = None,
    rx: Profile | None = None,
    record_problem: str | None = None,
) -> Tonight:
    rx = rx or course_profile()
    today = now.astimezone(BERLIN).date()
    course = build_course(rx, sessions, today, BERLIN, DEFAULT_RULE)
    return tonight(rx, course, sessions, now, BERLIN, next_allowed, record_problem=record_problem)


def test_a_session_is_due_inside_the_window(sessions: tuple[SessionRecord, ...]) -> None:
    status = _status(sessions, local(date(2026, 11, 18), 19, 30))
    assert status == Tonight("due", "session due tonight between 18:00 and 23:00", True)


def test_before_the_window_it_is_due_but_not_now(sessions: tuple[SessionRecord, ...]) -> None:
    status = _status(sessions, local(date(2026, 11, 18), 12, 0))
    assert (status.kind, status.due_now) == ("due", False)


def test_done_once_a_session_started_tonight(sessions: tuple[SessionRecord, ...]) -> None:
    status = _status(sessions, local(date(2026, 11, 17), 21, 0))
    assert (status.kind, status.text, status.due_now) == (
        "done",
        "done: tonight's session is recorded",
        False,
    )


def test_not_allowed_before_a_time_after_tonights_window(
    sessions: tuple[SessionRecord, ...],
) -> None:
    status = _status(sessions, local(date(2026, 11, 18), 19, 0), local(date(2026, 11, 19), 14, 10))
    assert (status.kind, status.text, status.due_now) == (
        "not allowed",
        "not allowed before 14:10 tomorrow",
        False,
    )
    later = _status(sessions, local(date(2026, 11, 18), 19, 0), local(date(2026, 11, 20), 9, 0))
    assert later.text == "not allowed before 09:00 on 2026-11-20"


def test_allowed_later_tonight_narrows_the_window(sessions: tuple[SessionRecord, ...]) -> None:
    allowed = local(date(2026, 11, 18), 19, 5).replace(second=30)
    early = _status(sessions, local(date(2026, 11, 18), 18, 30), allowed)
    assert early == Tonight("due", "session due tonight between 19:06 and 23:00", False)
    on_time = _status(sessions, local(date(2026, 11, 18), 19, 10), allowed)
    assert on_time.due_now


def test_the_window_passed(sessions: tuple[SessionRecord, ...]) -> None:
    status = _status(sessions, local(date(2026, 11, 18), 23, 30))
    assert status == Tonight("window passed", "tonight's window (18:00 and 23:00) has passed")


def test_the_weeks_sessions_are_done(sessions: tuple[SessionRecord, ...]) -> None:
    status = _status(sessions, local(date(2026, 11, 22), 19, 0))
    assert status == Tonight("week done", "done: this week's 3 sessions")


def test_the_course_is_over(sessions: tuple[SessionRecord, ...]) -> None:
    status = _status(sessions, local(date(2026, 11, 25), 19, 0))
    assert status == Tonight("course over", "The course ended on 2026-11-24.")


def test_a_prescription_not_valid_yet() -> None:
    rx = course_profile(issued=date(2027, 1, 1), expires=date(2027, 6, 1))
    status = _status((), local(date(2026, 11, 18), 19, 0), rx=rx)
    assert status.kind == "not valid" and "not valid before 2027-01-01" in status.text


def test_a_window_over_midnight_belongs_to_the_evening_before() -> None:
    rx = course_profile(window={"start": "22:00", "end": "01:00"})
    status = _status((), local(date(2026, 11, 19), 0, 30), rx=rx)
    assert status == Tonight("due", "session due tonight between 22:00 and 01:00", True)
    assert not _status((), local(date(2026, 11, 19), 21, 0), rx=rx).due_now


def test_without_a_window_the_whole_day_counts() -> None:
    status = _status((), local(date(2026, 11, 19), 8, 0), rx=course_profile(window=None))
    assert status == Tonight("due", "session due today between 00:00 and 23:59", True)


def test_on_the_daylight_saving_evening_the_window_is_local() -> None:
    rx = course_profile(window={"start": "18:00", "end": "23:00"})
    assert _status((), local(date(2026, 10, 25), 22, 30), rx=rx).due_now
    assert not _status((), local(date(2026, 10, 25), 23, 30), rx=rx).due_now


def test_with_the_weekly_budget_read_from_the_ledger(tmp_path: Path) -> None:
    rx = course_profile(course_weeks=8)
    clock = write_six_weeks(tmp_path, rx)
    rule = schedule_rule(rx, HARD_LIMITS)
    assert rule == ScheduleRule(20.0, 3)
    clock.now = local(date(2026, 11, 24), 18, 30)  # week 7; 17, 19, 21 Nov in the last 7 days
    records = read_records(tmp_path, clock, rule)
    assert records.next_start_allowed_at == local(date(2026, 11, 24), 19, 0)
    status = _status(records.sessions, clock.now, records.next_start_allowed_at, rx)
    assert status == Tonight("due", "session due tonight between 19:00 and 23:00", False)


def test_a_record_that_refuses_any_start_comes_before_the_schedule(
    sessions: tuple[SessionRecord, ...],
) -> None:
    """A clock jump nobody confirmed: neither "due" nor a time the schedule allows, since
    the pad will not start until a caregiver acts; no reminder is due."""
    jump = "The clock moved ahead while nirpad was running. A caregiver checks the date."
    inside = local(date(2026, 11, 18), 19, 30)
    assert _status(sessions, inside, record_problem=jump) == Tonight("record problem", jump)
    later = local(date(2026, 11, 19), 14, 10)
    assert _status(sessions, inside, later, record_problem=jump) == Tonight("record problem", jump)
