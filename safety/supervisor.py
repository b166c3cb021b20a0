"""The supervisor: judges every telemetry frame against the limits and the command.

Owns: the per-frame checks and their fault codes (temperatures, sensors, rise rate,
irradiance mismatch, measured irradiance over the hard maximum, stuck-on output, board
fault flags), the warnings, the persistence timers the checks need, and whether the
cause of a fault is still present. A pure check on an injected clock: telemetry and
what was commanded in, a ``Verdict`` out. It latches nothing and does no I/O.

Does not own: the latch (``fault_latch``), acting on a verdict (``core``,
``interlock``), stale telemetry (``board_watch``), the limit values (``limits``;
``SupervisorSettings`` documents the settings the table leaves open), or the pure
temperature checks (``supervisor_checks``). docs/architecture.md gives the measurement
rules (peak against the calibration, the combined limit at duty).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.protocol.messages import Telemetry
from safety.calibration import Calibration, CalibrationError
from safety.faults import FaultCode, WarningCode
from safety.limits import Limits
from safety.supervisor_checks import (
    CLEARED_ONLY_BY_ACK,
    Finding,
    RiseTracker,
    SupervisorSettings,
    board_findings,
    temperature_findings,
)

__all__ = [
    "OFF",
    "CommandedOutput",
    "Supervisor",
    "SupervisorSettings",
    "Verdict",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CommandedOutput:
    """What the host has commanded, as the supervisor must judge it.

    ``since_s`` is the clock time this command took effect (set anew on every change);
    ``duty_pct`` is the commanded PWM duty (100 for continuous wave).
    """

    on: bool
    irradiance_mw_cm2: dict[int, float] = field(default_factory=dict)
    since_s: float = -math.inf
    duty_pct: int = 100

    def wanted_mw_cm2(self, channel: int) -> float:
        return self.irradiance_mw_cm2.get(channel, 0.0) if self.on else 0.0


OFF = CommandedOutput(on=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One frame's judgement: its first finding (``fault``, ``message``), if any."""

    fault: FaultCode | None = None
    message: str = ""
    warnings: tuple[WarningCode, ...] = ()
    contact: bool = False

    @property
    def ok(self) -> bool:
        return self.fault is None


_NO_CODES: frozenset[FaultCode] = frozenset()
_WARNINGS: dict[tuple[bool, bool], tuple[WarningCode, ...]] = {
    (False, False): (),
    (True, False): (WarningCode.SKIN_TEMP_WARN,),
    (False, True): (WarningCode.CONTACT_LOST,),
    (True, True): (WarningCode.SKIN_TEMP_WARN, WarningCode.CONTACT_LOST),
}
"""The warnings of a frame by (skin warm, commanded on without contact): no tuple a frame."""


