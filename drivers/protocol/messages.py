"""Message types and payload layouts of the nirpad wire protocol, version 1.

Owns: every message's fields, their units and their byte layout (little-endian),
and the conversion between payload bytes and typed, frozen dataclasses. Does not own
framing (``framing``), timing or retries (``drivers.client``), or what any value
means for safety (``safety``). docs/protocol.md is the normative text; keep both in step.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from functools import cache
from typing import Final, TypeVar

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
    "PayloadDecoder",
    "PayloadEncoder",
    "ResetReason",
    "SetOutput",
    "Telemetry",
    "TelemetryFlag",
    "calibration_bytes",
    "calibration_crc",
    "decode_payload",
    "encode_payload",
    "telemetry_channel_records",
    "telemetry_payload",
]

PROTOCOL_VERSION: Final = 1
MAX_CHANNELS: Final = 4
MAX_CAL_POINTS: Final = 16
SERIAL_LEN: Final = 16
MAX_LEASE_MS: Final = 500
SIM_TIME_SCALE_MIN: Final = 1.0
SIM_TIME_SCALE_MAX: Final = 600.0
"""The time scales a simulated board may run at (INFO ``time_scale``). A real board always
reports 1.00 with the simulator flag clear; the host decides which it expects."""


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


_OUTPUT_ON_BIT: Final = int(TelemetryFlag.OUTPUT_ON)
_CONTACT_BIT: Final = int(TelemetryFlag.CONTACT)
_BUTTON_BIT: Final = int(TelemetryFlag.BUTTON)
_RAIL_ENABLED_BIT: Final = int(TelemetryFlag.RAIL_ENABLED)
_TELEMETRY_HEAD: Final = struct.Struct("<IBHhhhHHB")
_TELEMETRY_CHANNEL: Final = struct.Struct("<HHB")
_COUNT: Final = struct.Struct("<B")
_TELEMETRY_HEAD_SIZE: Final = _TELEMETRY_HEAD.size
_TELEMETRY_HEAD_FIELDS: Final = struct.Struct("<IBHhhhHH")  # the head without the count


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

    # int(): ``flag in flags`` and ``&`` on an IntFlag run Python code; read every frame

    @property
    def output_on(self) -> bool:
        return int(self.flags) & _OUTPUT_ON_BIT != 0

    @property
    def contact(self) -> bool:
        return int(self.flags) & _CONTACT_BIT != 0

    @property
    def button(self) -> bool:
        return int(self.flags) & _BUTTON_BIT != 0

    @property
    def rail_enabled(self) -> bool:
        return int(self.flags) & _RAIL_ENABLED_BIT != 0


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
    return telemetry_payload(
        msg.uptime_ms,
        int(msg.flags),
        int(msg.faults),
        msg.skin_a_c,
        msg.skin_b_c,
        msg.board_c,
        msg.supply_mv,
        msg.lease_remaining_ms,
        b"",
    ) + telemetry_channel_records(msg.channels)  # the head first, as one layout did


def telemetry_channel_records(channels: tuple[ChannelTelemetry, ...]) -> bytes:
    """The channel count and records of a TELEMETRY payload (its tail)."""
    out = _COUNT.pack(len(channels))
    for ch in channels:
        out += _TELEMETRY_CHANNEL.pack(
            _u16(ch.current_ma, 10, "current_ma"), ch.pulse_hz, ch.duty_pct
        )
    return out


def telemetry_payload(
    uptime_ms: int,
    flags: int,
    faults: int,
    skin_a_c: float,
    skin_b_c: float,
    board_c: float,
    supply_mv: int,
    lease_remaining_ms: int,
    channel_records: bytes,
) -> bytes:
    """A TELEMETRY payload from its fields, without a ``Telemetry`` object: for a sender
    (the simulated board) that keeps the ``telemetry_channel_records`` of a steady output."""
    skin_a, skin_b, board = round(skin_a_c * 100), round(skin_b_c * 100), round(board_c * 100)
    if not -0x8000 <= skin_a <= 0x7FFF:
        _i16(skin_a_c, 100, "skin_a_c")
    if not -0x8000 <= skin_b <= 0x7FFF:
        _i16(skin_b_c, 100, "skin_b_c")
    if not -0x8000 <= board <= 0x7FFF:
        _i16(board_c, 100, "board_c")
    head = _TELEMETRY_HEAD_FIELDS.pack(
        uptime_ms & 0xFFFFFFFF, flags, faults, skin_a, skin_b, board, supply_mv, lease_remaining_ms
    )
    return head + channel_records


def encode_payload(msg: Message) -> tuple[MsgType, bytes]:
    """Return the message type and payload bytes of ``msg``."""
    match msg:  # the board's frames of every tick first, then the host's
        case Telemetry():
            return MsgType.TELEMETRY, _encode_telemetry(msg)
        case Ack():
            return MsgType.ACK, struct.pack("<H", msg.echo_seq)
        case SetOutput():
            return MsgType.SET_OUTPUT, _encode_set_output(msg)
        case Hello():
            return MsgType.HELLO, struct.pack("<B", msg.protocol_version)
        case OutputOff():
            return MsgType.OUTPUT_OFF, b""
        case ClearFaults():
            return MsgType.CLEAR_FAULTS, b""
        case Info():
            return MsgType.INFO, _encode_info(msg)
        case Nak():
            return MsgType.NAK, struct.pack("<HB", msg.echo_seq, int(msg.code))
        case Event():
            return MsgType.EVENT, struct.pack(
                "<IBH", msg.uptime_ms & 0xFFFFFFFF, int(msg.kind), msg.detail
            )
    raise TypeError(f"not a protocol message: {msg!r}")  # pragma: no cover


# ---------------------------------------------------------------- decoding


@cache
def _layout(fmt: str) -> struct.Struct:
    """The compiled ``struct`` layout of ``fmt`` (a handful of formats, compiled once)."""
    return struct.Struct(fmt)


class _Reader:
    """Consumes a payload front to back; every short read is a MessageDecodeError."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, fmt: str) -> tuple[int, ...]:
        layout = _layout(fmt)
        pos = self._pos
        if pos + layout.size > len(self._data):
            raise MessageDecodeError("payload too short")
        self._pos = pos + layout.size
        return layout.unpack_from(self._data, pos)

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


