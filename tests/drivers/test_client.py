"""BoardClient against a fake port on a virtual clock: handshake, ACK/NAK, retries, errors."""

from __future__ import annotations

import errno
import os
import termios
from typing import Any

import pytest
import serial

from drivers.client import (
    BoardClient,
    CommandAcked,
    CommandRejected,
    CommandTimedOut,
    open_board,
)
from drivers.errors import (
    BoardDisconnectedError,
    CalibrationCrcError,
    CommandRejectedError,
    DriverError,
    DriverTimeoutError,
    ProtocolVersionError,
    UnsupportedPortError,
)
from drivers.protocol import (
    PROTOCOL_VERSION,
    Ack,
    BoardFault,
    ChannelSetpoint,
    ClearFaults,
    Event,
    EventKind,
    Hello,
    Info,
    Nak,
    NakCode,
    OutputOff,
    SetOutput,
    Telemetry,
    TelemetryFlag,
    calibration_crc,
    encode_frame,
)

SETPOINT = (ChannelSetpoint(0, 350.0),)
ACK_TIMEOUT_S = 0.06


def telemetry(uptime_ms: int = 20) -> Telemetry:
    return Telemetry(
        uptime_ms, TelemetryFlag.CONTACT, BoardFault.NONE, 30.0, 30.1, 35.0, 12000, 0, ()
    )


@pytest.fixture
def client(port: Any, clock: Any) -> BoardClient:
    return BoardClient(port, port_name="fake", clock=clock, ack_timeout_s=ACK_TIMEOUT_S, retries=3)


def run_until(client: BoardClient, clock: Any, until_s: float) -> list[Any]:
    """Poll the client until virtual time ``until_s``, collecting everything it yields."""
    inputs: list[Any] = []
    while clock() < until_s:
        inputs += client.poll()
        client.wait_readable(min(0.01, until_s - clock()))
    inputs += client.poll()
    return inputs


def host_seqs(board: Any, kind: type) -> list[int]:
    return [f.seq for f in board.received if isinstance(f.message, kind)]


# ------------------------------------------------------------------ handshake


def test_handshake_returns_info_echoing_hello_seq(client: BoardClient, board: Any) -> None:
    info = client.handshake()
    assert client.info is info
    assert info.echo_seq == board.received[0].seq
    assert isinstance(board.received[0].message, Hello)
    assert client.last_rx_s is not None


def test_handshake_resends_hello_with_the_same_seq(client: BoardClient, board: Any) -> None:
    board.ignore_first = 2
    info = client.handshake(timeout_s=1.0)
    seqs = host_seqs(board, Hello)
    assert len(seqs) == 3 and len(set(seqs)) == 1
    assert info.echo_seq == seqs[0]


def test_handshake_ignores_info_for_another_seq(client: BoardClient, board: Any) -> None:
    board.silent = True
    stale = Info(0x1234, PROTOCOL_VERSION, (1, 0, 0), True, 1.0, "X", (), calibration_crc(()))
    board.send(stale, 0.001)
    with pytest.raises(DriverTimeoutError) as caught:
        client.handshake(timeout_s=0.2)
    assert caught.value.code == "handshake_timeout"
    assert client.info is None


def test_handshake_version_mismatch_in_info(client: BoardClient, board: Any) -> None:
    board.info_changes = {"protocol_version": 2}
    with pytest.raises(ProtocolVersionError) as caught:
        client.handshake()
    assert caught.value.board_version == 2 and caught.value.host_version == 1
    assert client.info is None


def test_handshake_version_mismatch_in_frame_header(client: BoardClient, board: Any) -> None:
    board.header_version = 2
    with pytest.raises(ProtocolVersionError):
        client.handshake(timeout_s=0.3)
    assert client.stats.version_errors >= 1


def test_handshake_nak_bad_version(client: BoardClient, board: Any) -> None:
    board.silent = True
    board.send(Nak(0, NakCode.BAD_VERSION), 0.01)  # the client's first seq is 0
    with pytest.raises(ProtocolVersionError):
        client.handshake(timeout_s=0.3)


def test_handshake_calibration_crc_mismatch(client: BoardClient, board: Any) -> None:
    board.info_changes = {"calibration_crc": 0xBEEF}
    with pytest.raises(CalibrationCrcError) as caught:
        client.handshake()
    assert caught.value.expected_crc == 0xBEEF
    assert caught.value.code == "calibration_crc"
    assert client.info is None


def test_handshake_keeps_telemetry_for_poll(client: BoardClient, board: Any) -> None:
    board.send(telemetry(), 0.0)
    client.handshake()
    assert [type(x) for x in client.poll()] == [Telemetry]


# ------------------------------------------------------------------ commands


