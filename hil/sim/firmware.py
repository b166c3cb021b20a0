"""The simulated board's firmware logic: commands, lease, latched faults, on-time.

Owns: the answer to each host command (INFO, ACK or NAK with its code), the
commanded setpoints, the lease deadline, the maximum continuous on-time and the
latched board-fault flags, and the protection thresholds the host cannot override.
Does not own time keeping, physics, sensors or bytes: the board (``board.py``) calls
in with the time and the current sensor readings, and sends what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, NamedTuple

from drivers.protocol import (
    MAX_LEASE_MS,
    PROTOCOL_VERSION,
    Ack,
    BoardFault,
    ChannelCalibration,
    ChannelSetpoint,
    ClearFaults,
    Hello,
    Info,
    Message,
    Nak,
    NakCode,
    OutputOff,
    SetOutput,
    calibration_crc,
)

FIRMWARE_VERSION: Final = (1, 0, 0)
SKIN_CUTOFF_C: Final = 43.0
BOARD_CUTOFF_C: Final = 70.0
SENSOR_MIN_C: Final = -20.0  # a reading outside this range is an open or shorted NTC
SENSOR_MAX_C: Final = 125.0
MAX_ON_TIME_S: Final = 35 * 60.0  # of board (physics) time
MAX_PULSE_HZ: Final = 1000
_NO_FAULT: Final = BoardFault.NONE
LATCHING: Final = (
    BoardFault.SKIN_OVERTEMP
    | BoardFault.BOARD_OVERTEMP
    | BoardFault.SENSOR_FAULT
    | BoardFault.MAX_ON_TIME
)
_LATCHING_BITS: Final = int(LATCHING)  # int(): an IntFlag's ``.value`` runs Python code


class Readings(NamedTuple):
    """One sample of the three NTCs, as the firmware's ADC sees them (°C).

    A NamedTuple rather than a frozen dataclass: one is made every telemetry period, and
    a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) costs twice as much.
    """

    skin_a_c: float
    skin_b_c: float
    board_c: float


@dataclass(frozen=True, slots=True)
class BoardStatus:
    """What the firmware knows about the hardware when it handles a command."""

    contact: bool
    rail_enabled: bool
    causes: BoardFault  # fault conditions present right now (from fault_causes)


def fault_causes(readings: Readings) -> BoardFault:
    """The latching fault conditions that the readings show right now."""
    skin_a, skin_b, board = readings
    if (
        SENSOR_MIN_C <= skin_a < SKIN_CUTOFF_C
        and SENSOR_MIN_C <= skin_b < SKIN_CUTOFF_C
        and SENSOR_MIN_C <= board < BOARD_CUTOFF_C
    ):
        return _NO_FAULT  # every sensor in range and below its cutoff (nearly every sample)
    causes = 0
    a_ok = SENSOR_MIN_C <= skin_a <= SENSOR_MAX_C
    b_ok = SENSOR_MIN_C <= skin_b <= SENSOR_MAX_C
    board_ok = SENSOR_MIN_C <= board <= SENSOR_MAX_C
    if not (a_ok and b_ok and board_ok):
        causes |= BoardFault.SENSOR_FAULT.value
    if (a_ok and skin_a >= SKIN_CUTOFF_C) or (b_ok and skin_b >= SKIN_CUTOFF_C):
        causes |= BoardFault.SKIN_OVERTEMP.value
    if board_ok and board >= BOARD_CUTOFF_C:
        causes |= BoardFault.BOARD_OVERTEMP.value
    return _NO_FAULT if causes == 0 else BoardFault(causes)


def _channel(sp: ChannelSetpoint) -> int:
    return sp.channel


class Firmware:
    """Command handling and the board's own protections. Outputs start off."""

    def __init__(
        self,
        calibration: tuple[ChannelCalibration, ...],
        time_scale: float,
        serial: str,
        info_claim: tuple[bool, float] | None = None,
    ) -> None:
        self.calibration = calibration
        self.time_scale = time_scale
        # what INFO says (simulator flag, time scale): the truth unless a test makes it lie
        self.info_claim = (True, time_scale) if info_claim is None else info_claim
        self.serial = serial
        self.setpoints: tuple[ChannelSetpoint, ...] = ()
        self.lease_deadline_s: float | None = None
        self.on_since_s: float | None = None
        self.latched = BoardFault.NONE
        # the last SET_OUTPUT checked: (message, its NAK code or None, its active setpoints)
        self._checked: tuple[SetOutput | None, NakCode | None, tuple[ChannelSetpoint, ...]] = (
            None,
            None,
            (),
        )

    @property
    def output_on(self) -> bool:
        return bool(self.setpoints)

    def info(self, echo_seq: int) -> Info:
        return Info(
            echo_seq=echo_seq,
            protocol_version=PROTOCOL_VERSION,
            firmware_version=FIRMWARE_VERSION,
            simulator=self.info_claim[0],
            time_scale=self.info_claim[1],
            serial=self.serial,
            calibration=self.calibration,
            calibration_crc=calibration_crc(self.calibration),
        )

    def handle(self, msg: Message, seq: int, now_s: float, status: BoardStatus) -> Message:
        """The reply to one host command. Retries of a seq are simply applied again."""
        if isinstance(msg, SetOutput):  # the command of every tick first
            code = self._set_output(msg, now_s, status)
            return Ack(seq) if code is None else Nak(seq, code)
        if isinstance(msg, Hello):
            if msg.protocol_version != PROTOCOL_VERSION:
                return Nak(seq, NakCode.BAD_VERSION)
            return self.info(seq)
        if isinstance(msg, OutputOff):
            self.turn_off()
            return Ack(seq)
        if isinstance(msg, ClearFaults):
            if status.causes:
                return Nak(seq, NakCode.FAULT_ACTIVE)
            self.latched = BoardFault.NONE
            return Ack(seq)
        return Nak(seq, NakCode.UNKNOWN_TYPE)

    def _set_output(self, msg: SetOutput, now_s: float, status: BoardStatus) -> NakCode | None:
        checked = self._checked
        if checked[0] is msg:  # the same (shared, frozen) command as last time: a renewal
            code, active = checked[1], checked[2]
        else:
            code = self._validate(msg)
            active = tuple(sorted((sp for sp in msg.channels if sp.current_ma > 0), key=_channel))
            self._checked = (msg, code, active)
        if code is not None:
            return code
        if not active:
            self.turn_off()
            return None
        if self.latched or status.causes:
            return NakCode.FAULT_ACTIVE
        if not status.rail_enabled:
            return NakCode.RAIL_OFF
        if not status.contact:
            return NakCode.NO_CONTACT
        if self.on_since_s is None:
            self.on_since_s = now_s
        self.setpoints = active
        self.lease_deadline_s = now_s + msg.lease_ms / 1000.0
        return None

    def _validate(self, msg: SetOutput) -> NakCode | None:
        if msg.lease_ms > MAX_LEASE_MS:
            return NakCode.LEASE_TOO_LONG
        if msg.lease_ms == 0:
            return NakCode.BAD_PAYLOAD
        channels = [sp.channel for sp in msg.channels]
        if any(not 0 <= ch < len(self.calibration) for ch in channels):
            return NakCode.BAD_CHANNEL
        if len(set(channels)) != len(channels):
            return NakCode.BAD_PAYLOAD
        # every channel's pulsing is checked before any current (docs/protocol.md §4.3)
        for sp in msg.channels:
            if not 1 <= sp.duty_pct <= 100 or sp.pulse_hz > MAX_PULSE_HZ:
                return NakCode.BAD_PAYLOAD
            if sp.pulse_hz == 0 and sp.duty_pct != 100:
                return NakCode.BAD_PAYLOAD
        for sp in msg.channels:
            if sp.current_ma > self.calibration[sp.channel].max_current_ma:
                return NakCode.OVER_LIMIT
        return None

    def turn_off(self) -> None:
        self.setpoints = ()
        self.lease_deadline_s = None
        self.on_since_s = None

    def latch(self, causes: BoardFault) -> BoardFault:
        """Latch ``causes``; return the flags that were not latched before."""
        latching = int(causes) & _LATCHING_BITS
        new = latching & ~int(self.latched)
        if not new:
            return _NO_FAULT
        self.latched = BoardFault(int(self.latched) | latching)
        return BoardFault(new)

    def max_on_deadline_s(self) -> float | None:
        if self.on_since_s is None:
            return None
        return self.on_since_s + MAX_ON_TIME_S / self.time_scale

    def next_deadline_s(self) -> float | None:
        lease_s, on_since_s = self.lease_deadline_s, self.on_since_s
        if on_since_s is None:
            return lease_s
        max_on_s = on_since_s + MAX_ON_TIME_S / self.time_scale
        return max_on_s if lease_s is None or max_on_s < lease_s else lease_s

    def lease_remaining_ms(self, now_s: float) -> int:
        if self.lease_deadline_s is None:
            return 0
        return max(0, min(0xFFFF, round((self.lease_deadline_s - now_s) * 1000.0)))
