"""Decoder fuzzing (CI size): mutated, random and intact frames through ``FrameDecoder``.

The oracle is ``hil.tools.fuzz``: no exception; every decoded frame is byte-identical to a
frame that was really sent whole; ok + dropped equals the delimited segments, counted
independently; every intact frame after a delimiter comes out. In the strict streams
(only 1–3 bit errors per body, which CRC-16/CCITT always detects) any other frame
fails. The long run (``python -m hil.tools.fuzz decoder --frames 1000000``) is in
docs/reliability.md. The last tests show the oracle itself can fail.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

import drivers.protocol.framing as framing
from drivers.protocol import (
    ChannelSetpoint,
    DecoderStats,
    Frame,
    FrameDecoder,
    SetOutput,
    encode_frame,
)
from drivers.protocol.cobs import cobs_decode
from hil.tools.fuzz import (
    DecoderFuzzReport,
    flip_body_bits,
    flip_data_bits,
    fuzz_decoder,
    random_message,
    random_wire_frame,
)

CI_FRAMES = 20_000
SEED = 20260601


def test_every_generated_message_round_trips() -> None:
    """The generator makes only valid frames, so 'intact' really means decodable."""
    rng = random.Random(SEED)
    kinds = set()
    for seq in range(3000):
        message = random_message(rng)
        kinds.add(type(message).__name__)
        (frame,) = FrameDecoder().feed(encode_frame(message, seq))
        assert frame == Frame(seq, message)
    assert len(kinds) == 9  # every message type of protocol version 1


@pytest.mark.slow
def test_mixed_fuzz_finds_nothing_and_accounts_for_every_frame() -> None:
    report = fuzz_decoder(CI_FRAMES, SEED)
    assert report.failures() == []
    assert report.items >= CI_FRAMES and report.lost_intact == 0
    assert report.decoded >= report.must_decode >= report.intact * 0.8
    assert report.stats["frames_ok"] + _dropped(report) == report.segments
    for counter in ("framing_errors", "crc_errors", "decode_errors", "version_errors"):
        assert report.stats[counter] > 0, f"the fuzz never reached {counter}"
    kinds = {"flip", "insert", "delete", "truncate", "splice", "replace", "swap", "noise",
             "random_crc_frame", "strict_data_flips", "strict_body_flips"}  # fmt: skip
    assert kinds <= set(report.mutated)


@pytest.mark.slow
def test_up_to_three_bit_errors_never_decode() -> None:
    """CRC-16/CCITT has Hamming distance 4: no 1–3 bit error may pass, least of all a
    SET_OUTPUT nobody sent; each damaged frame is exactly one CRC error."""
    report = fuzz_decoder(CI_FRAMES // 2, SEED + 1, strict_every=1)
    assert report.strict_spurious == []
    assert report.strict_miscounted == 0
    assert report.stats["crc_errors"] == sum(report.mutated.values())
    assert report.decoded == report.intact
    assert report.failures() == []


@pytest.mark.parametrize("flips", [1, 2, 3])
def test_strict_mutators_make_exactly_that_many_bit_errors(flips: int) -> None:
    rng = random.Random(flips)
    for _ in range(300):
        wire = random_wire_frame(rng)
        body = cobs_decode(wire[:-1])
        for bad in (flip_data_bits(rng, wire, flips), flip_body_bits(rng, wire, flips)):
            assert bad.count(0) == 1 and bad.endswith(b"\x00")
            damaged = cobs_decode(bad[:-1])
            errors = sum(bin(a ^ b).count("1") for a, b in zip(body, damaged, strict=True))
            assert 1 <= errors <= flips


# ---------------------------------------------------------------- the oracle can fail


def _weak_check(data: bytes) -> int:
    return sum(data) & 0x0F  # a 4-bit checksum: one random error in 16 slips through


def test_oracle_catches_a_weak_checksum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(framing, "crc16_ccitt_false", _weak_check)  # encoder and decoder
    report = fuzz_decoder(2000, SEED, strict_every=1)
    assert report.strict_spurious
    assert any("undetected" in line for line in report.failures())


class _Inventing(FrameDecoder):
    """Decodes honestly, then adds a SET_OUTPUT that was never sent."""

    def feed(self, data: bytes) -> list[Frame]:
        frames = super().feed(data)
        if frames:
            self.stats.frames_ok -= 1  # keep the accounting right: only the lie is wrong
            forged = SetOutput(500, (ChannelSetpoint(0, 800.0),))
            frames[-1] = Frame(frames[-1].seq, forged)
        return frames


class _Raising(FrameDecoder):
    def feed(self, data: bytes) -> list[Frame]:
        if 0x7E in data:
            raise IndexError("decoder bug")
        return super().feed(data)


class _Miscounting(FrameDecoder):
    def __init__(self) -> None:
        super().__init__(stats=_ForgetfulStats())


class _ForgetfulStats(DecoderStats):
    @property
    def frames_dropped(self) -> int:
        return self.framing_errors + self.crc_errors  # forgets decode and version errors


@pytest.mark.parametrize(
    ("factory", "strict_every", "expected"),
    [
        (_Inventing, 1, "undetected"),
        (_Inventing, 1000, "collisions"),
        (_Raising, 4, "exception"),
        (_Miscounting, 4, "segments"),
    ],
)
def test_oracle_catches_a_broken_decoder(
    factory: Callable[[], FrameDecoder], strict_every: int, expected: str
) -> None:
    report = fuzz_decoder(2000, SEED, decoder_factory=factory, strict_every=strict_every)
    assert any(expected in line for line in report.failures()), report.failures()


def test_intact_frame_lost_after_garbage_is_reported() -> None:
    class Forgetful(FrameDecoder):
        def feed(self, data: bytes) -> list[Frame]:
            frames = super().feed(data)
            self.stats.frames_ok -= len(frames[:1])
            self.stats.crc_errors += len(frames[:1])
            return frames[1:]  # drops the first good frame of every chunk

    report = fuzz_decoder(2000, SEED, decoder_factory=Forgetful)
    assert report.lost_intact > 0
    assert any("intact" in line for line in report.failures())


def _dropped(report: DecoderFuzzReport) -> int:
    s = report.stats
    return s["framing_errors"] + s["crc_errors"] + s["decode_errors"] + s["version_errors"]