def test_set_output_is_acked_by_seq(client: BoardClient, board: Any, clock: Any) -> None:
    seq = client.set_output(SETPOINT, lease_ms=200)
    assert client.poll() == []  # non-blocking: nothing yet
    inputs = run_until(client, clock, clock() + 0.02)
    assert inputs == [CommandAcked(seq, SetOutput(200, SETPOINT))]
    assert board.received[0].message == SetOutput(200, SETPOINT)
    assert client.pending_seqs == ()


def test_nak_yields_command_rejected(client: BoardClient, board: Any, clock: Any) -> None:
    board.nak = NakCode.NO_CONTACT
    seq = client.set_output(SETPOINT, lease_ms=200)
    inputs = run_until(client, clock, clock() + 0.02)
    assert inputs == [CommandRejected(seq, SetOutput(200, SETPOINT), NakCode.NO_CONTACT)]
    assert client.counters.naks == 1


def test_retry_resends_the_same_seq(client: BoardClient, board: Any, clock: Any) -> None:
    board.ignore_first = 2
    seq = client.output_off()
    inputs = run_until(client, clock, clock() + 3 * ACK_TIMEOUT_S)
    assert inputs == [CommandAcked(seq, OutputOff())]
    assert host_seqs(board, OutputOff) == [seq, seq, seq]
    assert client.counters.retries == 2
    assert len(set(board.port.writes)) == 1  # byte-identical resends


def test_timeout_after_all_retries(client: BoardClient, board: Any, clock: Any) -> None:
    board.silent = True
    seq = client.clear_faults()
    inputs = run_until(client, clock, clock() + 10 * ACK_TIMEOUT_S)
    assert inputs == [CommandTimedOut(seq, ClearFaults())]
    assert host_seqs(board, ClearFaults) == [seq] * 4  # first send + 3 retries
    assert (client.counters.retries, client.counters.timeouts) == (3, 1)


def test_no_resend_before_ack_timeout(client: BoardClient, board: Any, clock: Any) -> None:
    board.silent = True
    client.output_off()
    run_until(client, clock, clock() + ACK_TIMEOUT_S * 0.9)
    assert len(board.received) == 1


def test_newer_output_command_supersedes_older(client: BoardClient, board: Any, clock: Any) -> None:
    board.silent = True
    first = client.set_output(SETPOINT, lease_ms=200)
    second = client.output_off()
    assert client.pending_seqs == (second,)
    board.send(Ack(first))
    board.silent = False
    inputs = run_until(client, clock, clock() + 5 * ACK_TIMEOUT_S)
    assert CommandAcked(second, OutputOff()) in inputs
    assert not any(getattr(x, "seq", None) == first for x in inputs)
    assert host_seqs(board, SetOutput) == [first]  # the superseded command is never resent
    assert client.counters.superseded == 1
    assert client.counters.unmatched_replies >= 1


def test_clear_faults_is_not_superseded_by_output(client: BoardClient, board: Any) -> None:
    board.silent = True
    clear = client.clear_faults()
    off = client.output_off()
    assert set(client.pending_seqs) == {clear, off}


@pytest.mark.slow
def test_seq_wraps_at_u16(client: BoardClient, board: Any, clock: Any, port: Any) -> None:
    listening, port.on_write = port.on_write, None  # the board hears none of the first
    for expected in range(0xFFFF):
        assert client.output_off() == expected  # each supersedes the one before
    port.on_write = listening
    assert client.output_off() == 0xFFFF
    assert client.output_off() == 0
    run_until(client, clock, clock() + 0.02)
    assert host_seqs(board, OutputOff) == [0xFFFF, 0]


def test_telemetry_and_events_pass_through(client: BoardClient, board: Any, clock: Any) -> None:
    board.send(telemetry(20))
    board.send(Event(21, EventKind.BUTTON_DOWN))
    inputs = client.poll()
    assert inputs == [telemetry(20), Event(21, EventKind.BUTTON_DOWN)]
    assert client.last_rx_s == clock()


def test_request_returns_ack_and_keeps_other_inputs(client: BoardClient, board: Any) -> None:
    board.send(telemetry(), 0.001)
    ack = client.request(OutputOff(), timeout_s=0.5)
    assert ack.echo_seq == board.received[-1].seq
    assert client.poll() == [telemetry()]


def test_request_keeps_inputs_that_arrive_with_the_ack(client: BoardClient, board: Any) -> None:
    board.silent = True
    board.send(Ack(0), 0.01)  # the client's first seq is 0
    board.send(telemetry(40), 0.01)
    board.send(Event(41, EventKind.BUTTON_UP), 0.01)
    assert client.request(OutputOff(), timeout_s=0.5) == Ack(0)
    assert client.poll() == [telemetry(40), Event(41, EventKind.BUTTON_UP)]


def test_request_raises_on_nak(client: BoardClient, board: Any) -> None:
    board.nak = NakCode.OVER_LIMIT
    with pytest.raises(CommandRejectedError) as caught:
        client.request(SetOutput(200, SETPOINT), timeout_s=0.5)
    assert caught.value.nak_code is NakCode.OVER_LIMIT
    assert caught.value.port == "fake"


