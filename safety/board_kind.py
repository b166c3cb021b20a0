"""What board the host was started for, and whether the board's INFO agrees.

Owns: the host's own time scale (x1 for a real board; for a simulator, the scale given
on the host's command line, within ``SIM_TIME_SCALE_MIN``..``SIM_TIME_SCALE_MAX``) and
the comparison of a board's INFO (simulator flag, time scale) with it. The board is
never trusted about time: its claim is only compared, never used. Does not own what
happens on a mismatch (``safety.core`` latches ``board_mismatch``) nor the wire format
of INFO (``drivers.protocol``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from drivers.protocol import SIM_TIME_SCALE_MAX, SIM_TIME_SCALE_MIN, Info

__all__ = ["REAL_BOARD", "BoardKind", "check_time_scale"]

_SCALE_TOLERANCE: Final = 0.005
"""INFO carries the scale in hundredths: a host scale rounds to within half of one."""


def check_time_scale(time_scale: float) -> float:
    """``time_scale`` if a simulator may run at it, else ValueError saying the range."""
    if not (math.isfinite(time_scale) and SIM_TIME_SCALE_MIN <= time_scale <= SIM_TIME_SCALE_MAX):
        raise ValueError(
            f"the time scale must be between {SIM_TIME_SCALE_MIN:g} and "
            f"{SIM_TIME_SCALE_MAX:g}, not {time_scale:g}"
        )
    return time_scale


@dataclass(frozen=True, slots=True)
class BoardKind:
    """A real board (x1, simulator flag clear) or a simulator at the host's own scale."""

    simulator: bool
    time_scale: float

    @classmethod
    def simulated(cls, time_scale: float) -> BoardKind:
        """A simulated board running ``time_scale`` times faster; ValueError outside range."""
        return cls(True, check_time_scale(time_scale))

    def __post_init__(self) -> None:
        if not self.simulator and self.time_scale != 1.0:
            raise ValueError("a real board runs at time scale 1")
        check_time_scale(self.time_scale)

    def describe(self) -> str:
        if self.simulator:
            return f"a simulated board at time scale {self.time_scale:g}"
        return "a real board (time scale 1)"

    def mismatch(self, info: Info) -> str | None:
        """Why ``info`` is not the board this host was started for; None if it is."""
        same_scale = abs(info.time_scale - self.time_scale) <= _SCALE_TOLERANCE
        if info.simulator == self.simulator and same_scale:
            return None
        flag = "set" if info.simulator else "clear"
        return (
            f"the board reports simulator flag {flag} and time scale {info.time_scale:g}, "
            f"but this controller was started for {self.describe()}"
        )


REAL_BOARD: Final = BoardKind(False, 1.0)
