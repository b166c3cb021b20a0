"""The supervisor: judges every telemetry frame against the limits and the command.

Owns: the per-frame checks and their fault codes (temperatures, sensors, rise rate,
irradiance mismatch, measured irradiance over the hard maximum, stuck-on output, board
fault flags, stale telemetry), lost contact as a pause signal, the warnings, and the
fault latch with its acknowledgement rule (only once the cause has cleared). Pure logic
on an injected clock, no I/O.
Does not own: acting on a verdict (turning the output off and cutting the rail is
``core``/``interlock``), recording faults (``ledger``), or the limit values
(``safety.limits``; the settings the table leaves open are documented in
``SupervisorSettings``), or the pure temperature checks (``supervisor_checks``).

``CommandedOutput.irradiance_mw_cm2`` is the *peak* irradiance the board is driven to
(ramp included), compared with the measured peak current through the calibration.
Whatever was commanded, the measured peak of each channel is also held against the hard
maximum, and the channels together at their duty (the larger of the commanded and the
reported duty) against the combined maximum, each with the measurement allowance of
``SupervisorSettings`` and the mismatch's persistence: ``irradiance_over_limit``.

Findings while a fault is latched ("secondary" findings: the board still reporting its
own latched fault, telemetry still stale) recur on every frame or tick. Each is logged
once per latch, and again only when its text changes beyond its figures (other board
flags, another sensor), at most ``SECONDARY_LOG_MAX`` lines per latch; every one is
counted (``also_seen``, shown in the status) and the counts are logged once at the
acknowledgement.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

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
    "SECONDARY_LOG_MAX",
    "CommandedOutput",
    "Supervisor",
    "SupervisorSettings",
    "Verdict",
]

log = logging.getLogger(__name__)

SECONDARY_LOG_MAX = 16
"""Secondary findings logged per latch at most (each distinct one once); the rest counted."""
_FIGURES = re.compile(r"\d+(?:\.\d+)?")


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
    """One frame's judgement. ``fault`` is the latched fault, if any."""

    fault: FaultCode | None = None
    message: str = ""
    warnings: tuple[WarningCode, ...] = ()
    contact: bool = False

    @property
    def ok(self) -> bool:
        return self.fault is None