@pytest.mark.parametrize("timeout_s", [0.1, 1.0])
def test_request_times_out(client: BoardClient, board: Any, timeout_s: float) -> None:
    board.silent = True
    with pytest.raises(DriverTimeoutError) as caught:
        client.request(OutputOff(), timeout_s=timeout_s)
    assert isinstance(caught.value, TimeoutError)
    assert client.pending_seqs == ()


# ------------------------------------------------------------------ disconnects and opening

DISCONNECTS = [
    serial.SerialException("device reports readiness to read but returned no data"),
    OSError(errno.EIO, "Input/output error"),
    termios.error(5, "Input/output error"),
]


@pytest.mark.parametrize("error", DISCONNECTS, ids=lambda e: type(e).__name__)
def test_disconnect_on_read(client: BoardClient, port: Any, error: BaseException) -> None:
    port.fail_with = error
    with pytest.raises(BoardDisconnectedError) as caught:
        client.poll()
    assert caught.value.__cause__ is error
    assert (caught.value.port, caught.value.code) == ("fake", "disconnected")
    assert isinstance(caught.value, ConnectionError)


@pytest.mark.parametrize("error", DISCONNECTS, ids=lambda e: type(e).__name__)
def test_disconnect_on_write(client: BoardClient, port: Any, error: BaseException) -> None:
    port.fail_with = error
    with pytest.raises(BoardDisconnectedError) as caught:
        client.set_output(SETPOINT, lease_ms=100)
    assert caught.value.__cause__ is error


def test_disconnect_of_a_real_pty() -> None:
    master, slave = os.openpty()
    client = open_board(os.ttyname(slave))
    os.close(slave)
    try:
        os.write(master, encode_frame(telemetry(), 0))
        assert client.wait_readable(1.0)
        assert client.poll() == [telemetry()]
        os.close(master)
        with pytest.raises(BoardDisconnectedError):
            client.wait_readable(1.0)
            client.poll()
    finally:
        client.close()


def test_unknown_url_scheme_is_refused() -> None:
    with pytest.raises(UnsupportedPortError) as caught:
        open_board("bogus://nowhere")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, DriverError)
    assert caught.value.port == "bogus://nowhere"


def test_missing_device_is_a_disconnect() -> None:
    with pytest.raises(BoardDisconnectedError) as caught:
        open_board("/dev/nirpad-does-not-exist")
    assert caught.value.code == "open_failed"


def test_loop_url_opens_and_round_trips_bytes() -> None:
    client = open_board("loop://")
    try:
        assert client.fileno() is None
        client.output_off()  # loop:// echoes the host's own frame back
        assert client.wait_readable(1.0)
        assert client.poll() == []  # a host message from the "board" is ignored...
        assert client.stats.frames_ok == 1  # ...but it was framed and decoded
    finally:
        client.close()


def test_idle_uses_the_backend_time_base_or_sleeps(mocker: Any) -> None:
    """After the port is lost the loop still waits: virtual time in-process, else a sleep."""

    class VirtualPort:
        def __init__(self) -> None:
            self.idled: list[float] = []

        def idle(self, timeout_s: float) -> None:
            self.idled.append(timeout_s)

    virtual = VirtualPort()
    BoardClient(virtual, port_name="sim").idle(0.02)  # type: ignore[arg-type]
    assert virtual.idled == [0.02]
    sleep = mocker.patch("drivers.client.time.sleep")
    BoardClient(object(), port_name="/dev/ttyUSB0").idle(0.02)  # type: ignore[arg-type]
    sleep.assert_called_once_with(0.02)


def test_a_reply_to_a_command_never_sent_is_not_a_late_reply(
    client: BoardClient, board: Any, clock: Any
) -> None:
    """Only the first late reply to a command this client gave up on counts as one: an
    ACK for a seq never sent, or a second ACK of one answered, proves nothing."""
    board.silent = True
    first = client.set_output(SETPOINT, lease_ms=200)
    client.output_off()  # supersedes the first
    for reply in (Ack(0xBEEF), Ack(first), Ack(first)):
        board.send(reply)
    run_until(client, clock, clock() + ACK_TIMEOUT_S / 2)
    assert client.counters.unmatched_replies == 1  # the late ACK of the superseded one
    assert client.counters.unknown_replies == 2  # a seq never sent, and the duplicate


def test_a_late_reply_to_a_command_that_timed_out_is_a_late_reply(
    client: BoardClient, board: Any, clock: Any
) -> None:
    board.silent = True
    seq = client.output_off()
    inputs = run_until(client, clock, clock() + 5 * ACK_TIMEOUT_S)
    assert any(isinstance(x, CommandTimedOut) for x in inputs)
    board.send(Ack(seq))
    run_until(client, clock, clock() + ACK_TIMEOUT_S / 2)
    assert (client.counters.unmatched_replies, client.counters.unknown_replies) == (1, 0)
