"""The codec's memos: each side owns its own, they are bounded, and they change no bytes."""

from __future__ import annotations

from drivers.protocol import (
    Ack,
    BoardFault,
    ChannelSetpoint,
    ChannelTelemetry,
    FrameDecoder,
    FrameEncoder,
    MsgType,
    PayloadDecoder,
    PayloadEncoder,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    decode_payload,
    encode_frame,
    encode_payload,
)


def _telemetry(current_ma: float, faults: BoardFault = BoardFault.NONE) -> Telemetry:
    channels = (ChannelTelemetry(current_ma, 0, 100), ChannelTelemetry(0.0, 0, 100))
    return Telemetry(20, TelemetryFlag.OUTPUT_ON, faults, 33.0, 33.0, 40.0, 12000, 180, channels)


def _decoded(decoder: PayloadDecoder, message: Telemetry) -> Telemetry:
    decoded = decoder.decode(MsgType.TELEMETRY, encode_payload(message)[1])
    assert isinstance(decoded, Telemetry)
    return decoded


def test_two_decoders_never_share_what_they_built() -> None:
    wire = encode_frame(_telemetry(349.8, BoardFault.LED_OPEN), 0)
    host, board = FrameDecoder(), FrameDecoder()
    (first,), (again,), (other,) = host.feed(wire), host.feed(wire), board.feed(wire)
    assert isinstance(first.message, Telemetry) and isinstance(again.message, Telemetry)
    assert isinstance(other.message, Telemetry)
    assert again.message.channels is first.message.channels  # one side shares its own
    assert other.message == first.message
    assert other.message.channels is not first.message.channels  # the other built its own


def test_the_channel_memo_is_bounded_and_starts_over() -> None:
    decoder = PayloadDecoder()
    first = _decoded(decoder, _telemetry(0.1))
    assert _decoded(decoder, _telemetry(0.1)).channels is first.channels
    for step in range(2, 400):  # more distinct records than a decoder keeps
        _decoded(decoder, _telemetry(step / 10.0))
    rebuilt = _decoded(decoder, _telemetry(0.1))
    assert rebuilt.channels == first.channels and rebuilt.channels is not first.channels


def test_fault_flags_decode_as_the_plain_decoder_does_reserved_bits_too() -> None:
    decoder = PayloadDecoder()
    for bits in (*range(0, 0x200, 3), 0xFFFF):  # more distinct flags than a decoder keeps
        message = _telemetry(350.0, BoardFault(bits))
        payload = encode_payload(message)[1]
        decoded = _decoded(decoder, message)
        assert decoded == decode_payload(MsgType.TELEMETRY, payload) == message
        assert _decoded(decoder, message).faults == BoardFault(bits)


def test_a_renewed_set_output_decodes_to_the_message_already_built() -> None:
    decoder = PayloadDecoder()
    payload = encode_payload(SetOutput(200, (ChannelSetpoint(0, 300.0),)))[1]
    first = decoder.decode(MsgType.SET_OUTPUT, payload)
    assert decoder.decode(MsgType.SET_OUTPUT, payload) is first
    for lease_ms in range(1, 100):  # more distinct payloads than a decoder keeps
        decoder.decode(MsgType.SET_OUTPUT, encode_payload(SetOutput(lease_ms, ()))[1])
    rebuilt = decoder.decode(MsgType.SET_OUTPUT, payload)
    assert rebuilt == first and rebuilt is not first
    assert decoder.decode(MsgType.ACK, b"\x05\x00") == decode_payload(MsgType.ACK, b"\x05\x00")


def test_an_encoder_packs_a_renewal_once_and_a_new_lease_or_setpoint_anew() -> None:
    channels = (ChannelSetpoint(0, 300.0), ChannelSetpoint(1, 100.0, 10, 50))
    encoder = PayloadEncoder()
    _, first = encoder.encode(SetOutput(200, channels))
    _, renewed = encoder.encode(SetOutput(200, channels))
    assert renewed is first and first == encode_payload(SetOutput(200, channels))[1]
    longer = encoder.encode(SetOutput(300, channels))
    assert longer == encode_payload(SetOutput(300, channels))
    equal_channels = tuple(channels)  # the same tuple: still the renewal
    assert encoder.encode(SetOutput(300, equal_channels)) == longer
    other = (ChannelSetpoint(0, 310.0),)
    assert encoder.encode(SetOutput(300, other)) == encode_payload(SetOutput(300, other))
    assert encoder.encode(SetOutput(300, ())) == encode_payload(SetOutput(300, ()))
    assert encoder.encode(Ack(7)) == encode_payload(Ack(7))


def test_a_frame_encoder_writes_the_frames_encode_frame_writes() -> None:
    encoder = FrameEncoder()
    channels = (ChannelSetpoint(0, 300.0),)
    for seq in range(3):
        assert encoder.encode(SetOutput(200, channels), seq) == encode_frame(
            SetOutput(200, channels), seq
        )
    assert encoder.encode(_telemetry(1.0), 9) == encode_frame(_telemetry(1.0), 9)
