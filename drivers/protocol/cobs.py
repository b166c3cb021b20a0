"""Consistent Overhead Byte Stuffing (COBS), the framing of the nirpad wire protocol.

Owns: turning a frame body into bytes that contain no 0x00, and back. The 0x00 byte is
the frame delimiter on the wire; the delimiter itself is added by ``framing``.

Both directions work on whole runs of non-zero bytes (``bytes.split``, slices), not
byte by byte: every frame on the wire passes through here.
"""

from __future__ import annotations

from typing import Final

_MAX_RUN: Final = 254  # non-zero bytes one code byte can cover (code 0xFF)


class CobsDecodeError(ValueError):
    """The bytes are not a valid COBS encoding."""


_CODES: Final = tuple(bytes((n,)) for n in range(256))


def cobs_encode(data: bytes) -> bytes:
    """Encode ``data`` so that the result contains no zero byte."""
    if len(data) < _MAX_RUN:  # no run can fill a group: one code byte before each run
        return b"".join([_CODES[len(run) + 1] + run for run in data.split(b"\x00")])
    out = bytearray()
    for run in data.split(b"\x00"):
        # a full 254-byte group has code 0xFF and no implied zero after it
        while len(run) >= _MAX_RUN:
            out.append(0xFF)
            out += run[:_MAX_RUN]
            run = run[_MAX_RUN:]
        out.append(len(run) + 1)
        out += run
    return bytes(out)


def cobs_encode_delimited(data: bytes) -> bytes:
    """``cobs_encode(data)`` followed by the 0x00 delimiter, without a second copy."""
    if len(data) < _MAX_RUN:
        parts = [_CODES[len(run) + 1] + run for run in data.split(b"\x00")]
        parts.append(b"\x00")
        return b"".join(parts)
    return cobs_encode(data) + b"\x00"


def cobs_decode(encoded: bytes) -> bytes:
    """Decode one COBS block (without its delimiter); raise CobsDecodeError if invalid."""
    if 0 in encoded:
        raise CobsDecodeError("zero byte inside a COBS frame")
    if len(encoded) <= _MAX_RUN:
        return _decode_short(encoded)
    # every group is followed by an implied zero (b"\x00".join), except a full group
    # (code 0xFF), which runs on into the next one, and the last group
    parts: list[bytes] = []
    carried = b""
    index = 0
    length = len(encoded)
    while index < length:
        code = encoded[index]
        end = index + code
        if end > length:
            raise CobsDecodeError("COBS code runs past the end of the frame")
        group = encoded[index + 1 : end]
        if code == 0xFF and end < length:
            carried += group
        else:
            parts.append(carried + group if carried else group)
            carried = b""
        index = end
    return b"\x00".join(parts)


def _decode_short(encoded: bytes) -> bytes:
    """``cobs_decode`` of a block too short to hold a full group (code 0xFF): each code
    byte after the first stands where a zero was, so overwrite them in place."""
    length = len(encoded)
    if not length:
        return b""
    out = bytearray(encoded)
    index = out[0]
    while index < length:
        code = out[index]
        out[index] = 0
        index += code
    if index > length:
        raise CobsDecodeError("COBS code runs past the end of the frame")
    del out[0]
    return bytes(out)
