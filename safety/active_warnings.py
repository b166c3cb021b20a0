"""The warnings shown to the user now, and which of them are new.

Owns: the words of each warning, the three sources (the supervisor's of the last frame,
the link monitor's, the wall clock's) merged into one tuple, and the ``SafetyWarning``
event for a warning that was not shown before. A warning never stops a session by
itself. Does not own what raises a warning (``supervisor``, ``link_health``,
``trusted_clock``).
"""

from __future__ import annotations

from typing import Final

from safety.core_events import SafetyWarning
from safety.faults import WarningCode

__all__ = ["WARNING_TEXT", "ActiveWarnings"]

WARNING_TEXT: Final = {
    WarningCode.SKIN_TEMP_WARN: "The skin is getting warm.",
    WarningCode.CONTACT_LOST: "The pad has lost contact with the skin.",
    WarningCode.BUTTON_STUCK: "The pad's button seems stuck.",
    WarningCode.CLOCK_JUMP: (
        "The clock moved ahead while nirpad was running. Sessions are timed by nirpad's "
        "own clock until a caregiver confirms the date and time (nirpad clock confirm)."
    ),
    WarningCode.LINK_ERRORS: (
        "The link to the pad is losing data (over 1 % of frames in the last minute). "
        "Check the pad's cable and its connectors."
    ),
}


class ActiveWarnings:
    """The current warnings from each source; ``update`` returns the newly shown ones."""

    def __init__(self) -> None:
        self.codes: tuple[WarningCode, ...] = ()
        self._frame: tuple[WarningCode, ...] = ()
        self._link: tuple[WarningCode, ...] = ()
        self._clock: tuple[WarningCode, ...] = ()

    def from_frame(self, codes: tuple[WarningCode, ...]) -> list[SafetyWarning]:
        """The supervisor's warnings of this frame (no copy when nothing changed)."""
        if codes == self._frame:
            return []
        self._frame = codes
        return self._merge()

    def from_link(self, codes: tuple[WarningCode, ...]) -> list[SafetyWarning]:
        self._link = codes
        return self._merge()

    def from_clock(self, codes: tuple[WarningCode, ...]) -> list[SafetyWarning]:
        if codes == self._clock:
            return []
        self._clock = codes
        return self._merge()

    def shown(self) -> tuple[SafetyWarning, ...]:
        return tuple(SafetyWarning(c, WARNING_TEXT[c]) for c in self.codes)

    def _merge(self) -> list[SafetyWarning]:
        codes = self._frame + self._link + self._clock
        new = [SafetyWarning(c, WARNING_TEXT[c]) for c in codes if c not in self.codes]
        self.codes = codes
        return new
