"""hil.tools.stall_monitor: late wake-ups are recorded with their wall time, others are not."""

from __future__ import annotations

import datetime as dt
import time

from hil.tools.stall_monitor import StallMonitor


def test_only_wake_ups_later_than_the_threshold_are_stalls() -> None:
    now = [0.0]
    lateness = iter([0.001, 0.120, 0.049, 0.051])

    def sleep(period_s: float) -> None:
        now[0] += period_s + next(lateness)

    wall = dt.datetime(2026, 11, 24, 12, 13, 35, tzinfo=dt.UTC)
    monitor = StallMonitor(0.005, 0.050, clock=lambda: now[0], sleep=sleep, wall=lambda: wall)
    for _ in range(4):
        monitor.step()
    report = monitor.report()
    assert report["wakeups"] == 4 and report["stalls"] == 2
    assert report["max_late_ms"] == 120.0
    assert report["worst"] == [("2026-11-24T12:13:35.000+00:00", 120.0),
                               ("2026-11-24T12:13:35.000+00:00", 51.0)]  # fmt: skip


def test_the_thread_runs_and_stops_with_the_context() -> None:
    with StallMonitor(0.001, 10.0) as monitor:
        while monitor.wakeups < 3:
            time.sleep(0.001)
    assert not monitor._thread.is_alive()
    assert monitor.report()["stalls"] == 0
