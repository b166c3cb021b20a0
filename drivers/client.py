"""The host's board client: one serial link to the LED driver board.

Owns: opening a port by URL (pyserial's ``serial_for_url``, nothing else), the HELLO/INFO
handshake with its version and calibration-CRC checks, host sequence numbers, matching
ACK/NAK to pending commands, resending a command with the SAME seq after ``ack_timeout_s``
(bounded by ``retries``), superseding an older output command with a newer one, and
turning every port failure into ``BoardDisconnectedError``. It also keeps ``last_rx_s`` and
link counters for the safety layer.

Does NOT own: what telemetry means, lease renewal, or any decision about the light; those
belong to ``safety``. A backend only moves bytes (``PortLike``); framing lives once, here
and in ``drivers.protocol``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drivers.errors import (
    BoardDisconnectedError,
    CalibrationCrcError,
    CommandRejectedError,
    DriverTimeoutError,
    ProtocolVersionError,
)
from drivers.protocol import (
    ACK_FRAME_BYTES,
    PROTOCOL_VERSION,
    Ack,
    ChannelSetpoint,
    ClearFaults,
    DecoderStats,
    Event,
    FrameDecoder,
    FrameEncoder,
    Hello,
    Info,
    Message,
    Nak,
    NakCode,
    OutputOff,
    SetOutput,
    Telemetry,
    calibration_crc,
    encode_frame,
)
from drivers.transport import (
    DISCONNECT_ERRORS,
    PortLike,
    disconnected,
    open_port,
    port_fileno,
    read_available,
    set_wake_bytes,
    wait_readable,
)

__all__ = [
    "BoardClient",
    "BoardInput",
    "CommandAcked",
    "CommandRejected",
    "CommandTimedOut",
    "HostCommand",
    "LinkCounters",
    "PortLike",
    "open_board",
]

_log = logging.getLogger(__name__)

HostCommand = SetOutput | OutputOff | ClearFaults

_GIVEN_UP_KEPT = 64
"""Commands no longer awaited whose late reply still counts as one: about a second of
renewals, far more than a reply can be late, far fewer than the 65536 seqs."""


@dataclass(frozen=True, slots=True)
class CommandAcked:
    seq: int
    message: HostCommand


@dataclass(frozen=True, slots=True)
class CommandRejected:
    seq: int
    message: HostCommand
    code: NakCode


@dataclass(frozen=True, slots=True)
class CommandTimedOut:
    seq: int
    message: HostCommand


BoardInput = Telemetry | Event | CommandAcked | CommandRejected | CommandTimedOut


@dataclass(slots=True)
class LinkCounters:
    """Link health for the safety layer. Decoder errors are in ``BoardClient.stats``.

    ``lease_renewals`` counts SET_OUTPUT commands (each one carries a fresh lease);
    ``naks_by_code`` counts the NAKs that answered a pending command, by code.
    """

    commands_sent: int = 0
    lease_renewals: int = 0
    retries: int = 0
    timeouts: int = 0
    naks: int = 0
    naks_by_code: dict[NakCode, int] = field(default_factory=dict)
    superseded: int = 0
    unmatched_replies: int = 0  # a late ACK/NAK: for a command no longer awaited (superseded
    # or timed out) that this client sent, once
    unknown_replies: int = 0  # an ACK/NAK for no command awaited or given up: never sent,
    # answered already (a duplicate), or given up too long ago; proves nothing
    unsolicited: int = 0  # INFO outside a handshake, or a host command echoed back


@dataclass(slots=True)
class _Pending:
    seq: int
    message: HostCommand
    frame: bytes
    sent_s: float
    resends: int = 0


def open_board(
    url: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    baudrate: int = 115200,
    ack_timeout_s: float = 0.06,
    retries: int = 3,
    write_timeout_s: float = 0.25,
) -> BoardClient:
    """Open ``url`` (device path, pty path, ``loop://``, ``socket://``); no handshake yet."""
    port = open_port(url, baudrate=baudrate, write_timeout_s=write_timeout_s)
    return BoardClient(
        port, port_name=url, clock=clock, ack_timeout_s=ack_timeout_s, retries=retries
    )


class BoardClient:
    """Framing, sequence numbers and retries over one ``PortLike``. Not thread-safe."""

    def __init__(
        self,
        port: PortLike,
        *,
        port_name: str,
        clock: Callable[[], float] = time.monotonic,
        ack_timeout_s: float = 0.06,
        retries: int = 3,
    ) -> None:
        self.port_name = port_name
        self.info: Info | None = None
        self.last_rx_s: float | None = None
        self.counters = LinkCounters()
        self._port = port
        self._clock = clock
        self._ack_timeout_s = ack_timeout_s
        self._retries = retries
        self._decoder = FrameDecoder()
        self._encoder = FrameEncoder()
        self._last_set_output = SetOutput(0, ())  # see set_output
        self._next_seq = 0
        self._pending: dict[int, _Pending] = {}
        self._given_up: dict[int, None] = {}  # seqs no longer awaited, oldest first
        self._unsolicited_seen: set[str] = set()  # message types logged as unsolicited
        self._backlog: list[BoardInput] = []
        self._fd_less = False  # the backend has shown it has no fd (it never gains one)
        self._wake_bytes: int | None = None  # asked of the port; None: not yet (a port
        # handed over by an earlier client may still hold that client's threshold)
        self._awaiting_reply = False  # request()/handshake() block for one reply
        self._hello_refusals = 0  # NAKs (not BAD_VERSION) of this handshake's HELLO
        self._lost: BoardDisconnectedError | None = None  # after frames were decoded: the
        # inputs go out first, and the next poll or wait raises it

    @property
    def stats(self) -> DecoderStats:
        return self._decoder.stats

    @property
    def pending_seqs(self) -> tuple[int, ...]:
        return tuple(self._pending)

    # ------------------------------------------------------------ port access

    def fileno(self) -> int | None:
        """The fd the event loop can select on; None when the backend has none."""
        if self._fd_less:
            return None
        fd = port_fileno(self._port)
        self._fd_less = fd is None
        return fd

    def wait_readable(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` until ``poll`` has something to read; True if it has."""
        if self._backlog or self._lost is not None:
            return True  # inputs kept by handshake()/request() wait in memory, not on the fd
        return self._wait_port(timeout_s)

    def idle(self, timeout_s: float) -> None:
        """Let ``timeout_s`` pass without touching the port (after it was lost).

        A backend with its own time base (the in-process simulator) advances it;
        a real port sleeps, since select() on a hung-up fd returns at once and would spin.
        """
        idle = getattr(self._port, "idle", None)
        if idle is not None:
            idle(timeout_s)
        elif timeout_s > 0:
            time.sleep(timeout_s)

    # Each port access maps a failure to BoardDisconnectedError (try/except rather than
    # transport.port_errors: these run for every frame, and the happy path is free).

    def _wait_port(self, timeout_s: float) -> bool:
        self._raise_if_lost()
        self._update_wake_bytes()
        try:
            return wait_readable(self._port, timeout_s)
        except DISCONNECT_ERRORS as exc:
            raise disconnected(self.port_name, "wait", exc) from exc

    def _update_wake_bytes(self) -> None:
        """Once the board streams, a lone ACK does not wake the reader: it is read with
        the next frame, at most a telemetry period later, well inside the ACK timeout.
        Anything else (telemetry, EVENT, NAK) wakes it as before.

        Any byte wakes it before the handshake, while a caller blocks for one reply, and
        while a frame is half read (its rest may be shorter than an ACK).
        """
        wanted = (
            1
            if self._awaiting_reply or self.info is None or self._decoder.holds_partial
            else ACK_FRAME_BYTES + 1
        )
        if wanted == self._wake_bytes:
            return
        try:
            set_wake_bytes(self._port, wanted)
        except DISCONNECT_ERRORS as exc:
            raise disconnected(self.port_name, "configure", exc) from exc
        self._wake_bytes = wanted

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except DISCONNECT_ERRORS as exc:
            raise disconnected(self.port_name, "write", exc) from exc

    def _read_available(self) -> bytes:
        try:
            return read_available(self._port)
        except DISCONNECT_ERRORS as exc:
            raise disconnected(self.port_name, "read", exc) from exc

    def close(self) -> None:
        try:
            self._port.close()
        except DISCONNECT_ERRORS as exc:
            _log.warning("closing %s: %s", self.port_name, exc)

    # ------------------------------------------------------------ commands

    def _take_seq(self) -> int:
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        return seq

    def _send(self, message: HostCommand) -> int:
        if not isinstance(message, ClearFaults):
            self._supersede_output_commands()
        seq = self._take_seq()
        self._given_up.pop(seq, None)  # the seq wrapped round: a new command now
        frame = self._encoder.encode(message, seq)
        self._pending[seq] = _Pending(seq, message, frame, self._clock())
        self.counters.commands_sent += 1
        self._write(frame)
        return seq

    def _supersede_output_commands(self) -> None:
        """Setpoints are absolute: a newer output command makes an older pending one moot."""
        if not self._pending:
            return  # the usual case: the last renewal's ACK is in
        for seq, pending in list(self._pending.items()):
            if not isinstance(pending.message, ClearFaults):
                del self._pending[seq]
                self._give_up(seq)
                self.counters.superseded += 1

    def _give_up(self, seq: int) -> None:
        """Stop waiting for ``seq``; a late reply to it is still one (``unmatched_replies``)."""
        given_up = self._given_up
        given_up[seq] = None
        if len(given_up) > _GIVEN_UP_KEPT:
            del given_up[next(iter(given_up))]

    def set_output(self, channels: tuple[ChannelSetpoint, ...], lease_ms: int) -> int:
        """Send SET_OUTPUT (absolute; channels not listed are off); return its seq."""
        self.counters.lease_renewals += 1
        last = self._last_set_output
        if last.channels is not channels or last.lease_ms != lease_ms:
            last = self._last_set_output = SetOutput(lease_ms, tuple(channels))
        return self._send(last)  # a renewal of the same setpoints: the same frozen message

    def output_off(self) -> int:
        return self._send(OutputOff())

    def clear_faults(self) -> int:
        return self._send(ClearFaults())

    # ------------------------------------------------------------ receiving

    def poll(self) -> list[BoardInput]:
        """Non-blocking: read what is there, decode, match replies, resend or time out.

        A port that fails once the frames are decoded (a resend, setting its wake
        threshold) does not cost them: they are returned, and the next ``poll`` (or wait)
        raises the disconnect.
        """
        self._raise_if_lost()
        inputs, self._backlog = self._backlog, []
        data = self._read_available()
        if data:
            self._receive(data, inputs)
        try:
            if self._pending:
                self._check_retries(inputs)
            self._update_wake_bytes()
        except BoardDisconnectedError as exc:
            self._lost = exc
        return inputs

    def _raise_if_lost(self) -> None:
        lost, self._lost = self._lost, None
        if lost is not None:
            raise lost

    def _receive(self, data: bytes, inputs: list[BoardInput]) -> None:
        frames = self._decoder.feed(data)
        if frames:
            self.last_rx_s = self._clock()
        for frame in frames:
            message = frame.message
            if isinstance(message, Telemetry | Event):
                inputs.append(message)
            else:
                converted = self._on_message(message)
                if converted is not None:
                    inputs.append(converted)

    def _on_message(self, message: Message) -> BoardInput | None:
        if isinstance(message, Telemetry | Event):
            return message
        if isinstance(message, Ack | Nak):
            return self._match_reply(message)
        self._note_unsolicited(type(message).__name__)
        return None

    def _note_unsolicited(self, name: str) -> None:
        """Counted; logged once per message type (a board can send one every frame)."""
        self.counters.unsolicited += 1
        if name not in self._unsolicited_seen:
            self._unsolicited_seen.add(name)
            _log.debug("%s: ignoring unsolicited %s (counted after this)", self.port_name, name)

    def _match_reply(self, reply: Ack | Nak) -> BoardInput | None:
        pending = self._pending.pop(reply.echo_seq, None)
        if pending is None:
            if reply.echo_seq in self._given_up:  # late: the first reply to it
                del self._given_up[reply.echo_seq]
                self.counters.unmatched_replies += 1
            else:
                self.counters.unknown_replies += 1
            return None
        if isinstance(reply, Ack):
            return CommandAcked(pending.seq, pending.message)
        counters = self.counters
        counters.naks += 1
        counters.naks_by_code[reply.code] = counters.naks_by_code.get(reply.code, 0) + 1
        return CommandRejected(pending.seq, pending.message, reply.code)

    def _check_retries(self, inputs: list[BoardInput]) -> None:
        """Resend what is due (same seq); after the last resend, a ``CommandTimedOut``."""
        now_s = self._clock()
        due = [p for p in self._pending.values() if now_s - p.sent_s >= self._ack_timeout_s]
        for pending in due:
            seq = pending.seq
            if pending.resends >= self._retries:
                del self._pending[seq]
                self._give_up(seq)
                self.counters.timeouts += 1
                inputs.append(CommandTimedOut(seq, pending.message))
                continue
            pending.resends += 1
            pending.sent_s = now_s
            self.counters.retries += 1
            _log.debug("%s: resend seq %d (%d)", self.port_name, seq, pending.resends)
            self._write(pending.frame)

    # ------------------------------------------------------------ blocking helpers

    def request(self, msg: HostCommand, timeout_s: float) -> Ack:
        """Send ``msg`` and wait for its ACK; other inputs are kept for the next ``poll``."""
        seq = self._send(msg)
        deadline_s = self._clock() + timeout_s
        self._awaiting_reply = True
        try:
            return self._await_reply(msg, seq, deadline_s)
        finally:
            self._awaiting_reply = False

    def _await_reply(self, msg: HostCommand, seq: int, deadline_s: float) -> Ack:
        while True:
            reply: CommandAcked | CommandRejected | CommandTimedOut | None = None
            for item in self.poll():  # every other input is kept, in order, for poll()
                if reply is None and not isinstance(item, Telemetry | Event) and item.seq == seq:
                    reply = item
                else:
                    self._backlog.append(item)
            if reply is not None:
                return self._ack_or_raise(reply)
            remaining_s = deadline_s - self._clock()
            if remaining_s <= 0:
                self._pending.pop(seq, None)
                raise DriverTimeoutError(
                    f"no ACK for {msg!r} seq {seq}", port=self.port_name, code="request_timeout"
                )
            self._wait_port(min(remaining_s, self._ack_timeout_s))

    def _ack_or_raise(self, reply: CommandAcked | CommandRejected | CommandTimedOut) -> Ack:
        if isinstance(reply, CommandAcked):
            return Ack(reply.seq)
        if isinstance(reply, CommandRejected):
            raise CommandRejectedError(
                f"board rejected {reply.message!r}: {reply.code.name}",
                port=self.port_name,
                nak_code=reply.code,
                seq=reply.seq,
            )
        raise DriverTimeoutError(
            f"no ACK for {reply.message!r} seq {reply.seq} after {self._retries} resends",
            port=self.port_name,
            code="command_timeout",
        )

    def handshake(self, timeout_s: float = 1.0) -> Info:
        """HELLO -> INFO (echoing HELLO's seq); check protocol version and calibration CRC."""
        self._awaiting_reply = True
        try:
            info = self._await_info(self._take_seq(), timeout_s)
        finally:
            self._awaiting_reply = False
        if info.protocol_version != PROTOCOL_VERSION:
            raise self._version_error(info.protocol_version)
        actual = calibration_crc(info.calibration)
        if actual != info.calibration_crc:
            raise CalibrationCrcError(
                f"calibration CRC {actual:#06x} != INFO's {info.calibration_crc:#06x}",
                port=self.port_name,
                expected_crc=info.calibration_crc,
                actual_crc=actual,
            )
        self.info = info
        return info

    def _version_error(self, board_version: int | None) -> ProtocolVersionError:
        return ProtocolVersionError(
            f"board protocol version {board_version}, host speaks {PROTOCOL_VERSION}",
            port=self.port_name,
            board_version=board_version,
            host_version=PROTOCOL_VERSION,
        )

    def _await_info(self, seq: int, timeout_s: float) -> Info:
        hello = encode_frame(Hello(), seq)
        version_errors_before = self.stats.version_errors
        self._hello_refusals = 0
        deadline_s = self._clock() + timeout_s
        next_send_s = self._clock()
        while True:
            now_s = self._clock()
            if now_s >= next_send_s:
                self._write(hello)  # HELLO is idempotent: resend with the same seq
                next_send_s = now_s + self._ack_timeout_s
            info = self._scan_for_info(seq)
            if info is not None:
                return info
            if now_s >= deadline_s:
                if self.stats.version_errors > version_errors_before:
                    raise self._version_error(None)
                refused = self._hello_refusals
                shown = f" (HELLO refused {refused} times)" if refused else ""
                raise DriverTimeoutError(
                    f"no INFO within {timeout_s} s{shown}",
                    port=self.port_name,
                    code="handshake_timeout",
                )
            self._wait_port(max(0.0, min(next_send_s, deadline_s) - now_s))

    def _scan_for_info(self, seq: int) -> Info | None:
        """Decode what is there; INFO for ``seq`` is returned, the rest kept for ``poll``."""
        info: Info | None = None
        for frame in self._decoder.feed(self._read_available()):
            self.last_rx_s = self._clock()
            msg = frame.message
            if isinstance(msg, Info) and msg.echo_seq == seq:
                info = msg
            elif isinstance(msg, Nak) and msg.echo_seq == seq:
                if msg.code is NakCode.BAD_VERSION:
                    raise self._version_error(None)
                self._hello_refusals += 1
                if self._hello_refusals == 1:  # a board may refuse it in every frame
                    _log.warning("%s: HELLO rejected with %s", self.port_name, msg.code.name)
            else:
                converted = self._on_message(msg)
                if converted is not None:
                    self._backlog.append(converted)
        return info
