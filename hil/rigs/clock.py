"""The clocks of a rig: the virtual monotonic clock and a wall clock that follows it.

Owns: ``VirtualClock``, a monotonic time in seconds that only moves when a test (or the
in-process transport) advances it. Anything in nirpad that takes ``clock: Callable[[],
float]`` accepts an instance, so a 30-minute session runs in well under a second. And
``SettableWallClock``, the host's UTC wall clock over it, which a rig can jump (a Pi
without an RTC) or move with idle days that are not simulated, together with the
``uptime_s`` the controller's schedule trusts.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

__all__ = ["WALL_START", "SettableWallClock", "VirtualClock"]

WALL_START: Final = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)
"""The wall clock of every in-process rig at its start: a Tuesday evening, in the
built-in profiles' 18:00–23:00 window, inside their validity."""


class VirtualClock:
    """A monotonic clock that moves only when told. Call it to read the time in seconds."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self._now_s = start_s

    def __call__(self) -> float:
        return self._now_s

    def advance(self, dt_s: float) -> float:
        if dt_s < 0:
            raise ValueError("a monotonic clock cannot go backwards")
        self._now_s += dt_s
        return self._now_s

    def advance_to(self, t_s: float) -> float:
        if t_s > self._now_s:
            self._now_s = t_s
        return self._now_s


class SettableWallClock:
    """UTC wall time = ``start`` + virtual seconds elapsed + whatever ``skip``/``idle`` added.

    ``skip`` moves the wall clock alone: a jump (a Pi without an RTC that lost its time,
    or a clock set ahead). ``idle`` lets real time pass that is not simulated (days
    between sessions): the wall clock and ``uptime_s`` move together. ``uptime_s`` is the
    truth time of a run: the monotonic time the controller's schedule trusts, which
    never jumps back.
    """

    def __init__(self, clock: VirtualClock, start: dt.datetime = WALL_START) -> None:
        self._clock = clock
        self._origin_s = clock()
        self._start = start
        self.offset = dt.timedelta(0)
        self._idle_s = 0.0

    def __call__(self) -> dt.datetime:
        return self._start + self.offset + dt.timedelta(seconds=self._clock() - self._origin_s)

    def skip(self, delta: dt.timedelta) -> None:
        self.offset += delta

    def idle(self, delta: dt.timedelta) -> None:
        if delta < dt.timedelta(0):
            raise ValueError("time does not run backwards; use skip")
        self.offset += delta
        self._idle_s += delta.total_seconds()

    def uptime_s(self) -> float:
        return self._clock() + self._idle_s
