"""Fuzzing of the frame decoder and of the profile loader; ``python -m hil.tools.fuzz``.

Owns: the mutators (bit flips, insertions, deletions, truncation, splices, random bytes
and random chunk boundaries for wire frames; line, number, key and byte mutations for
profile TOML), the oracles that judge every outcome, and the long-run command line.
The CI tests (tests/reliability/test_fuzz_*.py) run the same functions with a fixed seed
and a small count; docs/reliability.md records the figures of the long runs.

Does not own the decoder (``drivers.protocol``) or the loader and its limits
(``profiles``, ``safety.limits``, ``firmware_host.profile_commands.check_bytes``): it only
feeds them and reports. The oracles never raise on a finding; they count it, so a long
run always ends with its figures.

    python -m hil.tools.fuzz decoder --frames 1000000 [--seed N]
    python -m hil.tools.fuzz profiles --files 10000 [--seed N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
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


# ---------------------------------------------------------------- profile mutators

BUILTIN_PROFILES: Final = ("rls-810-standard", "rls-850-standard", "rls-dual")
FUZZ_TODAY: Final = dt.date(2026, 6, 1)  # inside every built-in's validity
NUMBERS: Final = ("nan", "inf", "-inf", "+nan", "-0.0", "0", "-1", "-30", "1e308", "1e999",
                  "5e-324", "9" * 30, "1" + "0" * 5000, "0x7fffffff", "30.5", "60", "940",
                  "10", "50", "50.0001", "9.999", "20", "19.99", "7", "8", "1_000", "true",
                  '"30"', "[30]", "{}", "2026-01-01", "12:00:00")  # fmt: skip
TOKENS: Final = ("=", "[", "]", "[[", '"', "'", "\\", "#", "{", "}", ",", "\x00", "\t", "é",
                 "\ufeff", "\r\n", "\u202e", "[[channels]]", "[mode]", "chanels",
                 "x.y = 1")  # fmt: skip
BAD_UTF8: Final = (b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80")


def builtin_texts() -> list[str]:
    folder = resources.files("profiles").joinpath("builtin")
    return [folder.joinpath(f"{name}.toml").read_text("utf-8") for name in BUILTIN_PROFILES]


def _lines_op(rng: random.Random, lines: list[str]) -> list[str]:
    i = rng.randrange(len(lines)) if lines else 0
    op = rng.choice(("delete", "duplicate", "swap", "comment", "move"))
    if not lines:
        return lines
    if op == "delete":
        return lines[:i] + lines[i + 1 :]
    if op == "duplicate":
        return lines[: i + 1] + lines[i:]
    if op == "comment":
        return [*lines[:i], "# " + lines[i], *lines[i + 1 :]]
    j = rng.randrange(len(lines))
    lines = list(lines)
    if op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(j, lines.pop(i))
    return lines


def _value_op(rng: random.Random, lines: list[str]) -> list[str]:
    keyed = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    if not keyed:
        return lines
    i = rng.choice(keyed)
    key, _, value = lines[i].partition(" = ")
    if rng.random() < 0.5:
        value = rng.choice(NUMBERS)
    elif rng.random() < 0.5:
        key = _typo(rng, key)
    else:
        value = value[::-1] if rng.random() < 0.5 else value + rng.choice(TOKENS)
    return [*lines[:i], f"{key} = {value}", *lines[i + 1 :]]


def _typo(rng: random.Random, key: str) -> str:
    if not key:
        return "x"
    i = rng.randrange(len(key))
    return rng.choice((key[:i] + key[i + 1 :], key[:i] + key[i] * 2 + key[i:], key.upper(),
                       key + "_x", "unknown_key", key.replace("_", "-")))  # fmt: skip


def _text_op(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    j = min(len(text), i + rng.randrange(8))
    return text[:i] + rng.choice(TOKENS) + text[j:]


def mutate_profile(rng: random.Random, text: str) -> tuple[str, bytes]:
    """1–4 random mutations of a TOML text; returns (the last kind, the bytes)."""
    kind = "none"
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("lines", "value", "value", "text", "truncate", "crlf"))
        if kind == "lines":
            lines = _lines_op(rng, lines)
        elif kind == "value":
            lines = _value_op(rng, lines)
        elif kind == "text":
            lines = _text_op(rng, "\n".join(lines)).split("\n")
        elif kind == "truncate":
            lines = lines[: rng.randrange(len(lines) + 1)]
    sep = "\r\n" if kind == "crlf" else "\n"
    data = (sep.join(lines) + sep).encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        kind, at = "bytes", rng.randrange(len(data) + 1)
        data = data[:at] + rng.choice((*BAD_UTF8, rng.randbytes(4))) + data[at:]
    return kind, data


def random_profile_input(rng: random.Random, texts: Sequence[str]) -> tuple[str, bytes]:
    roll = rng.random()
    if roll < 0.05:
        return "random_bytes", rng.randbytes(rng.randrange(600))
    if roll < 0.1:
        alphabet = "abc_=[]\"'.\n 0123456789#{},-:"
        return "random_text", "".join(rng.choice(alphabet) for _ in range(300)).encode()
    return mutate_profile(rng, rng.choice(texts))


# ---------------------------------------------------------------- profile oracle

_NAME = r'(?:[A-Za-z_][\w-]*|"(?:[^"\\]|\\.)*")'
PROBLEM_LINE: Final = re.compile(rf"^{_NAME}(?:\.{_NAME}|\[\d+\])*( = .+)?: \S.*?( \(line \d+\))?$")
FORBIDDEN_IN_LINES: Final = ("traceback", "pydantic", "validationerror", "input should be")
MAX_LINE_CHARS: Final = 300


@dataclass
class ProfileFuzzReport:
    files: int = 0
    accepted: int = 0
    refused: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)  # first words of each refusal rule
    exceptions: list[str] = field(default_factory=list)
    outside_limits: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    longest_line: int = 0
    elapsed_s: float = 0.0

    def failures(self) -> list[str]:
        out = [f"exception: {e}" for e in self.exceptions[:5]]
        out += [f"accepted outside the limits: {e}" for e in self.outside_limits[:5]]
        out += [f"unreadable: {e}" for e in self.unreadable[:5]]
        out += [f"internal-error refusal: {e}" for e in self.internal_errors[:5]]
        return out

    def summary(self) -> dict[str, Any]:
        data = _plain(self)
        data["rules"] = dict(self.rules.most_common(15))
        data["internal_error_count"] = len(self.internal_errors)
        data["internal_error_causes"] = dict(Counter(e[:90] for e in self.internal_errors))
        data["files_per_s"] = round(self.files / self.elapsed_s) if self.elapsed_s else None
        return data


def independent_limit_problems(profile: Any) -> list[str]:
    """Re-check an accepted profile by hand, beside ``safety.limits.check_profile``."""
    from safety.limits import HARD_LIMITS as HARD
    from safety.limits import check_profile

    found = [str(v) for v in check_profile(profile, HARD)]
    irr = [c.irradiance_mw_cm2 for c in profile.channels]
    rules = {
        # the maxima less the ±10 % output tolerance: 50 / 1.1, rounded down
        "channels": 1 <= len(irr) <= 2 and all(10 <= x <= 45.45 for x in irr),
        "combined": sum(irr) * profile.duty_fraction <= 45.45,
        "duration": 0 < profile.duration_min <= HARD.session_max_min,
        "fluence": profile.planned_fluence_total_j_cm2 <= HARD.fluence_per_session_max_j_cm2,
        "interval": profile.min_interval_h >= HARD.min_interval_h,
        "per_week": 0 < profile.sessions_per_week <= HARD.sessions_per_week_max,
        "valid": profile.is_valid_on(FUZZ_TODAY),
    }
    return found + [name for name, ok in rules.items() if not ok]


class _ErrorLog(logging.Handler):
    """Keeps the loader's error log lines: the cause behind an internal-error refusal."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def judge_profile(
    data: bytes, check: Callable[[bytes], Any], report: ProfileFuzzReport, kind: str
) -> None:
    report.files += 1
    report.kinds[kind] += 1
    errors = _ErrorLog()
    logger = logging.getLogger("profiles")
    logger.addHandler(errors)
    try:
        _judge_profile(data, check, report, errors)
    finally:
        logger.removeHandler(errors)