# The frames of every tick (50 a second each) are decoded straight from the bytes; the
# others through a ``_Reader``.

_SET_OUTPUT_HEAD: Final = struct.Struct("<HB")
_SETPOINT: Final = struct.Struct("<BHHB")
_ACK: Final = struct.Struct("<H")


def _exact(payload: bytes, size: int) -> None:
    if len(payload) != size:
        raise MessageDecodeError(
            "payload too short" if len(payload) < size else "payload has trailing bytes"
        )


def _ack(payload: bytes) -> Ack:
    _exact(payload, _ACK.size)
    return Ack(_ACK.unpack(payload)[0])


def _decode_set_output(payload: bytes) -> SetOutput:
    head_size = _SET_OUTPUT_HEAD.size
    if len(payload) < head_size:
        raise MessageDecodeError("payload too short")
    lease_ms, count = _SET_OUTPUT_HEAD.unpack_from(payload)
    _exact(payload, head_size + _SETPOINT.size * _count(count, MAX_CHANNELS, "channel count"))
    channels = tuple(
        ChannelSetpoint(ch, cur / 10.0, hz, duty)
        for ch, cur, hz, duty in _SETPOINT.iter_unpack(payload[head_size:])
    )
    return SetOutput(lease_ms, channels)


def _telemetry_head(payload: bytes) -> tuple[int, ...]:
    """TELEMETRY's head fields, its length checked against the channel count it gives."""
    if len(payload) < _TELEMETRY_HEAD_SIZE:
        raise MessageDecodeError("payload too short")
    head = _TELEMETRY_HEAD.unpack_from(payload)
    records_size = _TELEMETRY_CHANNEL.size * _count(head[8], MAX_CHANNELS, "channel count")
    _exact(payload, _TELEMETRY_HEAD_SIZE + records_size)
    return head


def _telemetry(payload: bytes) -> Telemetry:
    up, flags, faults, skin_a, skin_b, board, supply, lease, _ = _telemetry_head(payload)
    return Telemetry(
        up,
        _TELEMETRY_FLAGS[flags & 0x0F],  # reserved flag bits are ignored
        BoardFault(faults),  # reserved fault bits are kept: an unknown fault is still a fault
        skin_a / 100.0,
        skin_b / 100.0,
        board / 100.0,
        supply,
        lease,
        _channels(payload[_TELEMETRY_HEAD_SIZE:]),
    )


def _channels(records: bytes) -> tuple[ChannelTelemetry, ...]:
    return tuple(
        ChannelTelemetry(cur / 10.0, hz, duty)
        for cur, hz, duty in _TELEMETRY_CHANNEL.iter_unpack(records)
    )


_TELEMETRY_FLAGS: Final = tuple(TelemetryFlag(bits) for bits in range(0x10))
_E = TypeVar("_E", bound=IntEnum)
_K = TypeVar("_K")
_V = TypeVar("_V")
_TELEMETRY_TYPE: Final = MsgType.TELEMETRY.value
_SET_OUTPUT_TYPE: Final = MsgType.SET_OUTPUT.value


def _members(cls: type[_E]) -> Mapping[int, _E]:
    return {member.value: member for member in cls}


_NAK_CODES: Final = _members(NakCode)
_EVENT_KINDS: Final = _members(EventKind)


def _enum(members: Mapping[int, _E], value: int, name: str) -> _E:
    member = members.get(value)
    if member is None:
        raise MessageDecodeError(f"unknown {name} {value}")
    return member


def _decode_nak(reader: _Reader) -> Nak:
    echo, code = reader.take("<HB")
    return Nak(echo, _enum(_NAK_CODES, code, "NakCode"))


