"""docs/protocol.md agrees with the code: every hex example, every code table.

The examples are regenerated from the doc's own bytes: the wire bytes are decoded with
the real decoder, the message must print exactly as the doc says, and re-encoding it
with ``encode_frame`` must give the doc's wire bytes back, byte for byte.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path

import pytest

from drivers.protocol import (
    MAX_CHANNELS,
    SERIAL_LEN,
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    EventKind,
    FrameDecoder,
    Info,
    MsgType,
    NakCode,
    ResetReason,
    TelemetryFlag,
    calibration_crc,
    encode_frame,
)
from drivers.protocol.cobs import cobs_decode, cobs_encode
from drivers.protocol.framing import CRC_LEN, HEADER_LEN, MAX_PAYLOAD

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
BLOCK = re.compile(r"```hex-example\n(.*?)```", re.S)


def examples() -> list[dict[str, str]]:
    found = []
    for block in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        fields = {}
        for line in block.strip().splitlines():
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
        found.append(fields)
    return found


def hex_bytes(text: str) -> bytes:
    return b"" if text == "(empty)" else bytes.fromhex(text)


EXAMPLES = examples()


def test_the_doc_has_an_example_of_every_message_type() -> None:
    assert len(EXAMPLES) >= len(MsgType)
    shown = {hex_bytes(ex["header"])[1] for ex in EXAMPLES}
    assert shown == {int(t) for t in MsgType}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda ex: ex["message"].split("(")[0])
def test_example_matches_the_encoder(example: dict[str, str]) -> None:
    wire = hex_bytes(example["wire"])
    decoder = FrameDecoder()
    frames = decoder.feed(wire)
    assert len(frames) == 1, decoder.stats
    frame = frames[0]
    assert repr(frame.message) == example["message"]
    assert frame.seq == int(example["seq"])
    assert encode_frame(frame.message, frame.seq) == wire
    body = hex_bytes(example["header"]) + hex_bytes(example["payload"])
    assert cobs_decode(wire[:-1]) == body + hex_bytes(example["crc"])


TABLE_ROW = {
    MsgType: "| `0x{value:02x}` | {name} |",
    NakCode: "| {name} | {value} |",
    EventKind: "| {name} | {value} |",
    TelemetryFlag: "| {name} | `0x{value:02x}` |",
    BoardFault: "| {name} | `0x{value:04x}` |",
}


@pytest.mark.parametrize("enum", list(TABLE_ROW), ids=lambda e: e.__name__)
def test_every_code_is_in_the_doc_with_its_value(enum: type[Enum]) -> None:
    text = DOC.read_text(encoding="utf-8")
    for member in enum:
        if member.value == 0:
            continue
        row = TABLE_ROW[enum].format(name=member.name, value=member.value)
        assert row in text, f"{enum.__name__}.{member.name} missing: {row}"


def test_reset_reasons_are_in_the_doc() -> None:
    text = DOC.read_text(encoding="utf-8")
    for reason in ResetReason:
        assert f"{reason.name} = {reason.value}" in text


def test_the_doc_pins_the_crc_check_value() -> None:
    assert "`0x29B1`" in DOC.read_text(encoding="utf-8")


def _largest_info() -> Info:
    """An INFO whose payload is exactly the 240-byte maximum: 4 channels of 12 points."""
    points = tuple(CalibrationPoint(10.0 * i, 0.5 * i) for i in range(12))
    cal = tuple(ChannelCalibration(800 + ch, 200.0, points) for ch in range(MAX_CHANNELS))
    return Info(0, 1, (255, 255, 255), False, 1.0, "S" * SERIAL_LEN, cal, calibration_crc(cal))


def test_the_largest_encoded_frame_is_247_bytes_and_the_doc_says_so() -> None:
    largest_body = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
    worst = max(
        len(cobs_encode(body))
        for body in (b"\x01" * largest_body, b"\x00" * largest_body, bytes(range(largest_body)))
    )
    assert (largest_body, worst) == (246, 247)
    wire = encode_frame(_largest_info(), 0xFFFF)
    assert len(wire) == worst + 1  # the delimiter
    assert [f.message for f in FrameDecoder().feed(wire)] == [_largest_info()]
    assert "at\n  most **247 bytes** plus the delimiter" in DOC.read_text(encoding="utf-8")
