"""The virtual clock shared by tests, the in-process simulator and the controller.

Owns: a monotonic time in seconds that only moves when a test (or the in-process
transport) advances it. Anything in nirpad that takes ``clock: Callable[[], float]``
accepts an instance, so a 30-minute session runs in well under a second.
"""

from __future__ import annotations


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
