"""The POSIX fast path of the transport: a pyserial port read and written on its fd."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
import tty
from collections.abc import Iterator

import pytest
import serial

from drivers import transport
from drivers.transport import PosixFdPort, open_port, read_available


@pytest.fixture
def pty_port() -> Iterator[tuple[PosixFdPort, int]]:
    """``open_port`` on the slave of a fresh pty; the test holds the master."""
    master, slave = os.openpty()
    tty.setraw(master)
    port = open_port(os.ttyname(slave), baudrate=115200, write_timeout_s=0.5)
    os.close(slave)
    assert isinstance(port, PosixFdPort)
    yield port, master
    port.close()
    with contextlib.suppress(OSError):  # a test may have hung up already
        os.close(master)


def read_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes from a blocking fd (a pty hands them on in pieces)."""
    data = b""
    while len(data) < size:
        data += os.read(fd, size - len(data))
    return data


def test_reads_what_is_there_and_nothing_when_nothing_is(
    pty_port: tuple[PosixFdPort, int],
) -> None:
    port, master = pty_port
    assert port.read(4096) == b""
    os.write(master, b"\x01\x02\x00")
    deadline_s = time.monotonic() + 10.0  # the pty hands the bytes on a moment later
    while port.in_waiting < 3 and time.monotonic() < deadline_s:
        select.select([port.fileno()], [], [], 0.01)
    assert port.in_waiting == 3
    assert read_available(port) == b"\x01\x02\x00"
    assert port.read(4096) == b""


def test_writes_go_straight_to_the_fd(pty_port: tuple[PosixFdPort, int]) -> None:
    port, master = pty_port
    assert port.write(b"frame\x00") == 6
    assert read_exactly(master, 6) == b"frame\x00"
    assert port.fileno() == port.serial.fileno()


def test_a_write_that_does_not_fit_at_once_finishes_through_pyserial(
    pty_port: tuple[PosixFdPort, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, master = pty_port
    real_write = os.write
    monkeypatch.setattr(transport.os, "write", lambda fd, data: real_write(fd, data[:2]))
    assert port.write(b"abcdef") == 6
    monkeypatch.undo()
    assert read_exactly(master, 6) == b"abcdef"


def test_a_full_buffer_on_write_falls_back_to_pyserial(
    pty_port: tuple[PosixFdPort, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = pty_port
    fallback: list[bytes] = []
    monkeypatch.setattr(port.serial, "write", fallback.append)

    def full(fd: int, data: bytes) -> int:
        raise BlockingIOError(errno.EAGAIN, "full")

    monkeypatch.setattr(transport.os, "write", full)
    assert port.write(b"abc") == 3
    assert fallback == [b"abc"]


def test_a_failed_write_is_a_serial_error(
    pty_port: tuple[PosixFdPort, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = pty_port

    def broken(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(transport.os, "write", broken)
    with pytest.raises(serial.SerialException, match="write failed"):
        port.write(b"abc")


def test_a_hung_up_pty_is_a_serial_error_on_read(pty_port: tuple[PosixFdPort, int]) -> None:
    port, master = pty_port
    assert port.read(10) == b""
    os.close(master)  # the other end hangs up
    with pytest.raises(serial.SerialException):
        port.read(10)


def test_readable_but_empty_is_a_disconnect(
    pty_port: tuple[PosixFdPort, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = pty_port
    monkeypatch.setattr(transport.os, "read", lambda fd, size: b"")
    monkeypatch.setattr(transport.select, "select", lambda r, w, x, t: (r, [], []))
    with pytest.raises(serial.SerialException, match="returned no data"):
        port.read(10)


def test_bytes_that_arrive_between_the_read_and_the_check_are_read_not_a_disconnect(
    pty_port: tuple[PosixFdPort, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = pty_port
    reads = iter([b"", b"\x01\x00"])
    monkeypatch.setattr(transport.os, "read", lambda fd, size: next(reads))
    monkeypatch.setattr(transport.select, "select", lambda r, w, x, t: (r, [], []))
    assert port.read(10) == b"\x01\x00"


def test_an_interrupted_read_is_nothing_yet(
    pty_port: tuple[PosixFdPort, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, _ = pty_port

    def interrupted(fd: int, size: int) -> bytes:
        raise InterruptedError(errno.EINTR, "interrupted")

    monkeypatch.setattr(transport.os, "read", interrupted)
    assert port.read(10) == b""


def test_a_closed_port_has_no_fd_and_reads_fail(pty_port: tuple[PosixFdPort, int]) -> None:
    port, _ = pty_port
    port.close()
    with pytest.raises(serial.SerialException):
        port.fileno()
    with pytest.raises(serial.SerialException):
        port.read(10)


def test_other_urls_keep_their_pyserial_object() -> None:
    port = open_port("loop://", baudrate=115200, write_timeout_s=0.5)
    try:
        assert not isinstance(port, PosixFdPort)
    finally:
        port.close()


def test_a_port_another_process_holds_is_refused_as_busy() -> None:
    """Two controllers on one board (each with its own state directory) would both read
    its frames and both send it commands: the second ``open_port`` is refused, the
    first one's port keeps working."""
    master, slave = os.openpty()
    tty.setraw(master)
    try:
        first = open_port(os.ttyname(slave), baudrate=115200, write_timeout_s=0.5)
        try:
            with pytest.raises(transport.BoardDisconnectedError) as caught:
                open_port(os.ttyname(slave), baudrate=115200, write_timeout_s=0.5)
            assert caught.value.code == "busy"
            assert "in use by another program" in str(caught.value)
            assert first.write(b"still\x00") == 6
            assert read_exactly(master, 6) == b"still\x00"
        finally:
            first.close()
        open_port(os.ttyname(slave), baudrate=115200, write_timeout_s=0.5).close()  # free again
    finally:
        os.close(slave)
        os.close(master)
