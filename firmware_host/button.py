"""The pad's one button: from raw edges to short and long presses.

Owns: debouncing, the short/long press rule (long = held >= 2 s, fired while still held,
checked every tick; a press whose release edge came before 2 s is short even while that
release is still being debounced), stuck-button detection (held > 30 s: ignored and
reported), and ``gpio_button``, which wires a gpiozero ``Button`` to post edges into the
event loop.

Does not own what a press means (the state machine decides) nor the board's button
events (the safety core reports them as ``ButtonEdge``; the controller feeds them here).

Both sources feed ONE interpreter: if the GPIO line and the board report the same
physical button, the second report of a level is redundant and changes nothing, so a
press is never counted twice. Times are seconds on the injected monotonic clock.

Debounce: a level counts only once it has been stable for ``DEBOUNCE_S``; two edges
closer than that (a bounce or a glitch) cancel out and produce nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from gpiozero import Button
from gpiozero.exc import GPIOZeroError

__all__ = [
    "DEBOUNCE_S",
    "LONG_PRESS_S",
    "STUCK_S",
    "ButtonError",
    "ButtonInterpreter",
    "GpioEdge",
    "Press",
    "gpio_button",
]

log = logging.getLogger(__name__)

DEBOUNCE_S: Final = 0.030
LONG_PRESS_S: Final = 2.0
STUCK_S: Final = 30.0


class Press(StrEnum):
    SHORT = "short"
    LONG = "long"


class ButtonError(Exception):
    """The GPIO button could not be opened. ``pin`` names the line."""

    def __init__(self, message: str, *, pin: object) -> None:
        super().__init__(message)
        self.pin = pin


@dataclass(frozen=True)
class GpioEdge:
    """An edge from the GPIO button, posted into the loop. ``t_s`` None: stamp on arrival."""

    down: bool
    t_s: float | None = None


class ButtonInterpreter:
    """Turns (down, t_s) edges and ticks into ``Press`` events. Loop thread only."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._raw_down = False
        self._raw_since_s = clock()
        self._down = False
        self._down_since_s = 0.0
        self._long_fired = False
        self._stuck = False

    @property
    def stuck(self) -> bool:
        """True while the button has been held for more than ``STUCK_S``."""
        return self._stuck

    @property
    def held(self) -> bool:
        return self._down

    @property
    def raw_down(self) -> bool:
        """The last level reported, before debouncing."""
        return self._raw_down

    def feed(self, down: bool, t_s: float | None = None) -> list[Press]:
        """Take one raw edge. Returns the presses it completes (at most one)."""
        now_s = self._clock() if t_s is None else t_s
        presses = self._settle(now_s)
        if down != self._raw_down:
            self._raw_down = down
            self._raw_since_s = now_s
        return presses

    def tick(self, now_s: float | None = None) -> list[Press]:
        """Call every loop tick: settles a stable level, fires long presses, spots stuck."""
        now_s = self._clock() if now_s is None else now_s
        presses = self._settle(now_s)
        if not self._down:
            return presses
        held_s = now_s - self._down_since_s
        if not self._raw_down:  # a release is being debounced: the press ended at its edge
            held_s = self._raw_since_s - self._down_since_s
        if held_s > STUCK_S and not self._stuck:
            self._stuck = True
            log.warning("button held for %.1f s: counted as stuck, ignored", held_s)
        if held_s >= LONG_PRESS_S and not self._long_fired and not self._stuck:
            self._long_fired = True
            presses.append(Press.LONG)
        return presses

    def _settle(self, now_s: float) -> list[Press]:
        if self._raw_down == self._down or now_s - self._raw_since_s < DEBOUNCE_S:
            return []
        self._down = self._raw_down
        if self._down:
            self._down_since_s = self._raw_since_s
            self._long_fired = False
            return []
        return self._released(self._raw_since_s)

    def _released(self, up_s: float) -> list[Press]:
        held_s = up_s - self._down_since_s
        if self._stuck:
            self._stuck = False
            log.warning("stuck button released after %.1f s; no press counted", held_s)
            return []
        if self._long_fired:
            return []
        return [Press.SHORT] if held_s < LONG_PRESS_S else [Press.LONG]


def gpio_button(
    pin: int | str | None,
    pin_factory: Any,
    post: Callable[[object], None],
    *,
    clock: Callable[[], float] | None = None,
) -> Button | None:
    """Open the GPIO button (active low, pull-up); its edges go to ``post``.

    Returns None when ``pin`` is None (no GPIO button on this pad). A pin that cannot be
    opened raises ``ButtonError``: a configured button that silently does nothing would
    leave the patient without a way to stop. gpiozero calls the callbacks on its own
    thread, so they only post; with ``clock`` the edge is stamped at the callback,
    otherwise on arrival in the loop. The caller closes the returned device.
    """
    if pin is None:
        return None
    try:
        button = Button(pin, pull_up=True, bounce_time=None, pin_factory=pin_factory)
    except GPIOZeroError as err:
        raise ButtonError(f"cannot open the button on GPIO {pin}: {err}", pin=pin) from err

    def stamp() -> float | None:
        return None if clock is None else clock()

    button.when_pressed = lambda: post(GpioEdge(True, stamp()))
    button.when_released = lambda: post(GpioEdge(False, stamp()))
    return button
