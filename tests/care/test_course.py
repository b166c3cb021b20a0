"""The course calendar, its figures per week and its checkpoints, from a real ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from care.adherence import DEFAULT_RULE, AdherenceRule
from care.course import Course, IrlsTotal, build_course, first_day_of, in_window
from care.diary import Diary
from care.irls import Band
from safety.ledger import Ledger
from safety.records import read_records
from tests.care.course_fixture import (
    BERLIN,
    DAY_1,
    IRLS,
    SettableClock,
    course_profile,
    local,
    run_session,
    write_diary,
    write_six_weeks,
)

TODAY = date(2026, 11, 30)


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Course:
    state_dir = tmp_path_factory.mktemp("state")
    clock = write_six_weeks(state_dir)
    records = read_records(state_dir, clock)
    return build_course(course_profile(), records.sessions, TODAY, BERLIN, DEFAULT_RULE, IRLS)


def test_day_1_is_the_first_session_of_this_prescription(course: Course) -> None:
    assert course.first_day == DAY_1
    assert course.end == date(2026, 11, 24)
    assert [w.start for w in course.weeks][:3] == [DAY_1, date(2026, 10, 20), date(2026, 10, 27)]


def test_the_figures_per_week(course: Course) -> None:
    weeks = course.weeks
    assert [w.figures.done for w in weeks] == [3, 3, 0, 3, 3, 3]
    assert [w.figures.full for w in weeks] == [3, 3, 0, 2, 3, 3]
    assert [w.figures.missed for w in weeks] == [0, 0, 3, 0, 0, 0]
    assert [w.figures.early_stops["stopped"] for w in weeks] == [0, 0, 0, 1, 0, 0]
    assert [w.figures.outside_window for w in weeks] == [0, 0, 0, 0, 1, 0]
    assert [w.status for w in weeks] == ["on target"] * 2 + ["below target"] * 2 + ["on target"] * 2
    assert weeks[3].figures.fluence_share == pytest.approx(2.5 / 3)


def test_the_course_figures(course: Course) -> None:
    total = course.total
    assert (total.prescribed, total.done, total.full, total.missed) == (18, 15, 14, 3)
    assert total.early_stops == {"stopped": 1, "fault": 0, "power_lost": 0}
    assert (total.inside_window, total.outside_window) == (14, 1)
    assert total.fluence_share == pytest.approx(14.5 / 18)
    assert course.weeks_on_target == 4
    assert course.longest_run_on_target == 2


def test_the_checkpoints_and_the_symptom_trend(course: Course) -> None:
    week2, week4, follow_up = course.checkpoints
    assert (week2.on, week2.weeks, week2.figures.done, week2.weeks_on_target) == (
        date(2026, 10, 27),
        2,
        6,
        2,
    )
    assert (week4.on, week4.figures.done, week4.figures.full, week4.figures.missed) == (
        date(2026, 11, 10),
        9,
        8,
        3,
    )
    assert follow_up.on == date(2026, 12, 22)  # 4 weeks after the course
    assert follow_up.weeks == 6 and follow_up.weeks_on_target == 4
    # the IRLS of 22 Dec is after today (30 Nov): left out, as a session would be
    assert [c.symptoms.change for c in course.checkpoints] == [-4, -8, -8]
    assert week2.symptoms.baseline == (date(2026, 10, 12), 24)
    assert course.next_checkpoint is follow_up


def test_the_six_weeks_with_the_diary_store(tmp_path: Path) -> None:
    """The ledger and the diary both written through their real APIs."""
    clock = write_six_weeks(tmp_path)
    write_diary(tmp_path)
    with Diary.open(tmp_path, wall_clock=lambda: local(date(2026, 12, 23), 9), tz=BERLIN) as d:
        totals = [IrlsTotal(i.entry_date, i.total, i.baseline) for i in d.irls()]
    sessions = read_records(tmp_path, clock).sessions
    course = build_course(
        course_profile(), sessions, date(2026, 12, 23), BERLIN, DEFAULT_RULE, totals
    )
    assert [w.figures.done for w in course.weeks] == [3, 3, 0, 3, 3, 3]
    assert (course.total.done, course.total.full, course.total.missed) == (15, 14, 3)
    assert course.total.early_stops["stopped"] == 1 and course.total.outside_window == 1
    trends = [c.symptoms for c in course.checkpoints]
    assert [c.on for c in course.checkpoints] == [
        date(2026, 10, 27),
        date(2026, 11, 10),
        date(2026, 12, 22),
    ]
    assert {t.baseline for t in trends} == {(date(2026, 10, 12), 24)}
    assert all(t.baseline_marked for t in trends)
    assert [t.latest for t in trends] == [
        (date(2026, 10, 27), 20),
        (date(2026, 11, 10), 16),
        (date(2026, 12, 22), 12),
    ]
    assert [t.change for t in trends] == [-4, -8, -12]
    assert [(t.baseline_band, t.latest_band) for t in trends] == [(Band.SEVERE, Band.MODERATE)] * 3
    assert course.next_checkpoint is None  # the follow-up was yesterday


def test_the_baseline_is_the_one_marked_so(tmp_path: Path) -> None:
    clock = SettableClock(local(DAY_1, 19))
    with Ledger.open(tmp_path, clock) as ledger:
        run_session(ledger, clock, course_profile(), local(DAY_1, 19))
    sessions = read_records(tmp_path, clock).sessions
    marked = [
        IrlsTotal(date(2026, 9, 20), 30, baseline=True),  # before the prescription: not it
        IrlsTotal(date(2026, 10, 5), 26, baseline=True),
        IrlsTotal(date(2026, 10, 12), 24),  # later, but not the baseline
        IrlsTotal(date(2026, 10, 27), 20),
    ]
    unmarked = [IrlsTotal(day, total) for day, total, _ in marked]
    rx = course_profile()
    week2 = build_course(rx, sessions, TODAY, BERLIN, DEFAULT_RULE, marked).checkpoints[0]
    assert (week2.symptoms.baseline, week2.symptoms.baseline_marked) == (
        (date(2026, 10, 5), 26),
        True,
    )
    assert week2.symptoms.change == -6
    week2 = build_course(rx, sessions, TODAY, BERLIN, DEFAULT_RULE, unmarked).checkpoints[0]
    assert (week2.symptoms.baseline, week2.symptoms.baseline_marked) == (
        (date(2026, 10, 12), 24),
        False,
    )
    assert first_day_of(rx, sessions, BERLIN) == DAY_1
    assert first_day_of(course_profile(issued=date(2026, 10, 14)), sessions, BERLIN) is None


def test_earlier_prescriptions_are_kept_as_earlier_courses(course: Course) -> None:
    (old,) = course.earlier
    assert (old.profile_id, old.first_day, old.done, old.full) == (
        "rls-old",
        date(2026, 9, 1),
        1,
        1,
    )


def test_a_site_may_tighten_the_fluence_share(tmp_path: Path) -> None:
    clock = write_six_weeks(tmp_path)
    sessions = read_records(tmp_path, clock).sessions
    strict = build_course(course_profile(), sessions, TODAY, BERLIN, AdherenceRule(1.0, 4))
    assert strict.weeks_on_target == 0  # four a week cannot be reached under a budget of 3
    half_ok = AdherenceRule(0.5)
    assert build_course(course_profile(), sessions, TODAY, BERLIN, half_ok).weeks_on_target == 5


def test_a_renewal_starts_a_new_course(tmp_path: Path) -> None:
    clock = write_six_weeks(tmp_path)
    sessions = read_records(tmp_path, clock).sessions
    renewed = course_profile(issued=date(2026, 11, 25))
    fresh = build_course(renewed, sessions, TODAY, BERLIN, DEFAULT_RULE)
    assert fresh.first_day is None and fresh.weeks == () and fresh.checkpoints == ()
    assert fresh.next_checkpoint is None and fresh.current_week is None
    assert sorted(e.done for e in fresh.earlier) == [1, 15]


def test_the_current_week_and_a_week_in_progress(tmp_path: Path) -> None:
    clock = write_six_weeks(tmp_path)
    sessions = read_records(tmp_path, clock).sessions
    mid = build_course(course_profile(), sessions, date(2026, 11, 4), BERLIN, DEFAULT_RULE)
    assert mid.current_week == 4
    assert [w.status for w in mid.weeks[3:]] == ["in progress", "to come", "to come"]
    assert mid.weeks[3].figures.missed == 0  # not over yet
    assert mid.next_checkpoint is mid.checkpoints[1]


@pytest.mark.parametrize(
    ("hour", "minute", "window", "inside"),
    [
        (23, 30, ("18:00", "23:59"), True),
        (23, 59, ("18:00", "23:59"), True),
        (17, 59, ("18:00", "23:00"), False),
        (23, 1, ("18:00", "23:00"), False),
        (0, 30, ("22:00", "01:00"), True),
        (21, 59, ("22:00", "01:00"), False),
    ],
)
def test_the_window_in_local_time(
    hour: int, minute: int, window: tuple[str, str], inside: bool
) -> None:
    rx = course_profile(window={"start": window[0], "end": window[1]})
    assert in_window(rx, local(date(2026, 10, 25), hour, minute), BERLIN) is inside


def test_the_window_follows_daylight_saving() -> None:
    rx = course_profile(window={"start": "18:00", "end": "23:00"})
    summer = datetime(2026, 10, 24, 20, 30, tzinfo=UTC)  # 22:30 CEST
    winter = datetime(2026, 10, 25, 21, 30, tzinfo=UTC)  # 22:30 CET
    assert in_window(rx, summer, BERLIN) and in_window(rx, winter, BERLIN)
    assert not in_window(rx, winter + timedelta(hours=1), BERLIN)


def test_no_window_means_every_start_counts_as_inside() -> None:
    rx = course_profile(window=None)
    assert in_window(rx, datetime(2026, 10, 25, 3, 0, tzinfo=UTC), BERLIN)


def test_the_spring_daylight_saving_week(tmp_path: Path) -> None:
    """Summer time starts on Sunday 29 March 2026 (02:00 CET becomes 03:00 CEST) in
    week 1 of a course that begins on Friday 27 March: starts are judged on the local
    clock of their own day, and a start after midnight belongs to the local date."""
    rx = course_profile(issued=date(2026, 3, 1), expires=date(2026, 9, 1))
    starts = [
        local(date(2026, 3, 27), 19, 0),  # CET: 18:00 UTC, inside
        local(date(2026, 3, 29), 18, 30),  # CEST: 16:30 UTC; on CET it would read 17:30
        local(date(2026, 3, 31), 23, 30),  # CEST: 21:30 UTC; on CET it would read 22:30
        local(date(2026, 4, 3), 0, 30),  # CEST: 2 April 22:30 UTC, but local 3 April
    ]
    clock = SettableClock(starts[0])
    with Ledger.open(tmp_path, clock) as ledger:
        for at in starts:
            run_session(ledger, clock, rx, at)
    sessions = read_records(tmp_path, clock).sessions
    course = build_course(rx, sessions, date(2026, 4, 10), BERLIN, DEFAULT_RULE)
    week1, week2 = course.weeks[:2]
    assert (week1.start, week1.end) == (date(2026, 3, 27), date(2026, 4, 3))
    assert (week1.figures.done, week1.figures.outside_window) == (3, 1)
    assert (week2.figures.done, week2.figures.outside_window) == (1, 1)
    assert week1.on_target and week1.status == "on target"


def test_a_start_at_23_30_is_inside_a_window_ending_23_59(tmp_path: Path) -> None:
    rx = course_profile(window={"start": "18:00", "end": "23:59"})
    starts = [local(date(2026, 10, 13), 23, 30), local(date(2026, 10, 15), 23, 59)]
    starts.append(local(date(2026, 10, 18), 0, 0))  # midnight is the next day: outside
    clock = SettableClock(starts[0])
    with Ledger.open(tmp_path, clock) as ledger:
        for at in starts:
            run_session(ledger, clock, rx, at)
    sessions = read_records(tmp_path, clock).sessions
    week1 = build_course(rx, sessions, date(2026, 10, 20), BERLIN, DEFAULT_RULE).weeks[0]
    assert (week1.figures.done, week1.figures.inside_window, week1.figures.outside_window) == (
        3,
        2,
        1,
    )
