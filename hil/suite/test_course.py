"""A full course: 12 sessions of rls-810-standard over 4 weeks, in-process.

The stack runs on the virtual clock at time scale 60 (a 30-minute session takes 30 s of
protocol time); idle days between sessions pass without being simulated (the wall
clock and the controller's trusted uptime move together), so four weeks cost a few
seconds. The course is three evenings a week (days 0, 2, 4 of each week). Along the
way the two schedule rules are tried on purpose: a start 19 h after a session (the
interval rule, 20 h) and a fourth start within 7 days (the weekly rule, 3) are refused
with the reason a person reads, and nothing emits. Every session completes and the
ledger holds it with the planned fluence.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from firmware_host.machine import State
from hil.rigs.harness import WALL_START, InProcessRig, assert_dose_within_plan
from safety.faults import Outcome

pytestmark = [pytest.mark.hil, pytest.mark.sim_only, pytest.mark.slow]

PLANNED_J_CM2 = 40.0 * (1800.0 - 30.0 / 2) / 1000.0  # rls-810-standard: 71.4 J/cm²
COURSE_DAYS = [7 * week + day for week in range(4) for day in (0, 2, 4)]


def set_wall(rig: InProcessRig, at: dt.datetime) -> None:
    delta = at - rig.wall()
    if delta >= dt.timedelta(0):
        rig.wall.idle(delta)  # days pass (not simulated); the wall alone never jumps ahead
    else:
        rig.wall.skip(delta)  # the course's first evening, a few seconds back
    rig.run(1.5)  # the controller re-reads the prescription and schedule each second


def refused_without_light(rig: InProcessRig, expected: str) -> None:
    rig.collect()
    mark = len(rig.events)
    reply = rig.command("start")
    assert reply.exit_code == 3, reply
    assert expected in reply.message, reply.message
    rig.run(0.5)
    assert rig.state is State.READY
    status = rig.status()
    assert status["start_refusal"] is not None and expected in status["start_refusal"]
    assert status["next_start_allowed_at"] is not None
    assert not [e for e in rig.events[mark:] if e["event"] == "output" and e["on"]]


def one_session(rig: InProcessRig) -> None:
    assert rig.status()["start_refusal"] is None, rig.status()
    rig.start()
    rig.run_until(lambda: rig.state is State.COMPLETE, 40.0, 1.0)
    assert not rig.outputs_on()
    assert rig.command("ack").ok
    rig.run(0.2)
    assert rig.state is State.READY


def test_twelve_sessions_over_four_weeks(rig: InProcessRig) -> None:
    for index, day in enumerate(COURSE_DAYS):
        when = WALL_START + dt.timedelta(days=day, minutes=index)
        if index == 1:  # 19 h after the first session: the interval rule
            set_wall(rig, WALL_START + dt.timedelta(hours=19))
            refused_without_light(rig, "20 h after the last one")
            allowed_at = dt.datetime.fromisoformat(rig.status()["next_start_allowed_at"])
            (first,) = rig.sessions()
            assert first.ended_at is not None
            exact = first.ended_at + dt.timedelta(hours=20)  # shown rounded up to the second
            assert exact <= allowed_at < exact + dt.timedelta(seconds=1)
        if index == 3:  # a fourth session 2 days after the third: the weekly rule
            set_wall(rig, WALL_START + dt.timedelta(days=6, minutes=3))
            refused_without_light(rig, "3 sessions in 7 days is the most allowed")
        set_wall(rig, when)
        one_session(rig)
    sessions = rig.sessions()
    assert len(sessions) == 12
    for record in sessions:
        assert record.outcome is Outcome.COMPLETED
        assert record.profile_id == "rls-810-standard"
        assert record.planned_fluence_total_j_cm2 == pytest.approx(PLANNED_J_CM2)
        assert record.delivered_fluence_total_j_cm2 == pytest.approx(PLANNED_J_CM2, rel=0.005)
    starts = sorted(record.started_at for record in sessions)
    assert all(b - a >= dt.timedelta(hours=20) for a, b in itertools.pairwise(starts))
    assert all(starts[i + 3] - starts[i] >= dt.timedelta(days=7) for i in range(len(starts) - 3))
    assert starts[-1] - starts[0] < dt.timedelta(weeks=4)
    assert rig.faults() == []
    truth_j_cm2 = rig.true_fluence_calibrated_j_cm2()
    assert truth_j_cm2 == pytest.approx(12 * PLANNED_J_CM2, rel=0.005)
    assert_dose_within_plan(rig, 12 * PLANNED_J_CM2)