def _decode_event(reader: _Reader) -> Event:
    up, kind, detail = reader.take("<IBH")
    return Event(up, _enum(_EVENT_KINDS, kind, "EventKind"), detail)


_DECODERS: Final[Mapping[int, Callable[[_Reader], Message]]] = {
    MsgType.HELLO: lambda reader: Hello(reader.take("<B")[0]),
    MsgType.INFO: _decode_info,
    MsgType.OUTPUT_OFF: lambda reader: OutputOff(),
    MsgType.CLEAR_FAULTS: lambda reader: ClearFaults(),
    MsgType.NAK: _decode_nak,
    MsgType.EVENT: _decode_event,
}


_DIRECT: Final[Mapping[int, Callable[[bytes], Message]]] = {
    MsgType.TELEMETRY: _telemetry,
    MsgType.ACK: _ack,
    MsgType.SET_OUTPUT: _decode_set_output,
}


def decode_payload(msg_type: int, payload: bytes) -> Message:
    """Parse ``payload`` as ``msg_type``; raise MessageDecodeError on any mismatch."""
    direct = _DIRECT.get(msg_type)
    if direct is not None:
        return direct(payload)
    decoder = _DECODERS.get(msg_type)
    if decoder is None:
        raise MessageDecodeError(f"unknown MsgType {msg_type}")
    reader = _Reader(payload)
    msg = decoder(reader)
    reader.done()
    return msg


# ---------------------------------------------------------------- one side's memos

_CHANNELS_KEPT: Final = 256
_SET_OUTPUTS_KEPT: Final = 64
_FAULT_FLAGS_KEPT: Final = 64


def _remember(memo: dict[_K, _V], key: _K, value: _V, kept: int) -> _V:
    """Store ``value`` under ``key``; a memo that has reached ``kept`` entries starts over."""
    if len(memo) >= kept:
        memo.clear()
    memo[key] = value
    return value


class PayloadDecoder:
    """``decode_payload`` for one receiving side, sharing what repeats.

    A steady output repeats the same TELEMETRY channel records and fault flags in every
    frame, and a host renews the same SET_OUTPUT every tick: the (frozen) objects built
    once are handed out again instead of 50 times a second. Each memo is this object's
    own and bounded; a ``FrameDecoder`` holds one, so the host and an in-process
    simulator never share them.
    """

    __slots__ = ("_channels", "_faults", "_set_outputs")

    def __init__(self) -> None:
        self._channels: dict[bytes, tuple[ChannelTelemetry, ...]] = {}
        self._faults: dict[int, BoardFault] = {}
        self._set_outputs: dict[bytes, SetOutput] = {}

    def decode(self, msg_type: int, payload: bytes) -> Message:
        """``decode_payload(msg_type, payload)``, an equal message, possibly shared."""
        if msg_type == _TELEMETRY_TYPE:
            return self._telemetry(payload)
        if msg_type == _SET_OUTPUT_TYPE:
            seen = self._set_outputs.get(payload)
            if seen is not None:
                return seen
            message = _decode_set_output(payload)
            return _remember(self._set_outputs, payload, message, _SET_OUTPUTS_KEPT)
        return decode_payload(msg_type, payload)

    def _telemetry(self, payload: bytes) -> Telemetry:
        up, flags, faults, skin_a, skin_b, board, supply, lease, _ = _telemetry_head(payload)
        records = payload[_TELEMETRY_HEAD_SIZE:]
        channels = self._channels.get(records)
        if channels is None:
            channels = _remember(self._channels, records, _channels(records), _CHANNELS_KEPT)
        fault_flags = self._faults.get(faults)
        if fault_flags is None:
            fault_flags = _remember(self._faults, faults, BoardFault(faults), _FAULT_FLAGS_KEPT)
        return Telemetry(
            up,
            _TELEMETRY_FLAGS[flags & 0x0F],
            fault_flags,
            skin_a / 100.0,
            skin_b / 100.0,
            board / 100.0,
            supply,
            lease,
            channels,
        )


class PayloadEncoder:
    """``encode_payload`` for one sending side: a SET_OUTPUT that renews the setpoints
    of the last one (the same tuple of channels) reuses its payload when the lease is
    the same too. The memo is this object's own (one message)."""

    __slots__ = ("_last_channels", "_last_lease_ms", "_last_payload")

    def __init__(self) -> None:
        self._last_channels: tuple[ChannelSetpoint, ...] | None = None
        self._last_lease_ms = -1
        self._last_payload = b""

    def encode(self, msg: Message) -> tuple[MsgType, bytes]:
        if not isinstance(msg, SetOutput):
            return encode_payload(msg)
        if msg.channels is not self._last_channels or msg.lease_ms != self._last_lease_ms:
            self._last_payload = _encode_set_output(msg)
            self._last_channels, self._last_lease_ms = msg.channels, msg.lease_ms
        return MsgType.SET_OUTPUT, self._last_payload
