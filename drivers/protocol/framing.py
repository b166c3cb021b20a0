"""Frames of the nirpad wire protocol: header, CRC, COBS and the streaming decoder.

Owns: turning a message into delimited bytes, and a stream of arbitrary bytes back
into messages. The decoder never raises on bad input: it drops the bad frame,
resynchronises on the next 0x00 delimiter and counts what went wrong, each kind of
error separately. Does not own retries, timeouts or what a message means.

Frame body before COBS (little-endian):
    version u8 | type u8 | seq u16 | payload (0..MAX_PAYLOAD bytes) | crc u16
The CRC is CRC-16/CCITT-FALSE over version, type, seq and payload.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from drivers.protocol.cobs import CobsDecodeError, cobs_decode, cobs_encode_delimited
from drivers.protocol.crc import crc16_ccitt_false
from drivers.protocol.messages import (
    PROTOCOL_VERSION,
    Ack,
    Message,
    MessageDecodeError,
    MsgType,
    PayloadDecoder,
    PayloadEncoder,
    encode_payload,
)

DELIMITER: Final = b"\x00"
HEADER_LEN: Final = 4
CRC_LEN: Final = 2
MAX_PAYLOAD: Final = 240
MAX_FRAME_BODY: Final = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
# A COBS block of n bytes encodes to at most n + ceil(n / 254) + 1 bytes.
MAX_ENCODED: Final = MAX_FRAME_BODY + 3
_HEADER: Final = struct.Struct("<BBH")  # version, type, seq
_CRC: Final = struct.Struct("<H")


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    message: Message


def encode_frame(message: Message, seq: int, version: int = PROTOCOL_VERSION) -> bytes:
    """Return the on-wire bytes of ``message``, delimiter included."""
    msg_type, payload = encode_payload(message)
    return frame_bytes(msg_type, seq, payload, version)


class FrameEncoder:
    """``encode_frame`` for one sending side, with that side's own ``PayloadEncoder``
    (a renewed SET_OUTPUT's payload is packed once)."""

    __slots__ = ("_payloads",)

    def __init__(self) -> None:
        self._payloads = PayloadEncoder()

    def encode(self, message: Message, seq: int) -> bytes:
        msg_type, payload = self._payloads.encode(message)
        return frame_bytes(msg_type, seq, payload)


def frame_bytes(msg_type: int, seq: int, payload: bytes, version: int = PROTOCOL_VERSION) -> bytes:
    """The on-wire bytes of a frame whose payload is already encoded, delimiter included
    (``encode_frame`` without the message object, for senders that pack payloads)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = _HEADER.pack(version, msg_type, seq & 0xFFFF) + payload
    return cobs_encode_delimited(body + _CRC.pack(crc16_ccitt_false(body)))


ACK_FRAME_BYTES: Final = len(frame_bytes(MsgType.ACK, 0, encode_payload(Ack(0))[1]))
"""An ACK on the wire, delimiter included. Every other frame a board sends (NAK, EVENT,
TELEMETRY, INFO) is longer: a port that wakes its reader only once more than this many
bytes wait (``drivers.transport.set_wake_bytes``) wakes it for anything but a lone ACK."""


@dataclass(slots=True)
class DecoderStats:
    """Counters of a FrameDecoder. Every dropped frame lands in exactly one error counter."""

    frames_ok: int = 0
    framing_errors: int = 0
    crc_errors: int = 0
    decode_errors: int = 0
    version_errors: int = 0
    sequence_gaps: int = 0
    duplicates: int = 0
    bytes_in: int = 0

    @property
    def frames_dropped(self) -> int:
        return self.framing_errors + self.crc_errors + self.decode_errors + self.version_errors


@dataclass(slots=True)
class FrameDecoder:
    """Streaming decoder: feed it any bytes, get back the frames that were whole and valid."""

    expected_version: int = PROTOCOL_VERSION
    stats: DecoderStats = field(default_factory=DecoderStats)
    _buffer: bytearray = field(default_factory=bytearray)
    _overflow: bool = False
    _last_seq: int | None = None
    _payloads: PayloadDecoder = field(default_factory=PayloadDecoder)  # this side's memos

    def feed(self, data: bytes) -> list[Frame]:
        self.stats.bytes_in += len(data)
        last = len(data) - 1
        if last > 0 and data.find(0) == last and not self._buffer and not self._overflow:
            # exactly one whole frame (the usual read): no split, no list of parts
            if last > MAX_ENCODED:
                self.stats.framing_errors += 1
                return []
            frame = self._parse(data[:last])
            if frame is None:
                return []
            self.stats.frames_ok += 1
            self._track_seq(frame.seq)
            return [frame]
        frames: list[Frame] = []
        *whole, tail = data.split(DELIMITER)  # every part but the last ends a frame
        for run in whole:
            if self._buffer or self._overflow:
                raw = self._collect(run)
            else:  # the whole frame came in this chunk (the usual case)
                raw = run if len(run) <= MAX_ENCODED else None
            frame = self._end_of_frame(raw)
            if frame is not None:
                frames.append(frame)
        if tail:
            self._take(tail)
        return frames

    @property
    def holds_partial(self) -> bool:
        """Bytes of a frame not yet ended wait in the buffer (or an overlong one is being
        skipped): its rest may be shorter than any threshold, so wake for any byte."""
        return bool(self._buffer) or self._overflow

    def _take(self, run: bytes) -> None:
        """Buffer a run of non-zero bytes; past MAX_ENCODED the frame is dropped whole."""
        if run and not self._overflow:
            self._buffer += run
            if len(self._buffer) > MAX_ENCODED:
                self._buffer.clear()
                self._overflow = True

    def _collect(self, run: bytes) -> bytes | None:
        """The encoded frame that ``run`` completes (None if overlong); empties the buffer."""
        self._take(run)
        raw = None if self._overflow else bytes(self._buffer)
        self._buffer.clear()
        self._overflow = False
        return raw

    def _end_of_frame(self, raw: bytes | None) -> Frame | None:
        if raw is None:
            self.stats.framing_errors += 1
            return None
        if not raw:
            return None  # back-to-back delimiters are idle fill, not an error
        frame = self._parse(raw)
        if frame is not None:
            self.stats.frames_ok += 1
            self._track_seq(frame.seq)
        return frame

    def _parse(self, raw: bytes) -> Frame | None:
        stats = self.stats
        try:
            body = cobs_decode(raw)
        except CobsDecodeError:
            stats.framing_errors += 1
            return None
        end = len(body) - CRC_LEN
        if end < HEADER_LEN:
            stats.framing_errors += 1
            return None
        if crc16_ccitt_false(body[:end]) != body[end] | body[end + 1] << 8:
            stats.crc_errors += 1
            return None
        version, msg_type, seq = _HEADER.unpack_from(body)
        if version != self.expected_version:
            stats.version_errors += 1
            return None
        try:
            message = self._payloads.decode(msg_type, body[HEADER_LEN:end])
        except (MessageDecodeError, ValueError):
            stats.decode_errors += 1
            return None
        return Frame(seq, message)

    def _track_seq(self, seq: int) -> None:
        last = self._last_seq
        self._last_seq = seq
        if last is None:
            return
        if seq == last:
            self.stats.duplicates += 1
        elif seq != (last + 1) & 0xFFFF:
            self.stats.sequence_gaps += 1

    def reset_sequence(self) -> None:
        """Forget the last sequence number (after a board reset)."""
        self._last_seq = None
