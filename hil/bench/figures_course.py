"""The wall time of a whole course of treatment on the virtual clock.

Owns: running a four-week course (three evenings a week, days 0, 2 and 4 of each
week; 12 sessions) of the bench's 810 nm profile through the HIL suite's in-process
rig, at time scale 1 (each session is its whole length on the byte-level wire, with
the shipped safety code), idle days passing without being simulated, and timing it.
Every session must complete, as ``hil/suite/test_course.py`` checks at time scale 60.
Does not own the rig (``hil.rigs.harness``) or the profile (``figures_stack``).
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware_host.machine import State
from hil.bench.figures_common import Figure
from hil.bench.figures_stack import BenchSetupError, bench_profile
from hil.rigs.harness import WALL_START, InProcessRig
from safety.faults import Outcome

COURSE_DAYS: Final = tuple(7 * week + day for week in range(4) for day in (0, 2, 4))
COURSE_TARGET_S: Final = 60.0


@dataclass(frozen=True)
class CourseRun:
    sessions: int
    session_min: int
    wall_s: float
    session_wall_s: tuple[float, ...]


def _evening(rig: InProcessRig, when: dt.datetime) -> None:
    """Let the days until ``when`` pass (not simulated); the controller re-reads its
    prescription and schedule each second."""
    delta = when - rig.wall()
    if delta >= dt.timedelta(0):
        rig.wall.idle(delta)
    else:
        rig.wall.skip(delta)  # the first evening, a few seconds back
    rig.run(1.5)


def _session(rig: InProcessRig, session_s: float) -> float:
    started_s = time.perf_counter()
    rig.start()
    rig.run_until(lambda: rig.state is not State.TREATING, session_s + 60.0, 5.0)
    if rig.state is not State.COMPLETE or not rig.command("ack").ok:
        raise BenchSetupError(f"a course session ended in {rig.state}: {rig.status()}")
    rig.run(0.2)
    return time.perf_counter() - started_s


def run_course(sessions: int, session_min: int) -> CourseRun:
    """``sessions`` evenings of the course, each a ``session_min``-minute session."""
    profile = bench_profile(duration_min=session_min).data
    with tempfile.TemporaryDirectory(prefix="nirpad-bench-course-") as tmp:
        rig = InProcessRig.build(Path(tmp) / "state", profile_bytes=profile, time_scale=1.0)
        try:
            rig.boot()
            started_s = time.perf_counter()
            per_session: list[float] = []
            for index, day in enumerate(COURSE_DAYS[:sessions]):
                _evening(rig, WALL_START + dt.timedelta(days=day, minutes=index))
                per_session.append(_session(rig, session_min * 60.0))
            wall_s = time.perf_counter() - started_s
            outcomes = [record.outcome for record in rig.sessions()]
        finally:
            rig.close()
    if outcomes != [Outcome.COMPLETED] * sessions:
        raise BenchSetupError(f"the course's sessions ended {outcomes}")
    return CourseRun(sessions, session_min, wall_s, tuple(per_session))


def course_figures(sessions: int, session_min: int, floor_s: float | None = None) -> list[Figure]:
    """The course's wall time, beside ``floor_s``: the simulated board's own share of
    that much treating (``hil.bench.session_floor``), if measured."""
    run = run_course(sessions, session_min)
    full = sessions == len(COURSE_DAYS) and session_min == 30
    per = ", ".join(f"{s:.1f}" for s in run.session_wall_s)
    return [
        Figure(
            "course.wall",
            f"{sessions}-session course of {session_min}-min sessions on the virtual clock",
            "s",
            run.wall_s,
            1,
            {"max session": max(run.session_wall_s)},
            target=f"≤ {COURSE_TARGET_S:g} s (12 × 30 min)",
            met=run.wall_s <= COURSE_TARGET_S if full else None,
            floor=floor_s,
            note=f"hil.rigs.harness in-process rig, time scale 1, idle days skipped; wall s per "
            f"session: {per}"
            + ("" if floor_s is None else f"; floor = the simulated board alone, {floor_s:.1f} s"),
            details={"session_wall_s": list(run.session_wall_s)},
        )
    ]
