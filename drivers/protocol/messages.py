"""Message types and payload layouts of the nirpad wire protocol, version 1.

Owns: every message's fields, their units and their byte layout (little-endian),
and the conversion between payload bytes and typed, frozen dataclasses. Does not own
framing (``framing``), timing or retries (``drivers.client``), or what any value
means for safety (``safety``). docs/protocol.md is the normative text; keep both in step.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Final

from drivers.protocol.crc import crc16_ccitt_false

__all__ = [
    "BOARD_MESSAGES",
    "HOST_MESSAGES",
    "MAX_CAL_POINTS",
    "MAX_CHANNELS",
    "MAX_LEASE_MS",
    "PROTOCOL_VERSION",
    "SERIAL_LEN",
    "Ack",
    "BoardFault",
    "CalibrationPoint",
    "ChannelCalibration",
    "ChannelSetpoint",
    "ChannelTelemetry",
    "ClearFaults",
    "Event",
    "EventKind",
    "Hello",
    "Info",
    "Message",
    "MessageDecodeError",
    "MsgType",
    "Nak",
    "NakCode",
    "OutputOff",
    "ResetReason",
    "SetOutput",
    "Telemetry",
    "TelemetryFlag",
    "calibration_bytes",
    "calibration_crc",
    "decode_payload",
    "encode_payload",
]

PROTOCOL_VERSION: Final = 1
MAX_CHANNELS: Final = 4
MAX_CAL_POINTS: Final = 16
SERIAL_LEN: Final = 16
MAX_LEASE_MS: Final = 500


class MessageDecodeError(ValueError):
    """A payload does not match the layout of its message type."""


class MsgType(IntEnum):
    HELLO = 0x01
    INFO = 0x02
    SET_OUTPUT = 0x10
    OUTPUT_OFF = 0x11
    CLEAR_FAULTS = 0x12
    ACK = 0x20
    NAK = 0x21
    TELEMETRY = 0x30
    EVENT = 0x31


class NakCode(IntEnum):
    BAD_VERSION = 1
    BAD_PAYLOAD = 2
    UNKNOWN_TYPE = 3
    OVER_LIMIT = 4
    NO_CONTACT = 5
    FAULT_ACTIVE = 6
    BAD_CHANNEL = 7
    LEASE_TOO_LONG = 8
    RAIL_OFF = 9


class EventKind(IntEnum):
    BUTTON_DOWN = 1
    BUTTON_UP = 2
    BOARD_RESET = 3
    BOARD_FAULT = 4
    LEASE_EXPIRED = 5
    MAX_ON_TIME = 6


class ResetReason(IntEnum):
    POWER_ON = 1
    BROWNOUT = 2
    WATCHDOG = 3


class BoardFault(IntFlag):
    """Board-side fault flags, as carried in TELEMETRY and EVENT(BOARD_FAULT).detail."""

    NONE = 0
    SKIN_OVERTEMP = 0x0001
    BOARD_OVERTEMP = 0x0002
    CURRENT_LIMIT = 0x0004
    MAX_ON_TIME = 0x0008
    LED_OPEN = 0x0010
    LED_SHORT = 0x0020
    SENSOR_FAULT = 0x0040
    SUPPLY_LOW = 0x0080


class TelemetryFlag(IntFlag):
    NONE = 0
    OUTPUT_ON = 0x01
    CONTACT = 0x02
    BUTTON = 0x04
    RAIL_ENABLED = 0x08


# ---------------------------------------------------------------- host -> board


@dataclass(frozen=True, slots=True)
class Hello:
    protocol_version: int = PROTOCOL_VERSION


@dataclass(frozen=True, slots=True)
class ChannelSetpoint:
    """One channel's absolute setpoint. ``pulse_hz == 0`` means continuous wave."""

    channel: int
    current_ma: float
    pulse_hz: int = 0
    duty_pct: int = 100


@dataclass(frozen=True, slots=True)
class SetOutput:
    """Absolute, idempotent output command. Channels not listed are off."""

    lease_ms: int
    channels: tuple[ChannelSetpoint, ...]


@dataclass(frozen=True, slots=True)
class OutputOff:
    pass


@dataclass(frozen=True, slots=True)
class ClearFaults:
    pass


# ---------------------------------------------------------------- board -> host


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    current_ma: float
    irradiance_mw_cm2: float


@dataclass(frozen=True, slots=True)
class ChannelCalibration:
    wavelength_nm: int
    max_current_ma: float
    points: tuple[CalibrationPoint, ...]


@dataclass(frozen=True, slots=True)
class Info:
    echo_seq: int
    protocol_version: int
    firmware_version: tuple[int, int, int]
    simulator: bool
    time_scale: float
    serial: str
    calibration: tuple[ChannelCalibration, ...]
    calibration_crc: int


@dataclass(frozen=True, slots=True)
class Ack:
    echo_seq: int


@dataclass(frozen=True, slots=True)
class Nak:
    echo_seq: int
    code: NakCode


