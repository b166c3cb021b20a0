"""A six-week course written through the real ledger API, with its known answers.

Europe/Berlin; day 1 is Tuesday 2026-10-13; daylight saving ends on Sunday 2026-10-25
(week 2). Three sessions a week, window 18:00–23:00, 30 minutes:

| week | days (local)          | what                                             |
|------|-----------------------|--------------------------------------------------|
| 1    | 13, 15, 17 Oct 19:00  | 3 full                                           |
| 2    | 20, 22 Oct 19:00, 25 Oct 22:30 CET | 3 full (22:30 CET is 21:30 UTC: inside) |
| 3    | —                     | missed week                                      |
| 4    | 3, 5, 7 Nov 19:00     | 5 Nov stopped at half the plan: 2 full           |
| 5    | 10 Nov 17:00, 12, 14 Nov 19:00 | 3 full, the first outside the window    |
| 6    | 17, 19, 21 Nov 19:00  | 3 full                                           |

Before the course, one session of an earlier prescription (``rx-old``, September).

The diary (``write_diary``, through the real store): the baseline IRLS 24 (severe) on
12 Oct, the day before day 1, then 20 on 27 Oct (the week 2 review), 16 on 10 Nov (week
4) and 12 (moderate) on 22 Dec (the follow-up), and a nightly entry on each of these days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from care.diary import Diary
from care.diary_entry import CourseDates, NightlyEntry
from profiles.schema import Profile
from safety.faults import Outcome
from safety.ledger import Ledger

BERLIN: Final = ZoneInfo("Europe/Berlin")
DAY_1: Final = date(2026, 10, 13)
SHA: Final = "a" * 64
RX_TOML: Final = b"""schema_version = 1
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
"""``course_profile()`` as the file ``nirpad profile install`` takes."""


def course_profile(**overrides: Any) -> Profile:
    fields: dict[str, Any] = {
        "schema_version": 1,
        "id": "rls-810",
        "name": "RLS 810 nm evenings",
        "prescriber": "Dr Test",
        "issued": date(2026, 10, 1),
        "expires": date(2027, 3, 1),
        "channels": ({"wavelength_nm": 810, "irradiance_mw_cm2": 25.0},),
        "mode": {"kind": "cw"},
        "duration_min": 30,
        "ramp_s": 0.0,
        "sessions_per_week": 3,
        "min_interval_h": 20.0,
        "course_weeks": 6,
        "window": {"start": "18:00", "end": "23:00"},
    }
    fields.update(overrides)
    return Profile.model_validate(fields)


class SettableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


SESSIONS: Final = (
    (date(2026, 10, 13), 19, 0, 1.0),
    (date(2026, 10, 15), 19, 0, 1.0),
    (date(2026, 10, 17), 19, 0, 1.0),
    (date(2026, 10, 20), 19, 0, 1.0),
    (date(2026, 10, 22), 19, 0, 1.0),
    (date(2026, 10, 25), 22, 30, 1.0),
    (date(2026, 11, 3), 19, 0, 1.0),
    (date(2026, 11, 5), 19, 0, 0.5),
    (date(2026, 11, 7), 19, 0, 1.0),
    (date(2026, 11, 10), 17, 0, 1.0),
    (date(2026, 11, 12), 19, 0, 1.0),
    (date(2026, 11, 14), 19, 0, 1.0),
    (date(2026, 11, 17), 19, 0, 1.0),
    (date(2026, 11, 19), 19, 0, 1.0),
    (date(2026, 11, 21), 19, 0, 1.0),
)
IRLS: Final = (
    (date(2026, 10, 12), 24),
    (date(2026, 10, 27), 20),
    (date(2026, 11, 10), 16),
    (date(2026, 12, 22), 12),
)


def run_session(
    ledger: Ledger, clock: SettableClock, rx: Profile, at: datetime, share: float = 1.0
) -> None:
    """One session through the ledger's API; ``share`` < 1 is stopped early."""
    clock.now = at
    planned = rx.planned_fluence_j_cm2
    sid = ledger.begin_session(rx.id, SHA, planned, planned_duration_s=rx.duration_s)
    clock.now += timedelta(seconds=rx.duration_s * share)
    outcome = Outcome.COMPLETED if share >= 1 else Outcome.STOPPED
    ledger.end_session(sid, outcome, {ch: j * share for ch, j in planned.items()})


def write_six_weeks(
    state_dir: Path, rx: Profile | None = None, until: date | None = None
) -> SettableClock:
    """The course above in ``state_dir``'s ledger (only the sessions up to ``until``);
    returns the clock (after the last session)."""
    rx = rx or course_profile()
    old = course_profile(id="rls-old", issued=date(2026, 8, 1))
    clock = SettableClock(local(date(2026, 9, 1), 19))
    with Ledger.open(state_dir, clock) as ledger:
        run_session(ledger, clock, old, local(date(2026, 9, 1), 19))
        ledger.record_install(rx.id, SHA, str(state_dir / "rx.toml"))
        for day, hour, minute, share in SESSIONS:
            if until is not None and day > until:
                break
            run_session(ledger, clock, rx, local(day, hour, minute), share)
        ledger.flush_backups()
    return clock


DIARY_IRLS: Final = (
    (date(2026, 10, 12), (3, 3, 3, 3, 2, 2, 2, 2, 2, 2), True),
    (date(2026, 10, 27), (2, 2, 2, 2, 2, 2, 2, 2, 2, 2), False),
    (date(2026, 11, 10), (2, 2, 2, 2, 2, 2, 1, 1, 1, 1), False),
    (date(2026, 12, 22), (2, 2, 1, 1, 1, 1, 1, 1, 1, 1), False),
)
"""(date, the ten item scores, marked baseline): totals 24, 20, 16, 12."""


def write_diary(state_dir: Path, rx: Profile | None = None) -> None:
    """The diary above, each entry written on its own evening through ``Diary``, with
    the course dates the CLI would give (before day 1: only the issue date is known)."""
    rx = rx or course_profile()
    clock = SettableClock(local(DAY_1, 12))
    for day, scores, baseline in DIARY_IRLS:
        clock.now = local(day, 21)
        course = CourseDates(rx.issued, DAY_1 if day >= DAY_1 else None)
        with Diary.open(state_dir, course=course, wall_clock=clock, tz=BERLIN) as diary:
            diary.add_irls(day, dict(enumerate(scores, start=1)), baseline=baseline)
            diary.add_nightly(NightlyEntry(day, leg_symptoms=sum(scores) // 4, sleep_quality=5))
