"""Generate the worked hex examples of docs/protocol.md from the real encoder.

Run ``.venv/bin/python tests/drivers/protocol_examples.py`` and paste the output into the
doc's examples section. ``test_protocol_doc.py`` parses the doc and fails if any example
differs from ``encode_frame`` (so the doc cannot drift from the code).
"""

from __future__ import annotations

from drivers.protocol import (
    Ack,
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelSetpoint,
    ChannelTelemetry,
    ClearFaults,
    Event,
    EventKind,
    Hello,
    Info,
    Message,
    Nak,
    NakCode,
    OutputOff,
    ResetReason,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    calibration_crc,
    encode_frame,
)
from drivers.protocol.cobs import cobs_decode

# Passes the host's self-test: both wavelengths once, from (0, 0), strictly increasing, and
# 50 mW/cm² within max_current (810 nm: at 776.5 mA; 850 nm: at 765.6 mA).
CAL = (
    ChannelCalibration(
        810,
        800.0,
        (
            CalibrationPoint(0.0, 0.0),
            CalibrationPoint(400.0, 26.0),
            CalibrationPoint(800.0, 51.5),
        ),
    ),
    ChannelCalibration(850, 800.0, (CalibrationPoint(0.0, 0.0), CalibrationPoint(800.0, 52.25))),
)

EXAMPLES: list[tuple[str, int, Message]] = [
    ("HELLO", 0, Hello(protocol_version=1)),
    (
        "INFO",
        0,
        Info(
            echo_seq=0,
            protocol_version=1,
            firmware_version=(1, 0, 0),
            simulator=False,
            time_scale=1.0,
            serial="NP-000117",
            calibration=CAL,
            calibration_crc=calibration_crc(CAL),
        ),
    ),
    (
        "SET_OUTPUT (CW, one channel)",
        1,
        SetOutput(lease_ms=200, channels=(ChannelSetpoint(0, 350.0, 0, 100),)),
    ),
    (
        "SET_OUTPUT (pulsed, two channels)",
        2,
        SetOutput(
            lease_ms=500,
            channels=(ChannelSetpoint(0, 300.0, 10, 50), ChannelSetpoint(1, 280.5, 10, 50)),
        ),
    ),
    ("OUTPUT_OFF", 3, OutputOff()),
    ("CLEAR_FAULTS", 4, ClearFaults()),
    ("ACK", 1, Ack(echo_seq=1)),
    ("NAK", 2, Nak(echo_seq=2, code=NakCode.NO_CONTACT)),
    (
        "TELEMETRY",
        5,
        Telemetry(
            uptime_ms=123456,
            flags=TelemetryFlag.OUTPUT_ON | TelemetryFlag.CONTACT | TelemetryFlag.RAIL_ENABLED,
            faults=BoardFault.NONE,
            skin_a_c=33.25,
            skin_b_c=33.5,
            board_c=41.0,
            supply_mv=12050,
            lease_remaining_ms=180,
            channels=(ChannelTelemetry(349.8, 0, 100), ChannelTelemetry(0.0, 0, 0)),
        ),
    ),
    ("EVENT (button down)", 6, Event(uptime_ms=200000, kind=EventKind.BUTTON_DOWN, detail=0)),
    (
        "EVENT (board reset after brown-out)",
        0,
        Event(uptime_ms=3, kind=EventKind.BOARD_RESET, detail=int(ResetReason.BROWNOUT)),
    ),
    (
        "EVENT (board fault)",
        7,
        Event(uptime_ms=250000, kind=EventKind.BOARD_FAULT, detail=int(BoardFault.SKIN_OVERTEMP)),
    ),
]


def hexs(data: bytes) -> str:
    return data.hex(" ")


def render(title: str, seq: int, message: Message) -> str:
    wire = encode_frame(message, seq)
    body = cobs_decode(wire[:-1])
    return "\n".join(
        [
            f"#### {title}",
            "",
            "```hex-example",
            f"message: {message!r}",
            f"seq:     {seq}",
            f"header:  {hexs(body[:4])}",
            f"payload: {hexs(body[4:-2]) or '(empty)'}",
            f"crc:     {hexs(body[-2:])}",
            f"wire:    {hexs(wire)}",
            "```",
            "",
        ]
    )


def main() -> None:
    for title, seq, message in EXAMPLES:
        print(render(title, seq, message))


if __name__ == "__main__":
    main()
