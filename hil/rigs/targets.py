"""The targets of the HIL suite: the simulator, or a real board only when asked.

Owns: the markers a HIL test declares (``emits``: it turns light on; ``sim_only``: it
needs the simulator's fault injection or physical truth), the environment switch that
allows emission on a real board (``NIRPAD_ALLOW_EMISSION=1``), and ``skip_reason``: why a
test must not run against the target given with ``--board-url``. Does not own the
options and the skipping itself (hil/suite/conftest.py) or the lock of a real board
(``hil.rigs.locking``).
"""

from __future__ import annotations

import os
from typing import Final

__all__ = ["ALLOW_EMISSION_ENV", "EMITS", "SIM_ONLY", "emission_allowed", "skip_reason"]

ALLOW_EMISSION_ENV: Final = "NIRPAD_ALLOW_EMISSION"
EMITS: Final = "emits"
"""Marker of tests that turn light on: on a real board they need NIRPAD_ALLOW_EMISSION=1."""
SIM_ONLY: Final = "sim_only"
"""Marker of tests that need the simulator (fault injection, its physical truth)."""


def emission_allowed() -> bool:
    return os.environ.get(ALLOW_EMISSION_ENV) == "1"


def skip_reason(board_url: str | None, markers: set[str], allow_emission: bool) -> str | None:
    """Why a HIL test must not run against this target, or None if it may."""
    if board_url is None:
        return None
    if SIM_ONLY in markers:
        return (
            f"needs the simulator's fault injection or physical truth; {board_url} is a "
            "real board (run without --board-url to use the simulator)"
        )
    if EMITS in markers and not allow_emission:
        return (
            f"would turn on the LEDs of the real board at {board_url}; set "
            f"{ALLOW_EMISSION_ENV}=1 to allow emission (and put the pad where that is safe)"
        )
    return None
