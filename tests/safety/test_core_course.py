"""The prescribed course: a start after ``course_weeks`` from the first session is refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from safety.faults import Outcome
from safety.ledger import Ledger

from .conftest import Rig, make_profile

T0 = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)


def _session(ledger: Ledger, profile_id: str, delivered_j_cm2: float) -> None:
    sid = ledger.begin_session(profile_id, "ab" * 32, {810: 3.0}, planned_duration_s=60)
    ledger.end_session(sid, Outcome.COMPLETED, {810: delivered_j_cm2})


def test_first_session_counts_only_this_prescription_since_its_issue(tmp_path: Path) -> None:
    now = [T0]
    with Ledger.open(tmp_path, lambda: now[0], display_tz=dt.UTC) as ledger:
        assert ledger.first_session_at("rx", T0 - dt.timedelta(days=30)) is None
        _session(ledger, "rx", 0.0)  # no dose: does not begin the course
        now[0] = T0 + dt.timedelta(days=1)
        _session(ledger, "other", 3.0)
        now[0] = T0 + dt.timedelta(days=2)
        _session(ledger, "rx", 3.0)
        now[0] = T0 + dt.timedelta(days=3)
        _session(ledger, "rx", 3.0)
        since = T0 - dt.timedelta(days=30)
        assert ledger.first_session_at("rx", since) == T0 + dt.timedelta(days=2)
        assert ledger.first_session_at("rx", T0 + dt.timedelta(days=3)) == now[0]
        assert ledger.first_session_at("rx", T0 + dt.timedelta(days=4)) is None


@pytest.mark.slow
def test_a_start_after_the_course_is_refused_until_the_clinic_renews(rig: Rig) -> None:
    core = rig.ready()
    rx = make_profile(course_weeks=1)
    rig.c.begin_session(rx, "ab" * 32)
    rig.run(200.0, until=lambda evs: any(type(e).__name__ == "SessionFinished" for e in evs))
    first_day = rig.wall().date()
    rig.wall.offset = dt.timedelta(days=6)  # the last day of a one-week course
    assert "renew" not in (core.start_refusal(rx) or "")
    rig.wall.offset = dt.timedelta(days=7)
    end = (first_day + dt.timedelta(weeks=1)).isoformat()
    assert core.start_refusal(rx) == (
        f"The prescribed course of 1 week from the first session ({first_day.isoformat()}) "
        f"ended on {end}. Ask the clinic to renew the prescription."
    )
    renewed = make_profile(course_weeks=1, issued=rig.wall().date())
    assert "renew" not in (core.start_refusal(renewed) or "")


@pytest.mark.usefixtures("new_york")
def test_the_course_ends_on_the_patients_local_date_west_of_utc(rig: Rig) -> None:
    """Day 1 began at 18:30 EDT on 13 October (22:30 UTC). At 20:30 EDT on 19 October,
    the last evening of a one-week course (00:30 UTC on the 20th), the pad still starts;
    the next morning it refuses, as the reminders and the course report count the days."""
    rx = make_profile(course_weeks=1, issued=dt.date(2026, 10, 1))
    first = dt.datetime(2026, 10, 13, 22, 30, tzinfo=dt.UTC)
    with Ledger.open(rig.state_dir, lambda: first, display_tz=dt.UTC) as ledger:
        _session(ledger, rx.id, 3.0)
    rig.wall.start = dt.datetime(2026, 10, 20, 0, 30, tzinfo=dt.UTC)
    core = rig.ready()
    assert "renew" not in (core.start_refusal(rx) or "")
    rig.wall.offset = dt.timedelta(hours=4)  # 00:30 EDT on 20 October
    refusal = core.start_refusal(rx)
    assert refusal is not None and "(2026-10-13) ended on 2026-10-20" in refusal