class Supervisor:
    """Checks each telemetry frame against the command; see the module notes."""

    def __init__(
        self,
        limits: Limits,
        clock: Callable[[], float],
        calibration: Calibration,
        settings: SupervisorSettings | None = None,
    ) -> None:
        self._limits = limits
        self._clock = clock
        self._calibration = calibration
        self._settings = settings or SupervisorSettings()
        self._skin_stop_c = limits.skin_temp_stop_c
        self._skin_warn_c = self._warn_below(self._skin_stop_c)
        self._rise = RiseTracker(self._settings.rise_window_s, self._settings.rise_bucket_s)
        self._present: frozenset[FaultCode] = frozenset()
        self._last_cmd: CommandedOutput | None = None
        self._before = OFF
        self._mismatch_since_s: float | None = None
        self._over_since_s: float | None = None
        allowance = 1.0 + self._settings.irradiance_allowance_fraction
        self._channel_over_mw_cm2 = limits.irradiance_max_mw_cm2 * allowance
        # the combined limit × 100: the sum of peak × duty in % is compared without dividing
        self._combined_over_x100 = limits.combined_irradiance_max_mw_cm2 * allowance * 100.0
        self._clear_verdicts: dict[tuple[tuple[WarningCode, ...], bool], Verdict] = {}

    # ------------------------------------------------------------ public API

    @property
    def skin_stop_c(self) -> float:
        return self._skin_stop_c

    @property
    def skin_warn_c(self) -> float:
        return self._skin_warn_c

    def _warn_below(self, skin_stop_c: float) -> float:
        """The warning level under ``skin_stop_c`` (worked out when the stop is set, not
        every frame)."""
        return min(self._limits.skin_temp_warn_c, skin_stop_c - 1.0)

    def set_skin_stop_c(self, stop_c: float | None) -> None:
        """A profile's lower skin stop; None restores the limit. Never loosens it."""
        if stop_c is not None and not math.isfinite(stop_c):
            raise ValueError(f"skin stop must be a finite temperature, got {stop_c}")
        hard_c = self._limits.skin_temp_stop_c
        self._skin_stop_c = hard_c if stop_c is None else min(stop_c, hard_c)
        self._skin_warn_c = self._warn_below(self._skin_stop_c)

    def check(
        self, telemetry: Telemetry, commanded: CommandedOutput, latched: FaultCode | None = None
    ) -> Verdict:
        """Judge one frame, on arrival, against ``commanded``.

        ``latched`` is the fault the latch holds: a latched over-temperature is judged
        against a lower level until it clears (hysteresis). The verdict names this
        frame's first finding; latching it is the caller's business.
        """
        now_s = self._clock()
        contact = telemetry.contact
        self._track_command(commanded)
        measured = [self._measured_mw_cm2(telemetry, ch) for ch in range(len(telemetry.channels))]
        findings = self._output_findings(telemetry, commanded, now_s)
        for more in (  # joined only when there is something to join (rarely)
            self._temperature_findings(telemetry, latched),
            self._rise_findings(telemetry, commanded, now_s),
            self._over_limit_findings(telemetry, commanded, measured, now_s),
            self._mismatch_findings(contact, commanded, measured, now_s),
        ):
            if more:
                findings = findings + more
        self._present = frozenset(code for code, _ in findings) if findings else _NO_CODES
        if telemetry.faults and not telemetry.faults & ~CLEARED_ONLY_BY_ACK:
            # a flag the board keeps until CLEAR_FAULTS, with no cause left to see (its
            # output is already off): the acknowledgement is what clears it, so it must
            # not block the acknowledgement (docs/protocol.md §4.4)
            self._present = self._present - {FaultCode.BOARD_FAULT}
        warnings = self._warnings(telemetry, commanded, contact)
        if findings:
            code, message = findings[0]
            return Verdict(code, message, warnings, contact)
        return self._clear_verdict(warnings, contact)

    def cause_present(self, code: FaultCode) -> str | None:
        """Why ``code`` may not be acknowledged yet (its cause is in the last frame), or None."""
        if code in self._present:
            return f"the cause is still present: {code}"
        return None

    def reset(self) -> None:
        """After an acknowledgement: the persistence timers and the rise window start anew."""
        self._mismatch_since_s = None
        self._over_since_s = None
        self._rise.reset()

    # ------------------------------------------------------------ checks

    def _clear_verdict(self, warnings: tuple[WarningCode, ...], contact: bool) -> Verdict:
        verdict = self._clear_verdicts.get((warnings, contact))
        if verdict is None:  # a Verdict is immutable: one per combination is enough
            verdict = self._clear_verdicts[warnings, contact] = Verdict(None, "", warnings, contact)
        return verdict

    def _track_command(self, commanded: CommandedOutput) -> None:
        if commanded is not self._last_cmd and commanded != self._last_cmd:
            self._before = self._last_cmd or OFF
            self._last_cmd = commanded

    def _in_grace(self, commanded: CommandedOutput, now_s: float) -> bool:
        return now_s - commanded.since_s <= self._settings.transition_grace_s

    def reports_light(self, telemetry: Telemetry) -> bool:
        """The board says it emits: output flagged on, or a channel above the dark current."""
        if telemetry.output_on:
            return True
        dark_ma = self._settings.dark_current_ma
        return any(channel.current_ma > dark_ma for channel in telemetry.channels)

    def _output_findings(self, t: Telemetry, cmd: CommandedOutput, now_s: float) -> list[Finding]:
        if cmd.on or not self.reports_light(t):
            return []
        if self._before.on and self._in_grace(cmd, now_s):
            return []
        dark_ma = self._settings.dark_current_ma
        lit = [i for i, ch in enumerate(t.channels) if ch.current_ma > dark_ma]
        return [(FaultCode.STUCK_ON, f"output on with none commanded (channels lit: {lit})")]

    def _temperature_findings(self, t: Telemetry, latched: FaultCode | None) -> list[Finding]:
        # a latched over-temperature clears only below a lower level (hysteresis)
        skin_stop_c = self.skin_warn_c if latched is FaultCode.SKIN_OVERTEMP else self._skin_stop_c
        board_stop_c = min(self._settings.board_stop_c, self._limits.board_temp_stop_c)
        if latched is FaultCode.BOARD_OVERTEMP:
            board_stop_c -= self._settings.board_clear_margin_c
        found = temperature_findings(t, self._limits, self._settings, skin_stop_c, board_stop_c)
        board = board_findings(t)
        return found + board if board else found

    def _rise_findings(self, t: Telemetry, cmd: CommandedOutput, now_s: float) -> list[Finding]:
        if not cmd.on:
            self._rise.reset()
            return []
        rate = self._rise.add(now_s, max(t.skin_a_c, t.skin_b_c))
        if rate is None or rate <= self._limits.temp_rise_max_c_per_min:
            return []
        return [(FaultCode.TEMP_RISE_RATE, f"skin rising {rate:.2f} °C/min")]

    def _mismatch_findings(
        self, contact: bool, cmd: CommandedOutput, measured: list[float], now_s: float
    ) -> list[Finding]:
        problem = self._mismatch(measured, cmd) if cmd.on and contact else None
        if problem is None:
            self._mismatch_since_s = None
            return []
        if self._mismatch_since_s is None:
            self._mismatch_since_s = now_s
        if now_s - self._mismatch_since_s > self._limits.irradiance_mismatch_trip_s:
            return [(FaultCode.IRRADIANCE_MISMATCH, problem)]
        return []

    def _mismatch(self, measured_mw_cm2: list[float], cmd: CommandedOutput) -> str | None:
        """Each channel reported or commanded: measured against wanted, within tolerance."""
        tol = self._limits.irradiance_tolerance_fraction
        floor = self._settings.irradiance_floor_mw_cm2
        reported = len(measured_mw_cm2)
        for channel in sorted(set(range(reported)) | set(cmd.irradiance_mw_cm2)):
            measured = measured_mw_cm2[channel] if channel < reported else 0.0
            wanted = cmd.wanted_mw_cm2(channel)
            if abs(measured - wanted) > max(wanted * tol, floor):
                return f"channel {channel}: measured {measured:.2f} mW/cm², commanded {wanted:.2f}"
        return None

    def _over_limit_findings(
        self, t: Telemetry, cmd: CommandedOutput, measured: list[float], now_s: float
    ) -> list[Finding]:
        problem = self._over_limit(t, cmd, measured)
        if problem is None:
            self._over_since_s = None
            return []
        if self._over_since_s is None:
            self._over_since_s = now_s
        if now_s - self._over_since_s > self._limits.irradiance_mismatch_trip_s:
            return [(FaultCode.IRRADIANCE_OVER_LIMIT, problem)]
        return []

    def _over_limit(
        self, t: Telemetry, cmd: CommandedOutput, measured_mw_cm2: list[float]
    ) -> str | None:
        """Measured peak per channel, and the sum at duty, above the maximum + allowance.

        A CW channel (``pulse_hz`` 0) counts at full duty (docs/protocol.md §4.6).
        """
        commanded_duty_pct = cmd.duty_pct if cmd.on else 0
        combined_x100 = 0.0
        for channel, reported in enumerate(t.channels):
            if reported.current_ma <= 0.0:
                continue
            peak = measured_mw_cm2[channel]
            if peak > self._channel_over_mw_cm2:
                return (
                    f"channel {channel}: measured {peak:.2f} mW/cm², above the maximum "
                    f"{self._limits.irradiance_max_mw_cm2:g} mW/cm²"
                )
            reported_duty_pct = reported.duty_pct if reported.pulse_hz else 100
            combined_x100 += peak * max(commanded_duty_pct, reported_duty_pct)
        if combined_x100 > self._combined_over_x100:
            return (
                f"channels together: measured {combined_x100 / 100.0:.2f} mW/cm² at their "
                f"duty, above the maximum {self._limits.combined_irradiance_max_mw_cm2:g} mW/cm²"
            )
        return None

    def _measured_mw_cm2(self, t: Telemetry, channel: int) -> float:
        current_ma = t.channels[channel].current_ma
        try:
            return self._calibration.irradiance_upper_bound_mw_cm2(channel, current_ma)
        except CalibrationError:  # a channel the table does not know
            return 0.0 if current_ma <= self._settings.dark_current_ma else math.inf

    def _warnings(
        self, t: Telemetry, cmd: CommandedOutput, contact: bool
    ) -> tuple[WarningCode, ...]:
        warm = max(t.skin_a_c, t.skin_b_c) >= self._skin_warn_c
        return _WARNINGS[warm, cmd.on and not contact]