def _judge_profile(
    data: bytes, check: Callable[[bytes], Any], report: ProfileFuzzReport, errors: _ErrorLog
) -> None:
    shown = data[:80].decode("utf-8", "backslashreplace")
    try:
        result = check(data)
    except Exception as exc:  # the finding itself: the CLI path must never raise
        report.exceptions.append(f"{type(exc).__name__}: {exc} for {shown!r}")
        return
    if result.profile is not None and not result.problems:
        report.accepted += 1
        broken = independent_limit_problems(result.profile)
        if broken:
            report.outside_limits.append(f"{broken} for {shown!r}")
        return
    report.refused += 1
    lines = [str(p) for p in result.problems]
    if not lines:
        report.unreadable.append(f"refused without a reason: {shown!r}")
    for line in lines:
        report.longest_line = max(report.longest_line, len(line))
        report.rules[line.partition(": ")[2][:40]] += 1
        lowered = line.lower()
        if "internal error" in lowered:
            report.internal_errors.append("; ".join(errors.lines) or f"{line} for {shown!r}")
        bad = [w for w in FORBIDDEN_IN_LINES if w in lowered]
        if bad or "\n" in line or len(line) > MAX_LINE_CHARS or not PROBLEM_LINE.match(line):
            report.unreadable.append(repr(line))


def cli_check() -> Callable[[bytes], Any]:
    """The CLI's own path: schema, hard (no site file) limits, signature, dates."""
    from firmware_host.profile_commands import check_bytes

    return lambda data: check_bytes(data, "fuzz.toml", None, today=FUZZ_TODAY)


def fuzz_profiles(
    files: int, seed: int, *, check: Callable[[bytes], Any] | None = None
) -> ProfileFuzzReport:
    rng = random.Random(seed)
    texts = builtin_texts()
    run = check or cli_check()
    report = ProfileFuzzReport()
    started = time.perf_counter()
    for _ in range(files):
        kind, data = random_profile_input(rng, texts)
        judge_profile(data, run, report, kind)
    report.elapsed_s = time.perf_counter() - started
    return report


# ---------------------------------------------------------------- command line


def _plain(report: DecoderFuzzReport | ProfileFuzzReport) -> dict[str, Any]:
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
    dec.add_argument("--frames", type=int, default=1_000_000)
    prof = sub.add_parser("profiles", help="mutated profile files through the CLI's check")
    prof.add_argument("--files", type=int, default=10_000)
    for p in (dec, prof):
        p.add_argument("--seed", type=int, default=None, help="default: random, printed")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(f"seed {seed}", file=sys.stderr)
    if args.target == "decoder":
        report: DecoderFuzzReport | ProfileFuzzReport = fuzz_decoder(args.frames, seed)
    else:
        _quiet_loader_log()
        report = fuzz_profiles(args.files, seed)
    print(json.dumps({"target": args.target, "seed": seed, **report.summary()}, indent=1))
    failures = report.failures()
    for line in failures:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if failures else 0


def _quiet_loader_log() -> None:
    logging.getLogger("profiles").propagate = False  # findings are in the report


if __name__ == "__main__":
    sys.exit(main())
