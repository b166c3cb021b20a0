"""Consistent Overhead Byte Stuffing (COBS), the framing of the nirpad wire protocol.

Owns: turning a frame body into bytes that contain no 0x00, and back. The 0x00 byte is
the frame delimiter on the wire; the delimiter itself is added by ``framing``.
"""

from __future__ import annotations


class CobsDecodeError(ValueError):
    """The bytes are not a valid COBS encoding."""


def cobs_encode(data: bytes) -> bytes:
    """Encode ``data`` so that the result contains no zero byte."""
    out = bytearray()
    block = bytearray()
    for byte in data:
        if byte == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            continue
        block.append(byte)
        if len(block) == 254:
            out.append(255)
            out += block
            block.clear()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(encoded: bytes) -> bytes:
    """Decode one COBS block (without its delimiter); raise CobsDecodeError if invalid."""
    out = bytearray()
    index = 0
    length = len(encoded)
    while index < length:
        code = encoded[index]
        if code == 0:
            raise CobsDecodeError("zero byte inside a COBS frame")
        end = index + code
        if end > length:
            raise CobsDecodeError("COBS code runs past the end of the frame")
        block = encoded[index + 1 : end]
        if 0 in block:
            raise CobsDecodeError("zero byte inside a COBS frame")
        out += block
        index = end
        if code != 255 and index < length:
            out.append(0)
    return bytes(out)
