"""The status snapshot, as a function over the safety core's parts.

Owns: turning the last frame, the latch, the warnings, the link and the open (or last)
session into the frozen ``SafetySnapshot`` that status displays show, with measured
irradiance keyed by wavelength (over-estimated above the calibration table). Does not
own any of those figures.
"""

from __future__ import annotations

import math
from dataclasses import replace

from drivers.protocol import Telemetry
from safety.active_warnings import ActiveWarnings
from safety.calibration import Calibration, CalibrationError
from safety.core_events import LinkHealth, SafetySnapshot
from safety.core_session import ActiveSession
from safety.fault_latch import FaultLatch

__all__ = ["build_snapshot"]


def build_snapshot(
    tm: Telemetry | None,
    *,
    calibration: Calibration,
    faults: FaultLatch,
    warnings: ActiveWarnings,
    link: LinkHealth,
    rail_enabled: bool,
    self_test_passed: bool,
    session: ActiveSession | None,
    last_session: ActiveSession | None,
) -> SafetySnapshot:
    """Figures for status displays; the last session's stay until the next begins."""
    base = SafetySnapshot(
        session_active=session is not None,
        irradiance_mw_cm2=_measured_by_wavelength(tm, calibration),
        skin_temp_c=None if tm is None else max(tm.skin_a_c, tm.skin_b_c),
        board_temp_c=None if tm is None else tm.board_c,
        contact=None if tm is None else tm.contact,
        rail_enabled=rail_enabled,
        self_test_passed=self_test_passed,
        fault=faults.status,
        warnings=warnings.shown(),
        fault_also_seen=dict(faults.also_seen),
        link=link,
    )
    shown = session or last_session
    if shown is None:
        return base
    dose = shown.dose
    return replace(
        base,
        delivered_fluence_j_cm2=shown.by_wavelength(dose.delivered_j_cm2),
        planned_fluence_j_cm2=shown.by_wavelength(dose.planned_fluence_j_cm2),
        delivered_total_j_cm2=dose.delivered_total_j_cm2,
        planned_total_j_cm2=dose.planned_total_j_cm2,
        elapsed_s=dose.elapsed_s,
        remaining_s=dose.remaining_s if session is not None else 0.0,
    )


def _measured_by_wavelength(tm: Telemetry | None, calibration: Calibration) -> dict[int, float]:
    """Measured peak irradiance per wavelength (over-estimated above the table)."""
    if tm is None:
        return {}
    measured: dict[int, float] = {}
    pairs = zip(calibration.channels, tm.channels, strict=False)
    for index, (cal, channel) in enumerate(pairs):
        try:
            value = calibration.irradiance_upper_bound_mw_cm2(index, channel.current_ma)
        except CalibrationError:
            value = math.inf  # an unusable table: show "unknown, maybe high"
        measured[cal.wavelength_nm] = value
    return measured
