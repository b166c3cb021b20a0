"""Scheduling stalls of this machine, as seen by a thread that only sleeps.

Owns: a background thread that sleeps ``period_s`` at a time and records every wake-up
that came more than ``threshold_s`` late, with its wall time, so a real-time run can
tell a fault the product caused from a moment the whole machine (the simulated board
included) stood still. Used by ``hil.tools.soak --realtime``. Does not own any verdict.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self

PERIOD_S: Final = 0.005
THRESHOLD_S: Final = 0.050
"""Half of the 100 ms telemetry-stale limit: a stall this long is worth a line."""


class StallMonitor:
    """Use as a context manager; ``report()`` afterwards (or during)."""

    def __init__(
        self,
        period_s: float = PERIOD_S,
        threshold_s: float = THRESHOLD_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.period_s, self.threshold_s = period_s, threshold_s
        self._clock, self._sleep, self._wall = clock, sleep, wall
        self.stalls: list[tuple[str, float]] = []  # (wall time of the wake-up, late by s)
        self.wakeups = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stall-monitor", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.step()

    def step(self) -> None:
        """One sleep; a wake-up more than ``threshold_s`` late is recorded."""
        before_s = self._clock()
        self._sleep(self.period_s)
        late_s = self._clock() - before_s - self.period_s
        self.wakeups += 1
        if late_s > self.threshold_s:
            self.stalls.append((self._wall().isoformat(timespec="milliseconds"), late_s))

    def report(self) -> dict[str, Any]:
        worst = sorted(self.stalls, key=lambda s: s[1], reverse=True)[:5]
        return {
            "threshold_ms": self.threshold_s * 1000,
            "wakeups": self.wakeups,
            "stalls": len(self.stalls),
            "max_late_ms": round(max((s[1] for s in self.stalls), default=0.0) * 1000, 1),
            "worst": [(at, round(late_s * 1000, 1)) for at, late_s in worst],
        }
