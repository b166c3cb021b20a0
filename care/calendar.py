"""The course's planned evenings as an iCalendar file, for a caregiver's phone.

Owns: which evenings are planned (``sessions_per_week`` spread over each course week:
days 1, 1 + ⌊7/n⌋, 1 + ⌊14/n⌋, … of the week, so three a week fall on days 1, 3 and 5;
none before the prescription's issue date or from its expiry on)
and the RFC 5545 text (``icalendar``): one event per planned evening at the start of
the evening window for the prescribed duration, in the patient's zone (with its
VTIMEZONE), with a reminder at its start; all-day events when the prescription has no
window. Each event's UID is stable, so importing a newer file updates the same events.

Does not own when a session is allowed (the controller's schedule, shown by
``nirpad course``): the plan is a suggestion, the pad still refuses a start too early.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo
from typing import Final

import icalendar

from profiles.schema import Profile

__all__ = ["course_calendar", "planned_days"]

PRODID: Final = "-//nirpad//course of treatment//EN"


def planned_days(rx: Profile, first_day: date) -> list[date]:
    """The planned session days of the course that starts on ``first_day``, only
    those on which the prescription is valid (the pad refuses a start on the others)."""
    per_week = rx.sessions_per_week
    offsets = [i * 7 // per_week for i in range(per_week)]
    days = (
        first_day + timedelta(weeks=week, days=offset)
        for week in range(rx.course_weeks)
        for offset in offsets
    )
    return [day for day in days if rx.is_valid_on(day)]


def course_calendar(rx: Profile, first_day: date, tz: tzinfo, generated_at: datetime) -> bytes:
    """The .ics file of the planned evenings (``tz`` a ``zoneinfo.ZoneInfo``;
    ``generated_at``, aware, is each event's DTSTAMP)."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"nirpad: {rx.name}")
    for number, day in enumerate(planned_days(rx, first_day), start=1):
        cal.add_component(_event(rx, day, number, tz, generated_at))
    cal.add_missing_timezones()
    ics: bytes = cal.to_ical()
    return ics


def _event(
    rx: Profile, day: date, number: int, tz: tzinfo, generated_at: datetime
) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", f"{rx.id}-{rx.issued.isoformat()}-{day.isoformat()}@nirpad")
    event.add("summary", f"nirpad session ({rx.duration_min} min)")
    event.add("dtstamp", generated_at)
    if rx.window is None:
        event.add("dtstart", day)
        event.add("dtend", day + timedelta(days=1))
        window = "any time today"
    else:
        start = datetime.combine(day, time.fromisoformat(rx.window.start), tz)
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=rx.duration_min))
        window = f"between {rx.window.start} and {rx.window.end}"
    event.add(
        "description",
        f"Planned session {number} of prescription {rx.id}: start {window}. "
        "The pad refuses a start the prescription does not allow yet.",
    )
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", "nirpad session")
    alarm.add("trigger", timedelta(0))
    event.add_component(alarm)
    return event
