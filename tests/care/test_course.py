"""The course calendar, its figures per week and its checkpoints, from a real ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from care.adherence import DEFAULT_RULE, AdherenceRule
from care.course import Course, build_course, in_window
from safety.records import read_records
from tests.care.course_fixture import (
    BERLIN,
    DAY_1,
    IRLS,
    course_profile,
    local,
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
    assert [c.symptoms.change for c in course.checkpoints] == [-4, -8, -12]
    assert week2.symptoms.baseline == (date(2026, 10, 12), 24)
    assert course.next_checkpoint is follow_up


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
