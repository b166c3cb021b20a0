"""What the LED drivers of the simulated board actually do, given what they are told.

Owns: turning the effective setpoints (the firmware's, or the frozen ones of a
stuck-on driver), the power rail, a driver whose current runs high or low (the
``current_gain`` fault: the current that flows, and that the board measures and reports,
is the setpoint times 1 + percent/100) and the LED-string faults into the current that
flows, the light that leaves the pad (average, so pulsed output counts peak x duty)
and the electrical power, per channel. Does not own the decision to drive: that is
the firmware's (``firmware.py``) or the stuck-on fault's (``board.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from drivers.protocol import BoardFault, ChannelSetpoint, ChannelTelemetry
from hil.sim.faults import ActiveInjections, FaultKind
from hil.sim.physics import PAD_AREA_CM2, SKIN_ABSORBED_FRACTION, Optics, electrical_power_w


@dataclass(frozen=True, slots=True)
class ChannelDrive:
    current_ma: float  # measured string current (peak, while the PWM is on)
    pulse_hz: int
    duty_pct: int
    irradiance_mw_cm2: float  # average emitted irradiance at the pad surface
    electrical_w: float  # average electrical power into the string
    flags: BoardFault  # LED_OPEN / LED_SHORT, shown while the string is driven

    def telemetry(self) -> ChannelTelemetry:
        return ChannelTelemetry(round(self.current_ma, 1), self.pulse_hz, self.duty_pct)


OFF: Final = ChannelDrive(0.0, 0, 0, 0.0, 0.0, BoardFault.NONE)


SUPPLY_MV: Final = 12_000
SUPPLY_DROOP_MV_PER_A: Final = 150.0


@dataclass(frozen=True, slots=True)
class DriveState:
    driver_enabled: bool
    channels: tuple[ChannelDrive, ...]
    board_heat_w: float  # electrical power that did not leave as light
    skin_heat_w: float  # light absorbed at the skin
    supply_mv: int  # the board supply, with a little droop under load
    telemetry: tuple[ChannelTelemetry, ...]  # what TELEMETRY reports per channel
    flags: BoardFault  # LED_OPEN / LED_SHORT of the driven strings

    @property
    def irradiance_mw_cm2(self) -> tuple[float, ...]:
        return tuple(ch.irradiance_mw_cm2 for ch in self.channels)


def compute_drive(
    setpoints: tuple[ChannelSetpoint, ...],
    rail_enabled: bool,
    injections: ActiveInjections,
    optics: Optics,
) -> DriveState:
    """The physical outputs for ``setpoints``; nothing flows while the rail is off."""
    by_channel = {sp.channel: sp for sp in setpoints} if rail_enabled else {}
    gain = injections.get(FaultKind.CURRENT_GAIN)
    factor = 1.0 if gain is None else 1.0 + gain.number("percent") / 100.0
    channels = tuple(
        _channel(ch, by_channel.get(ch), injections, optics, factor)
        for ch in range(len(optics.calibration))
    )
    optical_w = sum(ch.irradiance_mw_cm2 for ch in channels) * PAD_AREA_CM2 / 1000.0
    electrical_w = sum(ch.electrical_w for ch in channels)
    amps = sum(ch.current_ma for ch in channels) / 1000.0
    flags = BoardFault.NONE
    for ch in channels:
        flags |= ch.flags
    return DriveState(
        driver_enabled=bool(by_channel),
        channels=channels,
        board_heat_w=max(0.0, electrical_w - optical_w),
        skin_heat_w=optical_w * SKIN_ABSORBED_FRACTION,
        supply_mv=round(SUPPLY_MV - SUPPLY_DROOP_MV_PER_A * amps),
        telemetry=tuple(ch.telemetry() for ch in channels),
        flags=flags,
    )


def _channel(
    channel: int,
    sp: ChannelSetpoint | None,
    injections: ActiveInjections,
    optics: Optics,
    current_factor: float,
) -> ChannelDrive:
    if sp is None or sp.current_ma <= 0:
        return OFF
    duty = sp.duty_pct / 100.0 if sp.pulse_hz else 1.0
    current_ma = sp.current_ma * current_factor
    if injections.channel_has(FaultKind.LED_OPEN, channel):
        return ChannelDrive(0.0, sp.pulse_hz, sp.duty_pct, 0.0, 0.0, BoardFault.LED_OPEN)
    if injections.channel_has(FaultKind.LED_SHORT, channel):
        power_w = electrical_power_w(current_ma, duty, shorted=True)
        return ChannelDrive(
            current_ma, sp.pulse_hz, sp.duty_pct, 0.0, power_w, BoardFault.LED_SHORT
        )
    irradiance = optics.peak_irradiance_mw_cm2(channel, current_ma) * duty
    power_w = electrical_power_w(current_ma, duty, shorted=False)
    return ChannelDrive(current_ma, sp.pulse_hz, sp.duty_pct, irradiance, power_w, BoardFault.NONE)
