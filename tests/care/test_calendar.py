"""The course's planned evenings as an .ics file, checked by parsing it back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import icalendar

from care.calendar import course_calendar, planned_days
from tests.care.course_fixture import BERLIN, DAY_1, course_profile

GENERATED = datetime(2026, 10, 13, 8, 0, tzinfo=UTC)


def _events(ics: bytes) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(ics).walk("VEVENT"))


def test_three_a_week_fall_on_days_1_3_and_5() -> None:
    days = planned_days(course_profile(), DAY_1)
    assert len(days) == 18
    assert days[:4] == [DAY_1, date(2026, 10, 15), date(2026, 10, 17), date(2026, 10, 20)]
    seven = planned_days(course_profile(sessions_per_week=7, course_weeks=1), DAY_1)
    assert seven == [DAY_1 + timedelta(days=n) for n in range(7)]


def test_the_file_parses_back_with_local_evening_times_across_daylight_saving() -> None:
    events = _events(course_calendar(course_profile(), DAY_1, BERLIN, GENERATED))
    assert len(events) == 18
    starts = [e.decoded("dtstart") for e in events]
    assert all(s.hour == 18 and s.minute == 0 for s in starts)
    assert str(starts[0].tzinfo) == "Europe/Berlin"
    # Daylight saving ends on 25 Oct: 24 Oct is still CEST, 27 Oct is CET.
    assert (starts[5].date(), starts[5].utcoffset()) == (date(2026, 10, 24), timedelta(hours=2))
    assert (starts[6].date(), starts[6].utcoffset()) == (date(2026, 10, 27), timedelta(hours=1))
    first = events[0]
    assert first.decoded("dtend") - first.decoded("dtstart") == timedelta(minutes=30)
    assert str(first["summary"]) == "nirpad session (30 min)"
    assert "between 18:00 and 23:00" in str(first["description"])
    assert len({str(e["uid"]) for e in events}) == 18
    assert b"BEGIN:VTIMEZONE" in course_calendar(course_profile(), DAY_1, BERLIN, GENERATED)
    assert list(first.walk("VALARM"))


def test_without_a_window_the_events_are_all_day() -> None:
    rx = course_profile(window=None, course_weeks=1)
    events = _events(course_calendar(rx, DAY_1, BERLIN, GENERATED))
    assert [e.decoded("dtstart") for e in events] == [
        DAY_1,
        date(2026, 10, 15),
        date(2026, 10, 17),
    ]
    assert "any time today" in str(events[0]["description"])


def test_no_evening_is_planned_when_the_prescription_is_not_valid() -> None:
    """The pad refuses a start before ``issued`` or from ``expires`` on, so the
    calendar's alarms must not send the patient to the pad on those evenings."""
    rx = course_profile(expires=date(2026, 11, 1))  # six weeks from 13 Oct run to 23 Nov
    days = planned_days(rx, DAY_1)
    assert days and all(rx.is_valid_on(day) for day in days)
    assert max(days) == date(2026, 10, 31)
    early = planned_days(course_profile(course_weeks=1), date(2026, 9, 28))  # issued 1 Oct
    assert early == [date(2026, 10, 2)]
    events = _events(course_calendar(rx, DAY_1, BERLIN, GENERATED))
    assert len(events) == len(days)
