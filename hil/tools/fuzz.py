"""Fuzzing of the frame decoder; ``python -m hil.tools.fuzz decoder``.

Owns: the mutators (bit flips, insertions, deletions, truncation, splices, random bytes
and random chunk boundaries for wire frames), the oracle that judges every outcome, and
the long-run command line. The CI test (tests/reliability/test_fuzz_decoder.py) runs the
same functions with a fixed seed and a small count; docs/reliability.md records the
figures of the long run. The profile loader's fuzzer is a test: tests/profiles/fuzzer.py.

Does not own the decoder (``drivers.protocol``): it only feeds it and reports. The
oracle never raises on a finding; it counts it, so a long run always ends with its
figures.

    python -m hil.tools.fuzz decoder --frames 1000000 [--seed N]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Final, Protocol

from drivers.protocol import (
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelSetpoint,
    ChannelTelemetry,
    ClearFaults,
    DecoderStats,
    Event,
    EventKind,
    Frame,
    FrameDecoder,
    Hello,
    Info,
    Message,
    Nak,
    NakCode,
    OutputOff,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    crc16_ccitt_false,
    encode_frame,
)
from drivers.protocol.cobs import cobs_decode, cobs_encode
from drivers.protocol.messages import Ack, MsgType
from hil.tools.arg_types import at_least
from hil.tools.report_out import print_report

INTERRUPTED_EXIT: Final = 130  # the shell's code for SIGINT

BATCH_ITEMS: Final = 200  # items per stream; each stream gets a fresh decoder
STRICT_EVERY: Final = 4  # every 4th stream is a strict (≤ 3 bit errors) stream
CRC_SPACE: Final = 65536
HOST_COMMANDS: Final = ("SetOutput", "OutputOff", "ClearFaults", "Hello")
_STAT_FIELDS: Final = ("frames_ok", "framing_errors", "crc_errors", "decode_errors",
                       "version_errors", "bytes_in")  # fmt: skip


class DecoderLike(Protocol):
    """What the oracle drives: ``drivers.protocol.FrameDecoder`` or a test double."""

    stats: DecoderStats

    def feed(self, data: bytes) -> list[Frame]: ...


# ---------------------------------------------------------------- valid messages


def _u16(rng: random.Random) -> int:
    return rng.randrange(0x10000)


def _calibration(rng: random.Random) -> tuple[ChannelCalibration, ...]:
    return tuple(
        ChannelCalibration(
            _u16(rng),
            _u16(rng) / 10,
            tuple(
                CalibrationPoint(_u16(rng) / 10, _u16(rng) / 100) for _ in range(rng.randrange(9))
            ),
        )
        for _ in range(rng.randrange(5))
    )


def _info(rng: random.Random) -> Info:
    serial = "".join(rng.choice("ABCXYZ-0123456789") for _ in range(rng.randrange(17)))
    fw = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    return Info(_u16(rng), rng.randrange(256), fw, rng.random() < 0.5, _u16(rng) / 100,
                serial, _calibration(rng), _u16(rng))  # fmt: skip


def _set_output(rng: random.Random) -> SetOutput:
    channels = tuple(
        ChannelSetpoint(rng.randrange(256), _u16(rng) / 10, _u16(rng), rng.randrange(256))
        for _ in range(rng.randrange(5))
    )
    return SetOutput(_u16(rng), channels)


def _telemetry(rng: random.Random) -> Telemetry:
    def temp() -> float:
        return rng.randrange(-0x8000, 0x8000) / 100

    channels = tuple(
        ChannelTelemetry(_u16(rng) / 10, _u16(rng), rng.randrange(256))
        for _ in range(rng.randrange(5))
    )
    return Telemetry(rng.randrange(2**32), TelemetryFlag(rng.randrange(16)),
                     BoardFault(_u16(rng)), temp(), temp(), temp(), _u16(rng), _u16(rng),
                     channels)  # fmt: skip


def random_message(rng: random.Random) -> Message:
    """A valid message of a random type with random field values (every type, evenly)."""
    makers: tuple[Callable[[random.Random], Message], ...] = (
        lambda r: Hello(r.randrange(256)),
        _set_output,
        lambda r: OutputOff(),
        lambda r: ClearFaults(),
        _info,
        lambda r: Ack(_u16(r)),
        lambda r: Nak(_u16(r), r.choice(list(NakCode))),
        _telemetry,
        lambda r: Event(r.randrange(2**32), r.choice(list(EventKind)), _u16(r)),
    )
    return rng.choice(makers)(rng)


def random_wire_frame(rng: random.Random) -> bytes:
    """A valid frame (delimiter included) of a random message and sequence number."""
    return encode_frame(random_message(rng), _u16(rng))


def random_crc_frame(rng: random.Random) -> bytes:
    """A frame with a correct CRC around a random header and payload (decode-error path)."""
    version = 1 if rng.random() < 0.8 else rng.randrange(256)
    msg_type = rng.choice(list(MsgType)) if rng.random() < 0.7 else rng.randrange(256)
    body = bytes([version, msg_type]) + rng.randbytes(2 + rng.randrange(61))
    body += crc16_ccitt_false(body).to_bytes(2, "little")
    return cobs_encode(body) + b"\x00"


# ---------------------------------------------------------------- wire mutators


def _flip(data: bytearray, pos: int, bit: int) -> None:
    data[pos] ^= 1 << bit


def mutate_wire(rng: random.Random, wire: bytes, other: bytes) -> tuple[str, bytes]:
    """One random mutation of a delimited frame; ``other`` is a second frame for splices."""
    data = bytearray(wire)
    kind = rng.choice(("flip", "insert", "delete", "truncate", "splice", "replace", "swap"))
    for _ in range(rng.randint(1, 8) if kind == "flip" else rng.randint(1, 4)):
        pos = rng.randrange(len(data)) if data else 0
        if kind == "flip" and data:
            _flip(data, pos, rng.randrange(8))
        elif kind == "insert":
            data.insert(pos, 0 if rng.random() < 0.25 else rng.randrange(1, 256))
        elif kind == "delete" and data:
            del data[pos]
        elif kind == "replace" and data:
            data[pos] = rng.randrange(256)
        elif kind == "swap" and len(data) > 1:
            pos = min(pos, len(data) - 2)
            data[pos], data[pos + 1] = data[pos + 1], data[pos]
    if kind == "truncate":
        data = data[: rng.randrange(len(wire))] + (b"\x00" if rng.random() < 0.5 else b"")
    elif kind == "splice":
        data = data[: rng.randrange(len(wire))] + other[rng.randrange(len(other)) :]
    return kind, bytes(data)


def _code_positions(encoded: bytes) -> set[int]:
    """Indexes of the COBS code bytes of one encoded block (no delimiter)."""
    positions, index = set(), 0
    while index < len(encoded):
        positions.add(index)
        index += encoded[index]
    return positions


def flip_data_bits(rng: random.Random, wire: bytes, flips: int) -> bytes:
    """Flip ``flips`` distinct bits in COBS data bytes, never making a 0x00: on the body
    this is exactly ``flips`` bit errors, which CRC-16/CCITT (Hamming distance 4) detects."""
    data = bytearray(wire)
    codes = _code_positions(wire[:-1])
    candidates = [(p, b) for p in range(len(wire) - 1) if p not in codes for b in range(8)]
    done: set[int] = set()
    for pos, bit in rng.sample(candidates, len(candidates)):
        if len(done) == flips:
            break
        if pos in done or data[pos] ^ (1 << bit) == 0:
            continue  # one flip per byte keeps the count exact; never create a delimiter
        _flip(data, pos, bit)
        done.add(pos)
    return bytes(data)


def flip_body_bits(rng: random.Random, wire: bytes, flips: int) -> bytes:
    """Flip ``flips`` distinct bits of the frame body, then frame it again (same CRC field)."""
    body = bytearray(cobs_decode(wire[:-1]))
    for index in rng.sample(range(len(body) * 8), flips):
        _flip(body, index // 8, index % 8)
    return cobs_encode(bytes(body)) + b"\x00"


# ---------------------------------------------------------------- decoder oracle


@dataclass
class DecoderFuzzReport:
    """Totals of a decoder fuzz run; ``failures()`` lists what must fail a test."""

    items: int = 0
    intact: int = 0
    mutated: Counter[str] = field(default_factory=Counter)
    segments: int = 0  # non-empty delimited segments, counted here, independently
    decoded: int = 0
    must_decode: int = 0  # intact frames right after a delimiter
    stats: Counter[str] = field(default_factory=Counter)
    collisions: Counter[str] = field(default_factory=Counter)  # spurious frames, by type
    strict_spurious: list[str] = field(default_factory=list)
    strict_miscounted: int = 0
    exceptions: list[str] = field(default_factory=list)
    accounting: list[str] = field(default_factory=list)
    lost_intact: int = 0
    elapsed_s: float = 0.0

    @property
    def crc_checked_bad(self) -> int:
        """Bad segments that reached the CRC check: CRC errors plus the ones that passed."""
        return self.stats["crc_errors"] + sum(self.collisions.values())

    def collision_bound(self) -> float:
        """Far above what CRC-16 lets through at random (≈ 1/65536 of the CRC-checked)."""
        expected = self.crc_checked_bad / CRC_SPACE
        return expected + 6 * math.sqrt(expected) + 3

    def failures(self) -> list[str]:
        out = [f"exception: {e}" for e in self.exceptions[:5]] + self.accounting[:5]
        out += [f"undetected ≤3-bit error: {s}" for s in self.strict_spurious[:5]]
        if self.strict_miscounted:
            out.append(f"{self.strict_miscounted} strict streams: crc_errors != mutated frames")
        if self.lost_intact:
            out.append(f"{self.lost_intact} intact frames after a delimiter were not decoded")
        if sum(self.collisions.values()) > self.collision_bound():
            out.append(f"collisions {dict(self.collisions)} above CRC-16's rate")
        return out

    def summary(self) -> dict[str, Any]:
        data = _plain(self)
        data["frames_per_s"] = round(self.items / self.elapsed_s) if self.elapsed_s else None
        data["collision_rate"] = sum(self.collisions.values()) / max(1, self.crc_checked_bad)
        return data


@dataclass
class _Stream:
    wire: bytearray = field(default_factory=bytearray)
    genuine: set[bytes] = field(default_factory=set)
    expected: Counter[bytes] = field(default_factory=Counter)
    mutated: int = 0

    def add_intact(self, frame: bytes, report: DecoderFuzzReport) -> None:
        self.genuine.add(frame)
        if not self.wire or self.wire[-1] == 0:
            self.expected[frame] += 1  # after a delimiter: it must come out, whole
        self.wire += frame
        report.intact += 1


def _build_stream(rng: random.Random, strict: bool, report: DecoderFuzzReport) -> _Stream:
    stream = _Stream()
    for _ in range(BATCH_ITEMS):
        frame = random_wire_frame(rng)
        roll = rng.random()
        report.items += 1
        if roll < 0.4 or (strict and roll < 0.5):
            stream.add_intact(frame, report)
            continue
        stream.genuine.add(frame)
        stream.mutated += 1
        if strict:
            kind, flips = rng.choice(("data", "body")), rng.randint(1, 3)
            flip = flip_data_bits if kind == "data" else flip_body_bits
            bad, kind = flip(rng, frame, flips), f"strict_{kind}_flips"
        elif roll < 0.85:
            partner = random_wire_frame(rng)
            stream.genuine.add(partner)  # a splice may keep the whole partner
            kind, bad = mutate_wire(rng, frame, partner)
        elif roll < 0.93:
            kind, bad = "random_crc_frame", random_crc_frame(rng)
            stream.genuine.update(_decodes_alone(bad))  # sent intact: whatever it says
        else:
            kind, bad = "noise", _noise(rng)
        report.mutated[kind] += 1
        stream.wire += bad
    stream.wire += b"\x00"  # flush whatever the last item left open
    return stream


def _noise(rng: random.Random) -> bytes:
    size = rng.choice((rng.randint(1, 40), rng.randint(240, 600)))
    data = rng.randbytes(size)
    return data.replace(b"\x00", b"\x01") if rng.random() < 0.5 else data


def _decodes_alone(wire: bytes) -> list[bytes]:
    decoder = FrameDecoder()
    return [encode_frame(f.message, f.seq) for f in decoder.feed(b"\x00" + wire + b"\x00")]


def _chunks(rng: random.Random, data: bytes) -> Iterator[bytes]:
    most = rng.choice((1, 3, 16, 64, 1024, len(data)))
    start = 0
    while start < len(data):
        size = rng.randint(1, most)
        yield data[start : start + size]
        start += size


def _judge(
    rng: random.Random, stream: _Stream, decoder: DecoderLike, strict: bool, rep: DecoderFuzzReport
) -> None:
    data = bytes(stream.wire)
    got: list[bytes] = []
    try:
        for chunk in _chunks(rng, data):
            got += [encode_frame(f.message, f.seq) for f in decoder.feed(chunk)]
    except Exception as exc:  # the finding itself: the decoder must never raise
        rep.exceptions.append(f"{type(exc).__name__}: {exc} (stream {data.hex()[:120]}…)")
        return
    segments = sum(1 for part in data.split(b"\x00")[:-1] if part)
    stats = decoder.stats
    counted = stats.frames_ok + stats.frames_dropped
    if counted != segments or stats.frames_ok != len(got):
        rep.accounting.append(f"segments {segments}, ok+dropped {counted}, decoded {len(got)}")
    for name in _STAT_FIELDS:
        rep.stats[name] += getattr(stats, name)
    rep.segments += segments
    rep.decoded += len(got)
    rep.must_decode += sum(stream.expected.values())
    rep.lost_intact += sum((stream.expected - Counter(got)).values())
    for frame in got:
        if frame not in stream.genuine:
            _spurious(frame, strict, rep)
    if strict and stats.crc_errors != stream.mutated:
        rep.strict_miscounted += 1


def _spurious(frame: bytes, strict: bool, rep: DecoderFuzzReport) -> None:
    (decoded,) = FrameDecoder().feed(frame)
    name = type(decoded.message).__name__
    if strict:
        rep.strict_spurious.append(f"{decoded!r}")
    else:
        rep.collisions[name] += 1


def fuzz_decoder(
    frames: int,
    seed: int,
    *,
    decoder_factory: Callable[[], DecoderLike] = FrameDecoder,
    strict_every: int = STRICT_EVERY,
    progress: Callable[[DecoderFuzzReport], None] | None = None,
) -> DecoderFuzzReport:
    """Push about ``frames`` valid, mutated and random frames through fresh decoders.

    Every ``strict_every``-th stream carries only intact frames and frames with 1–3 bit
    errors in the body (1: every stream is strict); there, any new frame is a failure."""
    rng = random.Random(seed)
    report = DecoderFuzzReport()
    started = time.perf_counter()
    batch = 0
    while report.items < frames:
        strict = batch % strict_every == strict_every - 1
        stream = _build_stream(rng, strict, report)
        _judge(rng, stream, decoder_factory(), strict, report)
        batch += 1
        if progress is not None and batch % 500 == 0:
            progress(report)
    report.elapsed_s = time.perf_counter() - started
    return report


# ---------------------------------------------------------------- command line


def _plain(report: DecoderFuzzReport) -> dict[str, Any]:
    """A report as JSON-ready data (``asdict`` would turn a Counter's items into keys)."""
    return {f.name: _jsonable(getattr(report, f.name)) for f in fields(report)}


def _jsonable(value: object) -> object:
    if isinstance(value, Counter):
        return dict(value.most_common())
    if isinstance(value, list):
        return value[:10]
    if isinstance(value, float):
        return round(value, 3)
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.tools.fuzz", description="nirpad fuzz runs"
    )
    sub = parser.add_subparsers(dest="target", required=True)
    dec = sub.add_parser("decoder", help="mutated and random frames through the decoder")
    dec.add_argument("--frames", type=at_least(1), default=1_000_000)
    dec.add_argument("--seed", type=int, default=None, help="default: random, printed")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}", file=sys.stderr)
    try:
        report = fuzz_decoder(args.frames, seed)
    except KeyboardInterrupt:
        print(f"python -m hil.tools.fuzz: interrupted (seed {seed}); no report", file=sys.stderr)
        return INTERRUPTED_EXIT
    summary = json.dumps({"target": args.target, "seed": seed, **report.summary()}, indent=1)
    if not print_report(summary, "python -m hil.tools.fuzz"):
        return 1
    failures = report.failures()
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
