"""The boot self-test, as a function over the safety core's parts.

Owns: the sequence (calibration sane, sensors plausible in the first telemetry frames,
outputs confirmed off, the rail line proven to switch the board's LED supply) and the
reason, in words, when a step fails. The core runs it between sessions, latches
``SELF_TEST_FAILED`` with that reason, and lends it a way to wait for frames (its own
polling: every frame is judged by the supervisor on the way). Does not own the
thresholds (``limits``, ``supervisor``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from drivers.errors import BoardDisconnectedError, DriverError
from drivers.protocol import OutputOff, Telemetry
from safety.fault_latch import FaultLatch
from safety.interlock import Interlock
from safety.rail import RailError

__all__ = ["SELF_TEST_FRAMES", "SELF_TEST_STEP_TIMEOUT_S", "FrameWait", "self_test_problem"]

SELF_TEST_FRAMES: Final = 3
"""Telemetry frames read before the sensors are judged."""
SELF_TEST_STEP_TIMEOUT_S: Final = 0.5
"""How long each self-test step waits for the board to show the expected state."""

FrameWait = Callable[[Callable[[Telemetry], bool]], Telemetry | None]
"""Wait (at most ``SELF_TEST_STEP_TIMEOUT_S``) for a new frame that satisfies the test."""


def self_test_problem(
    interlock: Interlock,
    faults: FaultLatch,
    await_frame: FrameWait,
    lose_board: Callable[[DriverError], None],
) -> str | None:
    """Run the steps in order; the first problem, or None when every step passed."""
    problem = interlock.calibration.sanity_problem()
    if problem is not None:
        return f"The pad's calibration is unusable: {problem}."
    steps: tuple[Callable[[], str | None], ...] = (
        lambda: _check_sensors(await_frame),
        lambda: _check_outputs_off(interlock, await_frame, lose_board),
        lambda: _check_rail(interlock, await_frame),
    )
    for step in steps:
        problem = step()
        if problem is None and faults.status is not None:
            problem = faults.status.message
        if problem is not None:
            return problem
    return None


def _expect(
    await_frame: FrameWait, wanted: Callable[[Telemetry], bool], problem: str
) -> str | None:
    return None if await_frame(wanted) is not None else problem


def _check_sensors(await_frame: FrameWait) -> str | None:
    for _ in range(SELF_TEST_FRAMES):
        problem = _expect(await_frame, lambda tm: True, "The pad sends no telemetry.")
        if problem is not None:
            return problem
    return None  # the supervisor judged every frame: a bad sensor is latched


def _check_outputs_off(
    interlock: Interlock, await_frame: FrameWait, lose_board: Callable[[DriverError], None]
) -> str | None:
    try:
        interlock.client.request(OutputOff(), SELF_TEST_STEP_TIMEOUT_S)
    except BoardDisconnectedError as exc:
        lose_board(exc)
        return None  # the latched BOARD_DISCONNECTED is the reason
    except DriverError as exc:
        return f"The pad did not confirm its outputs are off: {exc}"
    return _expect(
        await_frame,
        lambda tm: not tm.output_on,
        "The pad reports light output although it is off.",
    )


def _check_rail(interlock: Interlock, await_frame: FrameWait) -> str | None:
    rail = interlock.rail
    try:
        rail.cut()
        problem = _expect(
            await_frame,
            lambda tm: not tm.rail_enabled,
            "Cutting the LED power line does not reach the pad (rail line check).",
        )
        if problem is None:
            rail.enable()
            problem = _expect(
                await_frame,
                lambda tm: tm.rail_enabled,
                "Enabling the LED power line does not reach the pad (rail line check).",
            )
    except RailError as exc:
        problem = f"The LED power line cannot be switched: {exc}"
    if problem is not None:
        interlock.cut_rail()
    return problem
