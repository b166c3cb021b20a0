"""Physics of the simulated pad: optical output from drive current, and heat.

Owns: the nominal calibration table of the simulated board, each unit's own factory
calibration (the nominal table scaled by a seeded unit-to-unit spread, which the unit
reports in INFO), the seeded residual error that the factory calibration leaves
(invisible to the host, bounded by ``safety.limits.CALIBRATION_UNCERTAINTY_FRACTION``),
the conversion of drive current to emitted irradiance (pulsed output delivers
peak x duty on average), the electrical LED power, and a two-node thermal model (LED
board node, skin-contact node) with the room and the body core as boundaries.
Does not own firmware decisions, sensors or time keeping: callers pass
physics-time steps (already multiplied by the time scale).

Tuning (50 mW/cm² CW, tests/hil/sim/test_physics.py pins it): skin starts at the unpowered
equilibrium, about 30.7 °C in a 22 °C room, and stays near 37.6 °C after 30 minutes;
in a 32 °C room it crosses 41 °C after about 16 minutes; under a blanket (heat loss
of the pad to the room cut to 30 %) it crosses 41 °C after about 13 minutes.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Final

from drivers.protocol import CalibrationPoint, ChannelCalibration

PAD_AREA_CM2: Final = 100.0
LED_STRING_V: Final = 24.0  # forward voltage of a healthy LED string at drive current
SHORTED_STRING_V: Final = 1.0  # what is left across a shorted string
SKIN_ABSORBED_FRACTION: Final = 0.8  # of the emitted light, absorbed as heat at the skin
CORE_C: Final = 37.0
UNIT_SPREAD_FRACTION: Final = 0.04  # unit-to-unit optical spread, measured at the factory (INFO)
UNIT_ERROR_FRACTION: Final = 0.0025  # residual error of that calibration, invisible to the host
MAX_THERMAL_STEP_S: Final = 1.0

G_BOARD_AMBIENT_W_K: Final = 0.9
G_BOARD_SKIN_W_K: Final = 1.6
G_SKIN_CORE_W_K: Final = 0.8
C_BOARD_J_K: Final = 250.0
C_SKIN_J_K: Final = 500.0
BLANKET_FACTOR: Final = 0.3


def _points(pairs: tuple[tuple[float, float], ...]) -> tuple[CalibrationPoint, ...]:
    return tuple(CalibrationPoint(current, irr) for current, irr in pairs)


_CAL_810_NM: Final = (
    (0, 0), (100, 9), (200, 18.5), (300, 27.5), (400, 36), (500, 44), (600, 51.5), (700, 58.5),
)  # fmt: skip
_CAL_850_NM: Final = (
    (0, 0), (100, 10), (200, 20), (300, 29.5), (400, 38.5), (500, 47), (600, 55), (700, 62.5),
)  # fmt: skip
CALIBRATION: Final[tuple[ChannelCalibration, ...]] = (
    ChannelCalibration(810, 700.0, _points(_CAL_810_NM)),
    ChannelCalibration(850, 700.0, _points(_CAL_850_NM)),
)


def interpolate_irradiance(points: tuple[CalibrationPoint, ...], current_ma: float) -> float:
    """Piecewise-linear irradiance (mW/cm²) at ``current_ma``, clamped to the table."""
    if current_ma <= points[0].current_ma:
        return points[0].irradiance_mw_cm2
    for low, high in itertools.pairwise(points):
        if current_ma <= high.current_ma:
            span = high.current_ma - low.current_ma
            frac = (current_ma - low.current_ma) / span
            return low.irradiance_mw_cm2 + frac * (high.irradiance_mw_cm2 - low.irradiance_mw_cm2)
    return points[-1].irradiance_mw_cm2


def unit_calibration(
    rng: random.Random, nominal: tuple[ChannelCalibration, ...]
) -> tuple[ChannelCalibration, ...]:
    """This unit's factory calibration: the nominal table scaled by its seeded spread."""
    scaled = []
    for cal in nominal:
        spread = 1.0 + rng.uniform(-UNIT_SPREAD_FRACTION, UNIT_SPREAD_FRACTION)
        points = tuple(
            CalibrationPoint(p.current_ma, round(p.irradiance_mw_cm2 * spread, 2))
            for p in cal.points
        )
        scaled.append(ChannelCalibration(cal.wavelength_nm, cal.max_current_ma, points))
    return tuple(scaled)


class Optics:
    """Emitted irradiance of this unit: its factory calibration times the residual error."""

    def __init__(self, rng: random.Random, nominal: tuple[ChannelCalibration, ...]) -> None:
        self.calibration = unit_calibration(rng, nominal)
        self.unit_factor = tuple(
            1.0 + rng.uniform(-UNIT_ERROR_FRACTION, UNIT_ERROR_FRACTION) for _ in nominal
        )

    def peak_irradiance_mw_cm2(self, channel: int, current_ma: float) -> float:
        cal = self.calibration[channel]
        return interpolate_irradiance(cal.points, current_ma) * self.unit_factor[channel]


def electrical_power_w(current_ma: float, duty: float, shorted: bool) -> float:
    """Average electrical power into one LED string."""
    volts = SHORTED_STRING_V if shorted else LED_STRING_V
    return current_ma / 1000.0 * volts * duty


@dataclass(slots=True)
class ThermalModel:
    """Two nodes: LED board (to room and skin) and skin contact (to board and body core)."""

    ambient_c: float
    board_c: float = 0.0
    skin_c: float = 0.0
    blanket: bool = False

    def __post_init__(self) -> None:
        self.board_c, self.skin_c = self.equilibrium_c()

    def _g_ambient_w_k(self) -> float:
        return G_BOARD_AMBIENT_W_K * (BLANKET_FACTOR if self.blanket else 1.0)

    def equilibrium_c(self) -> tuple[float, float]:
        """Unpowered steady state (board, skin) for the current room and blanket."""
        g_a, g_bs, g_c = self._g_ambient_w_k(), G_BOARD_SKIN_W_K, G_SKIN_CORE_W_K
        a11, a12, a22 = g_a + g_bs, -g_bs, g_bs + g_c
        b1, b2 = g_a * self.ambient_c, g_c * CORE_C
        det = a11 * a22 - a12 * a12
        return (b1 * a22 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det

    def step(self, dt_s: float, board_heat_w: float, skin_heat_w: float) -> None:
        """Advance by ``dt_s`` of physics time (explicit Euler, sub-stepped)."""
        g_a = self._g_ambient_w_k()
        board_c, skin_c, ambient_c = self.board_c, self.skin_c, self.ambient_c
        remaining = dt_s
        while remaining > 0:
            h = remaining if remaining < MAX_THERMAL_STEP_S else MAX_THERMAL_STEP_S
            to_skin_w = G_BOARD_SKIN_W_K * (board_c - skin_c)
            to_room_w = g_a * (board_c - ambient_c)
            to_core_w = G_SKIN_CORE_W_K * (skin_c - CORE_C)
            board_c += (board_heat_w - to_room_w - to_skin_w) * h / C_BOARD_J_K
            skin_c += (skin_heat_w + to_skin_w - to_core_w) * h / C_SKIN_J_K
            remaining -= h
        self.board_c, self.skin_c = board_c, skin_c
