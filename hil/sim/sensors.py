"""The three NTC sensors of the simulated board: two on the skin, one on the LED board.

Owns: what each sensor reads, given the true node temperatures of the thermal model,
the injected sensor faults and a little seeded noise. Does not own the thermal model
or what the firmware does with a reading.
"""

from __future__ import annotations

import random
from typing import Final

from hil.sim.faults import ActiveInjections, FaultKind
from hil.sim.firmware import Readings

NOISE_SIGMA_C: Final = 0.02
OPEN_NTC_C: Final = -40.0  # an open NTC reads as very cold (pull-up divider at the rail)
SHORTED_NTC_C: Final = 150.0  # a shorted NTC reads as very hot
SKIN_OVERTEMP_C: Final = 42.0
BOARD_OVERTEMP_C: Final = 75.0


def round_centi(value: float) -> float:
    """``round(value, 2)``: the very same float, without its decimal-string round trip.

    ``round(x, 2)`` formats ``x`` as a decimal and parses it back, which costs more than the
    rest of a sample. For |x| < 1e10, ``x * 100.0`` is within 1e-4 of the exact product, so
    where it is not near a half its nearest integer is the correctly rounded number of
    hundredths, and dividing that by 100.0 gives the float nearest to it, as parsing does.
    Near a half, at zero (whose sign ``round`` keeps) and beyond, ``round`` itself answers.
    """
    scaled = value * 100.0
    if -1e12 < scaled < 1e12:
        hundredths = round(scaled)
        if hundredths and abs(scaled - hundredths) < 0.499:
            return hundredths / 100.0
    return round(value, 2)


def sample_readings(
    skin_c: float,
    board_c: float,
    injections: ActiveInjections,
    physics_s: float,
    rng: random.Random,
) -> Readings:
    """One sample of (skin_a, skin_b, board), faults applied, in °C."""
    gauss = rng.gauss
    if not injections:
        return Readings(
            round_centi(skin_c + gauss(0.0, NOISE_SIGMA_C)),
            round_centi(skin_c + gauss(0.0, NOISE_SIGMA_C)),
            round_centi(board_c + gauss(0.0, NOISE_SIGMA_C)),
        )
    values = {"skin_a": skin_c, "skin_b": skin_c, "board": board_c}
    if FaultKind.SKIN_OVERTEMP in injections:
        values["skin_a"] = values["skin_b"] = SKIN_OVERTEMP_C
    if FaultKind.BOARD_OVERTEMP in injections:
        values["board"] = BOARD_OVERTEMP_C
    drift = injections.get(FaultKind.NTC_DRIFT)
    if drift is not None:
        minutes = max(0.0, physics_s - drift.physics_s) / 60.0
        values[str(drift.params["sensor"])] += drift.number("rate_c_per_min") * minutes
    for kind, stuck_c in ((FaultKind.NTC_OPEN, OPEN_NTC_C), (FaultKind.NTC_SHORT, SHORTED_NTC_C)):
        injection = injections.get(kind)
        if injection is not None:
            values[str(injection.params["sensor"])] = stuck_c
    return Readings(
        round_centi(values["skin_a"] + gauss(0.0, NOISE_SIGMA_C)),
        round_centi(values["skin_b"] + gauss(0.0, NOISE_SIGMA_C)),
        round_centi(values["board"] + gauss(0.0, NOISE_SIGMA_C)),
    )