@dataclass(frozen=True, slots=True)
class ChannelTelemetry:
    """Measured drive current (peak, while the PWM is on) and the PWM state."""

    current_ma: float
    pulse_hz: int
    duty_pct: int


@dataclass(frozen=True, slots=True)
class Telemetry:
    uptime_ms: int
    flags: TelemetryFlag
    faults: BoardFault
    skin_a_c: float
    skin_b_c: float
    board_c: float
    supply_mv: int
    lease_remaining_ms: int
    channels: tuple[ChannelTelemetry, ...]

    @property
    def output_on(self) -> bool:
        return TelemetryFlag.OUTPUT_ON in self.flags

    @property
    def contact(self) -> bool:
        return TelemetryFlag.CONTACT in self.flags

    @property
    def button(self) -> bool:
        return TelemetryFlag.BUTTON in self.flags

    @property
    def rail_enabled(self) -> bool:
        return TelemetryFlag.RAIL_ENABLED in self.flags


@dataclass(frozen=True, slots=True)
class Event:
    uptime_ms: int
    kind: EventKind
    detail: int = 0


Message = Hello | SetOutput | OutputOff | ClearFaults | Info | Ack | Nak | Telemetry | Event

HOST_MESSAGES: Final = (Hello, SetOutput, OutputOff, ClearFaults)
BOARD_MESSAGES: Final = (Info, Ack, Nak, Telemetry, Event)

# ---------------------------------------------------------------- scaling helpers


def _milli(value_x10: int) -> float:
    return value_x10 / 10.0


def _u16(value: float, scale: float, name: str) -> int:
    raw = round(value * scale)
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"{name}={value} does not fit the wire format")
    return raw


def _i16(value: float, scale: float, name: str) -> int:
    raw = round(value * scale)
    if not -0x8000 <= raw <= 0x7FFF:
        raise ValueError(f"{name}={value} does not fit the wire format")
    return raw


# ---------------------------------------------------------------- encoding


def calibration_bytes(calibration: tuple[ChannelCalibration, ...]) -> bytes:
    """The calibration table as it appears in INFO; its CRC covers exactly these bytes."""
    out = bytearray([len(calibration)])
    for cal in calibration:
        out += struct.pack(
            "<HHB",
            cal.wavelength_nm,
            _u16(cal.max_current_ma, 10, "max_current_ma"),
            len(cal.points),
        )
        for point in cal.points:
            out += struct.pack(
                "<HH",
                _u16(point.current_ma, 10, "current_ma"),
                _u16(point.irradiance_mw_cm2, 100, "irradiance_mw_cm2"),
            )
    return bytes(out)


def calibration_crc(calibration: tuple[ChannelCalibration, ...]) -> int:
    return crc16_ccitt_false(calibration_bytes(calibration))


def _encode_info(msg: Info) -> bytes:
    serial = msg.serial.encode("ascii")[:SERIAL_LEN].ljust(SERIAL_LEN, b"\0")
    head = struct.pack(
        "<HBBBBBH",
        msg.echo_seq,
        msg.protocol_version,
        *msg.firmware_version,
        1 if msg.simulator else 0,
        _u16(msg.time_scale, 100, "time_scale"),
    )
    tail = struct.pack("<H", msg.calibration_crc)
    return head + serial + calibration_bytes(msg.calibration) + tail


def _encode_set_output(msg: SetOutput) -> bytes:
    out = bytearray(struct.pack("<HB", msg.lease_ms, len(msg.channels)))
    for sp in msg.channels:
        out += struct.pack(
            "<BHHB", sp.channel, _u16(sp.current_ma, 10, "current_ma"), sp.pulse_hz, sp.duty_pct
        )
    return bytes(out)


def _encode_telemetry(msg: Telemetry) -> bytes:
    out = bytearray(
        struct.pack(
            "<IBHhhhHHB",
            msg.uptime_ms & 0xFFFFFFFF,
            int(msg.flags),
            int(msg.faults),
            _i16(msg.skin_a_c, 100, "skin_a_c"),
            _i16(msg.skin_b_c, 100, "skin_b_c"),
            _i16(msg.board_c, 100, "board_c"),
            msg.supply_mv,
            msg.lease_remaining_ms,
            len(msg.channels),
        )
    )
    for ch in msg.channels:
        out += struct.pack("<HHB", _u16(ch.current_ma, 10, "current_ma"), ch.pulse_hz, ch.duty_pct)
    return bytes(out)


def encode_payload(msg: Message) -> tuple[MsgType, bytes]:
    """Return the message type and payload bytes of ``msg``."""
    match msg:
        case Hello():
            return MsgType.HELLO, struct.pack("<B", msg.protocol_version)
        case SetOutput():
            return MsgType.SET_OUTPUT, _encode_set_output(msg)
        case OutputOff():
            return MsgType.OUTPUT_OFF, b""
        case ClearFaults():
            return MsgType.CLEAR_FAULTS, b""
        case Info():
            return MsgType.INFO, _encode_info(msg)
        case Ack():
            return MsgType.ACK, struct.pack("<H", msg.echo_seq)
        case Nak():
            return MsgType.NAK, struct.pack("<HB", msg.echo_seq, int(msg.code))
        case Telemetry():
            return MsgType.TELEMETRY, _encode_telemetry(msg)
        case Event():
            return MsgType.EVENT, struct.pack(
                "<IBH", msg.uptime_ms & 0xFFFFFFFF, int(msg.kind), msg.detail
            )
    raise TypeError(f"not a protocol message: {msg!r}")  # pragma: no cover


