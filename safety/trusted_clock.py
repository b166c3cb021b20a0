"""Wall time for the schedule rules that never runs ahead of the controller's own clock.

Owns: the trusted "now" of the interval and weekly rules while the controller runs. A
Raspberry Pi has no RTC, so its wall clock can be set, or jump, to anything; the
monotonic clock cannot. Trusted now = the smaller of the wall clock and the last
trusted now plus the monotonic time since: a wall clock that jumps ahead does not make
time pass for the rules, one that goes back is followed at once. How far the wall clock
is ahead of trusted now (``ahead_s``) is what a caregiver is shown, and a jump of more
than ``JUMP_RECORD_S`` is recorded once by the core.

Does not own the rules (``safety.ledger_rules``), the record of a jump
(``safety.core``), nor what survives a reboot: a new process starts trusting the wall
clock it finds (docs/hazards.md says how that is mitigated).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Final

__all__ = ["CLOCK_CHECK_S", "JUMP_RECORD_S", "TrustedClock"]

CLOCK_CHECK_S: Final = 10.0
"""How often a tick compares the wall clock with the controller's own."""

JUMP_RECORD_S: Final = 300.0
"""A wall clock this far ahead of trusted time has jumped: recorded and shown. Smaller
differences (an NTP slew, a test's rounding) are only counted in ``ahead_s``."""


class TrustedClock:
    """``now_s()``: unix seconds that advance no faster than ``uptime_clock``."""

    def __init__(
        self, wall_clock: Callable[[], datetime], uptime_clock: Callable[[], float]
    ) -> None:
        self._wall_clock = wall_clock
        self._uptime_clock = uptime_clock
        self._trusted_s = wall_clock().timestamp()
        self._uptime_s = uptime_clock()
        self.ahead_s = 0.0
        """How far the wall clock was ahead of trusted time at the last ``now_s``."""
        self._reported = False
        self._next_check_s = -math.inf

    def now_s(self) -> float:
        wall_s = self._wall_clock().timestamp()
        uptime_s = self._uptime_clock()
        trusted_s = min(wall_s, self._trusted_s + max(0.0, uptime_s - self._uptime_s))
        self._trusted_s, self._uptime_s = trusted_s, uptime_s
        self.ahead_s = wall_s - trusted_s
        return trusted_s

    @property
    def jumped(self) -> bool:
        """The wall clock is ahead of trusted time by more than ``JUMP_RECORD_S``."""
        return self.ahead_s > JUMP_RECORD_S

    def newly_jumped(self) -> bool:
        """True once per jump: ``jumped`` now, and not at the previous look."""
        jumped = self.jumped
        news, self._reported = jumped and not self._reported, jumped
        return news

    def check_due(self, now_s: float) -> bool:
        """True at most every ``CLOCK_CHECK_S`` of ``now_s``: time to compare the clocks."""
        if now_s < self._next_check_s:
            return False
        self._next_check_s = now_s + CLOCK_CHECK_S
        return True

    def check_now(self) -> None:
        """Make the next ``check_due`` true (after a confirmation)."""
        self._next_check_s = -math.inf

    def confirm(self) -> None:
        """A caregiver confirmed the wall clock: trust it from now on."""
        self._trusted_s = self._wall_clock().timestamp()
        self._uptime_s = self._uptime_clock()
        self.ahead_s = 0.0
