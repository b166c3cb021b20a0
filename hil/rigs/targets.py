"""The targets of the HIL suite: the simulator, or a real board only when asked.

Owns: the markers a HIL test declares (``emits``: it turns light on; ``sim_only``: it
needs the simulator's fault injection or physical truth), the environment switch that
allows emission on a real board (``NIRPAD_ALLOW_EMISSION=1``), ``skip_reason``: why a
test must not run against the target given with ``--board-url``, and
``board_url_problem``: why that URL cannot name a board at all. Does not own the
options and the skipping itself (hil/suite/conftest.py) or the lock of a real board
(``hil.rigs.locking``).
"""

from __future__ import annotations

import os
import stat
from typing import Final

import serial

__all__ = [
    "ALLOW_EMISSION_ENV",
    "EMITS",
    "SIM_ONLY",
    "board_url_problem",
    "emission_allowed",
    "skip_reason",
]

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


def board_url_problem(board_url: str) -> str | None:
    """Why ``board_url`` cannot name a board (an unknown scheme, no such device, not a
    serial port), or None. Never opens the port: another run may be using the board."""
    if "://" in board_url:
        try:
            serial.serial_for_url(board_url, do_not_open=True)
        except ValueError:
            scheme = board_url.split("://", 1)[0]
            return (
                f"{board_url}: pyserial knows no {scheme!r} port; give a serial device "
                "(/dev/ttyUSB0) or a pyserial URL (socket://HOST:PORT, rfc2217://HOST:PORT)"
            )
        return None
    try:
        mode = os.stat(board_url).st_mode
    except OSError as exc:
        return f"{board_url}: no such device ({exc.strerror})"
    if not stat.S_ISCHR(mode):
        return f"{board_url}: not a serial port (a character device such as /dev/ttyUSB0)"
    return None