# ---------------------------------------------------------------- decoding


class _Reader:
    """Consumes a payload front to back; every short read is a MessageDecodeError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        size = struct.calcsize(fmt)
        if self._pos + size > len(self._data):
            raise MessageDecodeError("payload too short")
        values = struct.unpack_from(fmt, self._data, self._pos)
        self._pos += size
        return values

    def raw(self, size: int) -> bytes:
        if self._pos + size > len(self._data):
            raise MessageDecodeError("payload too short")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    @property
    def pos(self) -> int:
        return self._pos

    def done(self) -> None:
        if self._pos != len(self._data):
            raise MessageDecodeError("payload has trailing bytes")


def _count(value: int, limit: int, name: str) -> int:
    if value > limit:
        raise MessageDecodeError(f"{name} {value} exceeds {limit}")
    return value


def _decode_calibration(reader: _Reader) -> tuple[ChannelCalibration, ...]:
    (count,) = reader.take("<B")
    channels = []
    for _ in range(_count(count, MAX_CHANNELS, "channel count")):
        wavelength, max_x10, n_points = reader.take("<HHB")
        points = tuple(
            CalibrationPoint(_milli(cur), irr / 100.0)
            for cur, irr in (
                reader.take("<HH") for _ in range(_count(n_points, MAX_CAL_POINTS, "points"))
            )
        )
        channels.append(ChannelCalibration(wavelength, _milli(max_x10), points))
    return tuple(channels)


def _decode_info(reader: _Reader) -> Info:
    echo, version, major, minor, patch, flags, scale_x100 = reader.take("<HBBBBBH")
    serial = reader.raw(SERIAL_LEN).rstrip(b"\0")
    try:
        serial_text = serial.decode("ascii")
    except UnicodeDecodeError as exc:
        raise MessageDecodeError("serial number is not ASCII") from exc
    calibration = _decode_calibration(reader)
    (crc,) = reader.take("<H")
    return Info(
        echo,
        version,
        (major, minor, patch),
        bool(flags & 1),
        scale_x100 / 100.0,
        serial_text,
        calibration,
        crc,
    )


def _decode_set_output(reader: _Reader) -> SetOutput:
    lease_ms, count = reader.take("<HB")
    channels = tuple(
        ChannelSetpoint(ch, _milli(cur), hz, duty)
        for ch, cur, hz, duty in (
            reader.take("<BHHB") for _ in range(_count(count, MAX_CHANNELS, "channel count"))
        )
    )
    return SetOutput(lease_ms, channels)


def _decode_telemetry(reader: _Reader) -> Telemetry:
    up, flags, faults, skin_a, skin_b, board, supply, lease, count = reader.take("<IBHhhhHHB")
    channels = tuple(
        ChannelTelemetry(_milli(cur), hz, duty)
        for cur, hz, duty in (
            reader.take("<HHB") for _ in range(_count(count, MAX_CHANNELS, "channel count"))
        )
    )
    return Telemetry(
        up,
        TelemetryFlag(flags & 0x0F),  # reserved flag bits are ignored
        BoardFault(faults),  # reserved fault bits are kept: an unknown fault is still a fault
        skin_a / 100.0,
        skin_b / 100.0,
        board / 100.0,
        supply,
        lease,
        channels,
    )


def _enum(cls: type[IntEnum], value: int) -> IntEnum:
    try:
        return cls(value)
    except ValueError as exc:
        raise MessageDecodeError(f"unknown {cls.__name__} {value}") from exc


def decode_payload(msg_type: int, payload: bytes) -> Message:
    """Parse ``payload`` as ``msg_type``; raise MessageDecodeError on any mismatch."""
    reader = _Reader(payload)
    kind = _enum(MsgType, msg_type)
    msg: Message
    if kind is MsgType.HELLO:
        msg = Hello(reader.take("<B")[0])
    elif kind is MsgType.INFO:
        msg = _decode_info(reader)
    elif kind is MsgType.SET_OUTPUT:
        msg = _decode_set_output(reader)
    elif kind is MsgType.OUTPUT_OFF:
        msg = OutputOff()
    elif kind is MsgType.CLEAR_FAULTS:
        msg = ClearFaults()
    elif kind is MsgType.ACK:
        msg = Ack(reader.take("<H")[0])
    elif kind is MsgType.NAK:
        echo, code = reader.take("<HB")
        msg = Nak(echo, NakCode(_enum(NakCode, code)))
    elif kind is MsgType.TELEMETRY:
        msg = _decode_telemetry(reader)
    else:
        up, ev, detail = reader.take("<IBH")
        msg = Event(up, EventKind(_enum(EventKind, ev)), detail)
    reader.done()
    return msg
