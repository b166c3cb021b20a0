"""The pad's one button as the simulated board sees it: presses, bounce, a stuck switch.

Owns: the user's finger (press and release, timed short and long presses), contact
bounce when ``button_bounce`` is injected, and the schedule of the resulting raw
switch changes. Does not own what an edge means (the host decides) or how it is
reported (the board sends EVENT frames for the edges of ``reading``).
"""

from __future__ import annotations

import heapq
from typing import Final

SHORT_PRESS_S: Final = 0.3
LONG_PRESS_S: Final = 2.5
BOUNCE_STEP_S: Final = 0.002  # one contact chatter every 2 ms
BOUNCE_CHATTERS: Final = 2  # extra (opposite, then final) changes after each user edge


class Button:
    """Raw switch state over time. Times are protocol (real) seconds."""

    def __init__(self) -> None:
        self.pressed = False  # the raw switch contact
        self.stuck = False
        self.bounce = False
        # (time, order, value, is_user_edge): user edges may bounce, chatter does not.
        self._timers: list[tuple[float, int, bool, bool]] = []
        self._order = 0

    @property
    def reading(self) -> bool:
        return self.pressed or self.stuck

    def press(self, kind: str, now_s: float) -> None:
        if kind not in ("short", "long"):
            raise ValueError(f"a press is 'short' or 'long', not {kind!r}")
        self.user_edge(True, now_s)
        hold_s = SHORT_PRESS_S if kind == "short" else LONG_PRESS_S
        self._schedule(now_s + hold_s, False, user=True)

    def user_edge(self, down: bool, now_s: float) -> None:
        if down == self.pressed:
            return
        self.pressed = down
        if self.bounce:
            for n in range(1, BOUNCE_CHATTERS + 1):
                chatter = down if n % 2 == 0 else not down
                self._schedule(now_s + n * BOUNCE_STEP_S, chatter, user=False)

    def _schedule(self, t_s: float, value: bool, *, user: bool) -> None:
        self._order += 1
        heapq.heappush(self._timers, (t_s, self._order, value, user))

    def next_change_s(self) -> float | None:
        return self._timers[0][0] if self._timers else None

    def run_one_due(self, now_s: float) -> bool:
        """Apply the next change if it is due by ``now_s``; the board reads after each."""
        if not self._timers or self._timers[0][0] > now_s:
            return False
        t_s, _, value, user = heapq.heappop(self._timers)
        if user:
            self.user_edge(value, t_s)
        else:
            self.pressed = value
        return True

    def release_all(self) -> None:
        self._timers.clear()
        self.pressed = False