class Supervisor:
    """Checks each telemetry frame; latches the first fault until acknowledged."""

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
        self._rise = RiseTracker(self._settings.rise_window_s, self._settings.rise_bucket_s)
        self._latched: Verdict | None = None
        self._present: frozenset[FaultCode] = frozenset()
        self._last_rx_s: float | None = None
        self._last_contact = False
        self._last_cmd: CommandedOutput | None = None
        self._before = OFF
        self._mismatch_since_s: float | None = None
        self._over_since_s: float | None = None
        allowance = 1.0 + self._settings.irradiance_allowance_fraction
        self._channel_over_mw_cm2 = limits.irradiance_max_mw_cm2 * allowance
        # the combined limit × 100: the sum of peak × duty in % is compared without dividing
        self._combined_over_x100 = limits.combined_irradiance_max_mw_cm2 * allowance * 100.0
        self._clear_verdicts: dict[tuple[tuple[WarningCode, ...], bool], Verdict] = {}
        self._also_seen: dict[FaultCode, int] = {}
        self._also_last: dict[FaultCode, str] = {}  # the detail last seen, per code
        self._also_logged: set[tuple[FaultCode, str]] = set()  # (code, detail's shape)

    # ------------------------------------------------------------ public API

    @property
    def latched(self) -> Verdict | None:
        return self._latched

    @property
    def also_seen(self) -> dict[FaultCode, int]:
        """How often each other finding was found while the current fault is latched."""
        return self._also_seen

    @property
    def skin_stop_c(self) -> float:
        return self._skin_stop_c

    @property
    def skin_warn_c(self) -> float:
        return min(self._limits.skin_temp_warn_c, self._skin_stop_c - 1.0)

    def set_skin_stop_c(self, stop_c: float | None) -> None:
        """A profile's lower skin stop; None restores the limit. Never loosens it."""
        if stop_c is not None and not math.isfinite(stop_c):
            raise ValueError(f"skin stop must be a finite temperature, got {stop_c}")
        hard_c = self._limits.skin_temp_stop_c
        self._skin_stop_c = hard_c if stop_c is None else min(stop_c, hard_c)

    def watch_from(self, now_s: float | None) -> None:
        """Arm the stale-telemetry watch as if a frame arrived at ``now_s``; None disarms."""
        self._last_rx_s = now_s

    def check(self, telemetry: Telemetry, commanded: CommandedOutput) -> Verdict:
        """Judge one frame, on arrival, against ``commanded``."""
        now_s = self._clock()
        self._last_rx_s = now_s
        self._last_contact = telemetry.contact
        self._track_command(commanded)
        findings = [
            *self._output_findings(telemetry, commanded, now_s),
            *self._temperature_findings(telemetry),
            *self._rise_findings(telemetry, commanded, now_s),
            *self._over_limit_findings(telemetry, commanded, now_s),
            *self._mismatch_findings(telemetry, commanded, now_s),
        ]
        self._present = frozenset(code for code, _ in findings)
        if telemetry.faults and not telemetry.faults & ~CLEARED_ONLY_BY_ACK:
            # a flag the board keeps until CLEAR_FAULTS, with no cause left to see (its
            # output is already off): the acknowledgement is what clears it, so it must
            # not block the acknowledgement (docs/protocol.md §4.4)
            self._present = self._present - {FaultCode.BOARD_FAULT}
        if findings:
            self.latch(*findings[0])
        warnings = self._warnings(telemetry, commanded)
        return self._verdict(warnings, telemetry.contact)

    def check_stale(self, now_s: float) -> Verdict:
        """TELEMETRY_STALE when the watch is armed and no frame came for too long."""
        if self._is_stale(now_s):
            self._present = self._present | {FaultCode.TELEMETRY_STALE}
            self.latch(FaultCode.TELEMETRY_STALE, f"no telemetry for {self._age_ms(now_s)} ms")
        return self._verdict((), self._last_contact)

    def latch(self, code: FaultCode, message: str) -> Verdict:
        """Latch a fault (also one found elsewhere); the first latched fault is kept."""
        if self._latched is None:
            log.warning("fault latched: %s: %s", code, message)
            self._latched = Verdict(code, message)
        elif self._latched.fault is not code:
            self._also(self._latched.fault, code, message)
        return self._latched

    def _also(self, latched: FaultCode | None, code: FaultCode, message: str) -> None:
        """Count a secondary finding; log it only if its shape is new in this latch."""
        self._also_seen[code] = self._also_seen.get(code, 0) + 1
        if self._also_last.get(code) == message:
            return  # the same text as last time (a flag reported in every frame)
        self._also_last[code] = message
        key = (code, _FIGURES.sub("#", message))
        if key in self._also_logged or len(self._also_logged) >= SECONDARY_LOG_MAX:
            return
        self._also_logged.add(key)
        log.info("while %s is latched, also: %s: %s", latched, code, message)

    def acknowledge(self) -> str | None:
        """Clear the latch if its cause is gone; else return why not, for a person."""
        if self._latched is None:
            return None
        if self._last_rx_s is not None and self._is_stale(self._clock()):
            return "the pad is not reporting its state; check the cable"
        code = self._latched.fault
        if code in self._present:
            return f"the cause is still present: {code}"
        log.info("fault %s acknowledged%s", code, self._also_summary())
        self._latched = None
        self._also_seen = {}
        self._also_last.clear()
        self._also_logged.clear()
        self._mismatch_since_s = None
        self._over_since_s = None
        self._rise.reset()
        return None

    def _also_summary(self) -> str:
        if not self._also_seen:
            return ""
        counts = ", ".join(f"{c} {n} times" for c, n in sorted(self._also_seen.items()))
        return f"; while it was latched also seen: {counts}"

    # ------------------------------------------------------------ checks

    def _verdict(self, warnings: tuple[WarningCode, ...], contact: bool) -> Verdict:
        if self._latched is not None:
            return replace(self._latched, warnings=warnings, contact=contact)
        verdict = self._clear_verdicts.get((warnings, contact))
        if verdict is None:  # a Verdict is immutable: one per combination is enough
            verdict = self._clear_verdicts[warnings, contact] = Verdict(None, "", warnings, contact)
        return verdict

    def _age_ms(self, now_s: float) -> int:
        return round((now_s - (self._last_rx_s if self._last_rx_s is not None else now_s)) * 1000)

    def _is_stale(self, now_s: float) -> bool:
        last = self._last_rx_s
        return last is not None and now_s - last > self._limits.telemetry_stale_s

    def _track_command(self, commanded: CommandedOutput) -> None:
        if commanded is not self._last_cmd and commanded != self._last_cmd:
            self._before = self._last_cmd or OFF
            self._last_cmd = commanded

    def _in_grace(self, commanded: CommandedOutput, now_s: float) -> bool:
        return now_s - commanded.since_s <= self._settings.transition_grace_s

    def _output_findings(self, t: Telemetry, cmd: CommandedOutput, now_s: float) -> list[Finding]:
        if cmd.on:
            return []
        dark_ma = self._settings.dark_current_ma
        lit = [i for i, ch in enumerate(t.channels) if ch.current_ma > dark_ma]
        if not (t.output_on or lit):
            return []
        if self._before.on and self._in_grace(cmd, now_s):
            return []
        return [(FaultCode.STUCK_ON, f"output on with none commanded (channels lit: {lit})")]

    def _temperature_findings(self, t: Telemetry) -> list[Finding]:
        latched = self._latched.fault if self._latched is not None else None
        # a latched over-temperature clears only below a lower level (hysteresis)
        skin_stop_c = self.skin_warn_c if latched is FaultCode.SKIN_OVERTEMP else self._skin_stop_c
        board_stop_c = min(self._settings.board_stop_c, self._limits.board_temp_stop_c)
        if latched is FaultCode.BOARD_OVERTEMP:
            board_stop_c -= self._settings.board_clear_margin_c
        return [
            *temperature_findings(t, self._limits, self._settings, skin_stop_c, board_stop_c),
            *board_findings(t),
        ]

    def _rise_findings(self, t: Telemetry, cmd: CommandedOutput, now_s: float) -> list[Finding]:
        if not cmd.on:
            self._rise.reset()
            return []
        rate = self._rise.add(now_s, max(t.skin_a_c, t.skin_b_c))
        if rate is None or rate <= self._limits.temp_rise_max_c_per_min:
            return []
        return [(FaultCode.TEMP_RISE_RATE, f"skin rising {rate:.2f} °C/min")]

    def _mismatch_findings(self, t: Telemetry, cmd: CommandedOutput, now_s: float) -> list[Finding]:
        problem = self._mismatch(t, cmd) if cmd.on and t.contact else None
        if problem is None:
            self._mismatch_since_s = None
            return []
        if self._mismatch_since_s is None:
            self._mismatch_since_s = now_s
        if now_s - self._mismatch_since_s > self._limits.irradiance_mismatch_trip_s:
            return [(FaultCode.IRRADIANCE_MISMATCH, problem)]
        return []

    def _mismatch(self, t: Telemetry, cmd: CommandedOutput) -> str | None:
        tol = self._limits.irradiance_tolerance_fraction
        floor = self._settings.irradiance_floor_mw_cm2
        for channel in sorted(set(range(len(t.channels))) | set(cmd.irradiance_mw_cm2)):
            measured = self._measured_mw_cm2(t, channel)
            wanted = cmd.wanted_mw_cm2(channel)
            if abs(measured - wanted) > max(wanted * tol, floor):
                return f"channel {channel}: measured {measured:.2f} mW/cm², commanded {wanted:.2f}"
        return None

    def _over_limit_findings(
        self, t: Telemetry, cmd: CommandedOutput, now_s: float
    ) -> list[Finding]:
        problem = self._over_limit(t, cmd)
        if problem is None:
            self._over_since_s = None
            return []
        if self._over_since_s is None:
            self._over_since_s = now_s
        if now_s - self._over_since_s > self._limits.irradiance_mismatch_trip_s:
            return [(FaultCode.IRRADIANCE_OVER_LIMIT, problem)]
        return []

    def _over_limit(self, t: Telemetry, cmd: CommandedOutput) -> str | None:
        """Measured peak per channel, and the sum at duty, above the maximum + allowance.

        A CW channel (``pulse_hz`` 0) counts at full duty (docs/protocol.md §4.6).
        """
        commanded_duty_pct = cmd.duty_pct if cmd.on else 0
        combined_x100 = 0.0
        for channel, reported in enumerate(t.channels):
            if reported.current_ma <= 0.0:
                continue
            peak = self._measured_mw_cm2(t, channel)
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
        if channel >= len(t.channels):
            return 0.0
        current_ma = t.channels[channel].current_ma
        try:
            return self._calibration.irradiance_upper_bound_mw_cm2(channel, current_ma)
        except CalibrationError:  # a channel the table does not know
            return 0.0 if current_ma <= self._settings.dark_current_ma else math.inf

    def _warnings(self, t: Telemetry, cmd: CommandedOutput) -> tuple[WarningCode, ...]:
        warnings: list[WarningCode] = []
        if max(t.skin_a_c, t.skin_b_c) >= self.skin_warn_c:
            warnings.append(WarningCode.SKIN_TEMP_WARN)
        if cmd.on and not t.contact:
            warnings.append(WarningCode.CONTACT_LOST)
        return tuple(warnings)
