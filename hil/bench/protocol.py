"""``python -m hil.bench protocol``: wire-protocol throughput and SET_OUTPUT→ACK latency.

Owns: measuring and printing figures only (never pass/fail). Prints frames encoded and
decoded per second (TELEMETRY frames), the SET_OUTPUT→ACK round trip through a real
``python -m hil.sim`` process on its pseudo-terminal (``hil.rigs.sim_child``; p50/p99),
and the physical floor: the time the command and its ACK need on the wire at the
configured baud rate.
"""

from __future__ import annotations

import argparse
import statistics
import time

from drivers.client import open_board
from drivers.protocol import (
    Ack,
    BoardFault,
    ChannelSetpoint,
    ChannelTelemetry,
    FrameDecoder,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    encode_frame,
)
from hil.rigs.sim_child import SimChild
from hil.tools.arg_types import at_least, positive

BITS_PER_BYTE = 10  # 8N1
TELEMETRY = Telemetry(
    123456,
    TelemetryFlag.OUTPUT_ON | TelemetryFlag.CONTACT,
    BoardFault.NONE,
    33.25,
    33.5,
    41.0,
    12050,
    180,
    (ChannelTelemetry(349.8, 0, 100), ChannelTelemetry(0.0, 0, 100)),
)


def codec_rates(duration_s: float) -> tuple[float, float]:
    """TELEMETRY frames encoded per second and decoded per second."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration_s:
        for seq in range(500):
            encode_frame(TELEMETRY, seq)
        count += 500
    encoded_per_s = count / (time.perf_counter() - start)
    stream = b"".join(encode_frame(TELEMETRY, seq) for seq in range(2000))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < duration_s:
        count += len(FrameDecoder().feed(stream))
    return encoded_per_s, count / (time.perf_counter() - start)


def round_trips_s(port_name: str, baud: int, count: int) -> list[float]:
    """``count`` blocking SET_OUTPUT→ACK round trips, in seconds."""
    client = open_board(port_name, baudrate=baud)
    try:
        info = client.handshake()
        channels = (ChannelSetpoint(0, info.calibration[0].max_current_ma / 4),)
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            client.request(SetOutput(100, channels), timeout_s=1.0)
            samples.append(time.perf_counter() - start)
        client.output_off()
        return samples
    finally:
        client.close()


def wire_floor_s(baud: int) -> float:
    command = encode_frame(SetOutput(100, (ChannelSetpoint(0, 200.0),)), 0)
    reply = encode_frame(Ack(0), 0)
    return (len(command) + len(reply)) * BITS_PER_BYTE / baud


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.bench protocol")
    parser.add_argument("--round-trips", type=at_least(2), default=300)
    parser.add_argument("--baud", type=at_least(1), default=115200)
    parser.add_argument("--codec-seconds", type=positive, default=1.0)
    args = parser.parse_args(argv)
    encoded, decoded = codec_rates(args.codec_seconds)
    print(f"telemetry frames encoded: {encoded:,.0f} /s")
    print(f"telemetry frames decoded: {decoded:,.0f} /s")
    print(
        f"physical floor SET_OUTPUT+ACK at {args.baud} baud: {wire_floor_s(args.baud) * 1e3:.2f} ms"
    )
    sim = SimChild("--baud", str(args.baud))
    try:
        samples = round_trips_s(sim.port, args.baud, args.round_trips)
    finally:
        sim.close()
    print(f"SET_OUTPUT->ACK via pty sim ({len(samples)} round trips): {summary_ms(samples)}")
    return 0


def summary_ms(samples_s: list[float]) -> str:
    """p50, p99 and max in ms; the percentiles lie within the samples (never above max)."""
    cuts = statistics.quantiles(samples_s, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1e3:.2f} ms, p99 {cuts[98] * 1e3:.2f} ms, "
        f"max {max(samples_s) * 1e3:.2f} ms"
    )
