"""Wire protocol: CRC check value, COBS, message round trips, decoder robustness."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocol import (
    CHECK_VALUE,
    MAX_CAL_POINTS,
    MAX_CHANNELS,
    SERIAL_LEN,
    Ack,
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelSetpoint,
    ChannelTelemetry,
    ClearFaults,
    Event,
    EventKind,
    FrameDecoder,
    Hello,
    Info,
    Message,
    MsgType,
    Nak,
    NakCode,
    OutputOff,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    crc16_ccitt_false,
    decode_payload,
    encode_frame,
    encode_payload,
    frame_bytes,
    telemetry_channel_records,
    telemetry_payload,
)
from drivers.protocol.cobs import CobsDecodeError, cobs_decode, cobs_encode, cobs_encode_delimited
from drivers.protocol.framing import MAX_ENCODED

SETTINGS = settings(max_examples=60, deadline=None)

# ------------------------------------------------------------------ CRC


def test_crc_check_value_pins_ccitt_false() -> None:
    assert crc16_ccitt_false(b"123456789") == CHECK_VALUE == 0x29B1


def test_crc_is_not_xmodem_or_kermit() -> None:
    assert crc16_ccitt_false(b"123456789") not in (0x31C3, 0x2189)


# ------------------------------------------------------------------ COBS

RUN_254 = bytes(range(1, 255))
RUN_255 = bytes(range(1, 256))


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", b"\x01"),
        (b"\x00", b"\x01\x01"),
        (b"\x00\x00", b"\x01\x01\x01"),
        (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
        (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
        (RUN_254, b"\xff" + RUN_254 + b"\x01"),
        (b"\x00" + RUN_254, b"\x01\xff" + RUN_254 + b"\x01"),
        (RUN_255, b"\xff" + RUN_254 + b"\x02\xff"),
        (RUN_255[1:] + b"\x00", b"\xff" + RUN_255[1:] + b"\x01\x01"),
    ],
)
def test_cobs_known_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


def test_cobs_decoder_accepts_the_form_without_trailing_group() -> None:
    assert cobs_decode(b"\xff" + RUN_254) == RUN_254


@pytest.mark.parametrize("bad", [b"\x05\x01", b"\x02\x00", b"\x00"])
def test_cobs_rejects_invalid_blocks(bad: bytes) -> None:
    with pytest.raises(CobsDecodeError):
        cobs_decode(bad)


@SETTINGS
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(min_size=252, max_size=257),
        st.lists(st.sampled_from([0, 1, 255]), min_size=250, max_size=520).map(bytes),
    )
)
@pytest.mark.slow
def test_cobs_round_trip(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert len(encoded) <= len(data) + len(data) // 254 + 1
    assert cobs_decode(encoded) == data


# ------------------------------------------------------------------ messages

u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)
ma = st.integers(0, 0xFFFF).map(lambda x: x / 10)
deg_c = st.integers(-0x8000, 0x7FFF).map(lambda x: x / 100)
setpoint = st.builds(ChannelSetpoint, st.integers(0, 255), ma, u16, u8)
cal_point = st.builds(CalibrationPoint, ma, u16.map(lambda x: x / 100))
channel_cal = st.builds(
    ChannelCalibration, u16, ma, st.lists(cal_point, max_size=MAX_CAL_POINTS).map(tuple)
)
serial_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=SERIAL_LEN)
MESSAGES = st.one_of(
    st.builds(Hello, u8),
    st.builds(SetOutput, u16, st.lists(setpoint, max_size=MAX_CHANNELS).map(tuple)),
    st.just(OutputOff()),
    st.just(ClearFaults()),
    st.builds(
        Info,
        u16,
        u8,
        st.tuples(u8, u8, u8),
        st.booleans(),
        u16.map(lambda x: x / 100),
        serial_text,
        st.lists(channel_cal, max_size=2).map(tuple),
        u16,
    ),
    st.builds(Ack, u16),
    st.builds(Nak, u16, st.sampled_from(NakCode)),
    st.builds(
        Telemetry,
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0x0F).map(TelemetryFlag),
        u16.map(BoardFault),
        deg_c,
        deg_c,
        deg_c,
        u16,
        u16,
        st.lists(st.builds(ChannelTelemetry, ma, u16, u8), max_size=MAX_CHANNELS).map(tuple),
    ),
    st.builds(Event, st.integers(0, 0xFFFFFFFF), st.sampled_from(EventKind), u16),
)


@SETTINGS
@given(MESSAGES, u16)
def test_every_message_round_trips(message: Message, seq: int) -> None:
    decoder = FrameDecoder()
    frames = decoder.feed(encode_frame(message, seq))
    assert [(f.seq, f.message) for f in frames] == [(seq, message)]
    assert decoder.stats.frames_dropped == 0


def test_unknown_fault_bits_survive_decoding() -> None:
    telemetry = Telemetry(0, TelemetryFlag.NONE, BoardFault(0x0100), 0, 0, 0, 0, 0, ())
    (frame,) = FrameDecoder().feed(encode_frame(telemetry, 0))
    assert isinstance(frame.message, Telemetry) and frame.message.faults


def test_steady_channel_records_are_shared_between_frames() -> None:
    def frame(uptime_ms: int, current_ma: float) -> bytes:
        channels = (ChannelTelemetry(current_ma, 0, 100), ChannelTelemetry(0.0, 0, 100))
        flags = TelemetryFlag.OUTPUT_ON
        return encode_frame(
            Telemetry(uptime_ms, flags, BoardFault.NONE, 33.0, 33.0, 40.0, 12000, 180, channels),
            uptime_ms,
        )

    first, second, changed = FrameDecoder().feed(
        frame(20, 349.8) + frame(40, 349.8) + frame(60, 350.0)
    )
    assert isinstance(first.message, Telemetry) and isinstance(second.message, Telemetry)
    assert isinstance(changed.message, Telemetry)
    assert first.message.uptime_ms == 20 and second.message.uptime_ms == 40
    assert second.message.channels is first.message.channels  # decoded once, frozen, shared
    assert changed.message.channels[0] == ChannelTelemetry(350.0, 0, 100)


# ------------------------------------------------------------------ decoder robustness

stream_messages = st.lists(MESSAGES, min_size=1, max_size=8)


def stream_of(messages: list[Message]) -> list[bytes]:
    return [encode_frame(m, i) for i, m in enumerate(messages)]


@SETTINGS
@given(stream_messages, st.data())
@pytest.mark.slow
def test_random_chunking_changes_nothing(messages: list[Message], data: st.DataObject) -> None:
    wire = b"".join(stream_of(messages))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=20)))
    decoder = FrameDecoder()
    frames = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        frames += decoder.feed(wire[start:end])
    assert [f.message for f in frames] == messages
    assert decoder.stats.frames_dropped == 0 and decoder.stats.sequence_gaps == 0


@SETTINGS
@given(stream_messages, st.data())
@pytest.mark.slow
def test_delimited_noise_between_frames_is_skipped(
    messages: list[Message], data: st.DataObject
) -> None:
    frames_wire = stream_of(messages)
    junk = [data.draw(st.binary(max_size=300)) + b"\x00" for _ in frames_wire]
    decoder = FrameDecoder()
    got = decoder.feed(b"".join(j + f for j, f in zip(junk, frames_wire, strict=True)))
    assert [f.message for f in got] == messages  # frames before and after junk survive
    assert decoder.stats.frames_dropped <= sum(j.count(0) for j in junk)


@SETTINGS
@given(stream_messages, st.data())
def test_truncated_frame_is_one_error_and_resyncs(
    messages: list[Message], data: st.DataObject
) -> None:
    frames_wire = stream_of(messages)
    victim = data.draw(st.integers(0, len(frames_wire) - 1))
    cut = data.draw(st.integers(1, len(frames_wire[victim]) - 2))
    frames_wire[victim] = frames_wire[victim][:cut] + b"\x00"  # link dropped mid-frame
    decoder = FrameDecoder()
    got = decoder.feed(b"".join(frames_wire))
    assert [f.message for f in got] == messages[:victim] + messages[victim + 1 :]
    assert decoder.stats.frames_dropped == 1
    assert decoder.stats.sequence_gaps == (1 if 0 < victim < len(messages) - 1 else 0)


@SETTINGS
@given(stream_messages, st.data())
def test_stream_ending_mid_frame_never_raises(messages: list[Message], data: st.DataObject) -> None:
    wire = b"".join(stream_of(messages))
    cut = data.draw(st.integers(0, len(wire)))
    decoder = FrameDecoder()
    got = decoder.feed(wire[:cut])
    assert [f.message for f in got] == messages[: wire[:cut].count(0)]
    assert decoder.stats.frames_dropped == 0


@SETTINGS
@given(stream_messages, st.data())
def test_bit_flip_inside_a_frame_drops_exactly_that_frame(
    messages: list[Message], data: st.DataObject
) -> None:
    frames_wire = stream_of(messages)
    victim = data.draw(st.integers(0, len(frames_wire) - 1))
    body = bytearray(frames_wire[victim][:-1])
    index = data.draw(st.integers(0, len(body) - 1))
    bit = data.draw(st.sampled_from([b for b in range(8) if body[index] ^ (1 << b)]))
    body[index] ^= 1 << bit  # stays non-zero: the frame boundaries are intact
    frames_wire[victim] = bytes(body) + b"\x00"
    decoder = FrameDecoder()
    got = decoder.feed(b"".join(frames_wire))
    assert [f.message for f in got] == messages[:victim] + messages[victim + 1 :]
    stats = decoder.stats
    assert stats.frames_dropped == 1  # in exactly one counter
    assert stats.framing_errors + stats.crc_errors + stats.decode_errors == 1


@SETTINGS
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(noise: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(noise)
    got = decoder.feed(b"\x00" + encode_frame(Ack(7), 1))
    assert [f.message for f in got] == [Ack(7)]


def frame_body(version: int, msg_type: int, seq: int, payload: bytes) -> bytes:
    body = struct.pack("<BBH", version, msg_type, seq) + payload
    return body + struct.pack("<H", crc16_ccitt_false(body))


def delimited(body: bytes) -> bytes:
    return cobs_encode(body) + b"\x00"


BAD_FRAMES = {
    "framing_errors": [
        b"\x05\x01\x00",  # COBS code runs past the end
        delimited(b"\x01\x20\x00"),  # shorter than a header and a CRC
        b"\x01" * (MAX_ENCODED + 1) + b"\x00",  # overlong
    ],
    "crc_errors": [delimited(frame_body(1, 0x20, 0, b"\x01\x00")[:-1] + b"\x00")],
    "version_errors": [delimited(frame_body(2, 0x20, 0, b"\x01\x00"))],
    "decode_errors": [
        delimited(frame_body(1, 0x7F, 0, b"")),  # unknown type
        delimited(frame_body(1, 0x20, 0, b"\x01")),  # ACK too short
        delimited(frame_body(1, 0x20, 0, b"\x01\x00\x00")),  # trailing byte
        delimited(frame_body(1, 0x21, 0, b"\x01\x00\xee")),  # unknown NAK code
    ],
}


@pytest.mark.parametrize(
    ("counter", "bad"),
    [(counter, bad) for counter, bads in BAD_FRAMES.items() for bad in bads],
)
def test_each_bad_frame_lands_in_exactly_one_counter(counter: str, bad: bytes) -> None:
    decoder = FrameDecoder()
    got = decoder.feed(encode_frame(Ack(1), 0) + bad + encode_frame(Ack(2), 1))
    assert [f.message for f in got] == [Ack(1), Ack(2)]
    assert getattr(decoder.stats, counter) == 1
    assert decoder.stats.frames_dropped == 1


def test_idle_delimiters_are_not_errors() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00\x00") == []
    assert decoder.stats.frames_dropped == 0


def test_sequence_gaps_and_duplicates_are_counted() -> None:
    decoder = FrameDecoder()
    wire = b"".join(encode_frame(Ack(0), seq) for seq in (0xFFFE, 0xFFFF, 0, 3, 3, 4))
    assert len(decoder.feed(wire)) == 6
    assert (decoder.stats.sequence_gaps, decoder.stats.duplicates) == (1, 1)
    decoder.reset_sequence()
    decoder.feed(encode_frame(Ack(0), 100))
    assert decoder.stats.sequence_gaps == 1


def test_overlong_frame_split_across_chunks_is_one_framing_error() -> None:
    decoder = FrameDecoder()
    overlong = b"\x01" * (MAX_ENCODED + 1)
    got = decoder.feed(overlong[:100])
    got += decoder.feed(overlong[100:] + b"\x01" * 50)  # past MAX_ENCODED: dropped whole
    got += decoder.feed(b"\x00" + encode_frame(Ack(7), 0))
    assert [f.message for f in got] == [Ack(7)]
    assert decoder.stats.framing_errors == 1


def test_channel_records_cut_short_are_a_decode_error() -> None:
    telemetry = Telemetry(
        1, TelemetryFlag.NONE, BoardFault.NONE, 30.0, 30.0, 30.0, 12000, 0,
        (ChannelTelemetry(100.0, 0, 100),),
    )  # fmt: skip
    body = cobs_decode(encode_frame(telemetry, 0)[:-1])
    payload = body[4:-2]
    claims_two = payload[:-6] + b"\x02" + payload[-5:]  # count 2, one 5-byte record
    decoder = FrameDecoder()
    assert decoder.feed(delimited(frame_body(1, 0x30, 0, claims_two))) == []
    assert decoder.stats.decode_errors == 1


# ------------------------------------------------------------------ the packed paths


def _reference_cobs_decode(encoded: bytes) -> bytes | None:
    """Byte-by-byte COBS decoding (None: invalid), as the specification reads."""
    out = bytearray()
    index = 0
    while index < len(encoded):
        code = encoded[index]
        if code == 0 or index + code > len(encoded):
            return None
        out += encoded[index + 1 : index + code]
        index += code
        if code != 0xFF and index < len(encoded):
            out.append(0)
    return bytes(out) if 0 not in encoded else None


@SETTINGS
@given(st.binary(max_size=254))
def test_cobs_decode_of_any_short_block_matches_the_reference(encoded: bytes) -> None:
    expected = _reference_cobs_decode(encoded)
    if expected is None:
        with pytest.raises(CobsDecodeError):
            cobs_decode(encoded)
    else:
        assert cobs_decode(encoded) == expected


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x11\x00\x22", RUN_254, RUN_255 + b"\x00"])
def test_cobs_encode_delimited_is_the_encoding_and_one_delimiter(data: bytes) -> None:
    assert cobs_encode_delimited(data) == cobs_encode(data) + b"\x00"


@pytest.mark.parametrize(
    "message",
    [
        Ack(7),
        SetOutput(200, (ChannelSetpoint(0, 512.3),)),
        Event(5, EventKind.BUTTON_DOWN),
        Telemetry(
            1234, TelemetryFlag.CONTACT, BoardFault.NONE, 33.2, 33.25, 35.0, 12000, 150,
            (ChannelTelemetry(512.3, 0, 100), ChannelTelemetry(0.0, 0, 100)),
        ),
    ],
)  # fmt: skip
def test_frame_bytes_of_a_packed_payload_is_the_frame_of_the_message(message: Message) -> None:
    msg_type, payload = encode_payload(message)
    assert frame_bytes(msg_type, 0x1234, payload) == encode_frame(message, 0x1234)


def test_frame_bytes_refuses_an_overlong_payload() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        frame_bytes(MsgType.TELEMETRY, 0, bytes(241))


def test_telemetry_payload_from_fields_is_the_telemetry_encoding() -> None:
    channels = (ChannelTelemetry(512.3, 10, 50), ChannelTelemetry(0.0, 0, 100))
    message = Telemetry(
        2**32 + 5, TelemetryFlag(0x0B), BoardFault.LED_OPEN, -1.5, 33.25, 70.01, 11900, 0, channels
    )
    packed = telemetry_payload(
        2**32 + 5, 0x0B, 0x10, -1.5, 33.25, 70.01, 11900, 0, telemetry_channel_records(channels)
    )
    assert packed == encode_payload(message)[1]


@pytest.mark.parametrize("field", ["skin_a_c", "skin_b_c", "board_c"])
def test_telemetry_payload_refuses_a_temperature_the_wire_cannot_carry(field: str) -> None:
    temps = {"skin_a_c": 30.0, "skin_b_c": 30.0, "board_c": 30.0} | {field: 400.0}
    with pytest.raises(ValueError, match=field):
        telemetry_payload(
            0, 0, 0, **temps, supply_mv=0, lease_remaining_ms=0, channel_records=b"\0"
        )


def test_set_output_renewed_with_a_new_lease_encodes_the_new_lease() -> None:
    channels = (ChannelSetpoint(0, 300.0), ChannelSetpoint(1, 100.0, 10, 50))
    first = encode_payload(SetOutput(200, channels))[1]
    assert encode_payload(SetOutput(200, channels))[1] == first
    assert encode_payload(SetOutput(300, channels))[1] != first
    assert decode_payload(MsgType.SET_OUTPUT, encode_payload(SetOutput(300, channels))[1]) == (
        SetOutput(300, channels)
    )


def test_repeated_set_output_payloads_decode_to_equal_messages() -> None:
    payloads = [encode_payload(SetOutput(lease, ()))[1] for lease in range(1, 200)]
    for payload in payloads + payloads:  # more distinct payloads than the decoder keeps
        decoded = decode_payload(MsgType.SET_OUTPUT, payload)
        assert encode_payload(decoded)[1] == payload
