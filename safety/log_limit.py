"""Log lines that can recur at frame or tick rate, at most once a minute per kind.

Owns: ``RepeatLimiter``: one line per key, then nothing for that key until ``every_s``
has passed on the injected clock; the repeats in between are counted and the next line
says how many. Used for the controller's warnings, which a reading hovering at a
threshold can raise again on every telemetry frame, and for the board's events that a
misbehaving board can send in every frame. Does not own what is logged.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Final

__all__ = ["REPEAT_LOG_EVERY_S", "RepeatLimiter"]

REPEAT_LOG_EVERY_S: Final = 60.0


class RepeatLimiter:
    """Logs a key's line at most once every ``every_s``; counts the repeats between."""

    def __init__(
        self,
        logger: logging.Logger,
        clock: Callable[[], float],
        every_s: float = REPEAT_LOG_EVERY_S,
    ) -> None:
        self._log = logger
        self._clock = clock
        self._every_s = every_s
        self._last: dict[str, tuple[float, int]] = {}  # key -> (logged at, repeats since)

    def log(self, key: str, level: int, message: str) -> bool:
        """Log ``message`` unless ``key`` was logged within ``every_s``; True if logged."""
        now_s = self._clock()
        logged_s, repeats = self._last.get(key, (-math.inf, 0))
        if now_s - logged_s < self._every_s:
            self._last[key] = (logged_s, repeats + 1)
            return False
        self._last[key] = (now_s, 0)
        if repeats:
            message = f"{message} (and {repeats} more times in the last {now_s - logged_s:.0f} s)"
        self._log.log(level, "%s", message, stacklevel=2)  # the caller's file and line
        return True
