"""Byte transport under the board client: open a port by URL, read, write, wait.

Owns: the ``PortLike`` protocol a backend must satisfy, opening through pyserial's
``serial_for_url`` (device paths, pty paths, ``loop://``, ``socket://``; an unknown scheme is
an error, never a silent fallback), and mapping every port failure (``SerialException``,
``OSError``, ``termios.error``) to ``BoardDisconnectedError``. Does not own framing,
sequence numbers or retries (``drivers.client``) or any meaning of the bytes.
"""

from __future__ import annotations

import errno
import io
import os
import select
import termios
import time
from typing import Final, Protocol

import serial
import serial.serialposix

from drivers.errors import BoardDisconnectedError, UnsupportedPortError

DISCONNECT_ERRORS = (serial.SerialException, OSError, termios.error)
READ_CHUNK = 4096
MAX_READS_PER_CALL = 16
FALLBACK_POLL_S = 0.001
_LOCKED: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})  # the exclusive flock refused


class PortLike(Protocol):
    """What a backend must provide: pyserial objects and hil's SimPort both fit.

    Optional: ``wait_readable(timeout_s) -> bool`` (the in-process simulator advances its
    virtual clock there); without it the client ``select()``s on ``fileno()``. And
    ``set_wake_bytes(n_bytes)``: report readable only once ``n_bytes`` wait (see
    ``set_wake_bytes`` below); without it the port wakes its reader for any byte.
    """

    def read(self, size: int = 1) -> bytes: ...  # non-blocking (timeout=0)
    def write(self, data: bytes) -> int | None: ...
    @property
    def in_waiting(self) -> int: ...
    def close(self) -> None: ...
    def fileno(self) -> int: ...  # may raise io.UnsupportedOperation


def open_port(url: str, *, baudrate: int, write_timeout_s: float) -> PortLike:
    """Open ``url`` non-blocking (``timeout=0``) through ``serial.serial_for_url``.

    A device is opened ``exclusive`` (pyserial's ``flock``): a port another process
    holds so (a second ``nirpad run`` on the same board) is refused as ``busy``, never
    shared, since both would read the board's frames and both command its outputs.
    """
    try:
        port: PortLike = serial.serial_for_url(
            url, baudrate=baudrate, timeout=0, write_timeout=write_timeout_s, exclusive=True
        )
    except ValueError as exc:  # pyserial: "invalid URL, protocol 'xxx' not known"
        raise UnsupportedPortError(f"cannot open {url!r}: {exc}", port=url, code="bad_url") from exc
    except DISCONNECT_ERRORS as exc:
        if isinstance(exc, serial.SerialException) and exc.errno in _LOCKED:
            raise BoardDisconnectedError(
                f"{url} is in use by another program (another nirpad run?); stop it first",
                port=url, code="busy",
            ) from exc  # fmt: skip
        raise BoardDisconnectedError(
            f"cannot open {url!r}: {exc}", port=url, code="open_failed"
        ) from exc
    if isinstance(port, serial.serialposix.Serial):
        return PosixFdPort(port)
    return port


_AGAIN: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})
_CC: Final = 6  # termios.tcgetattr: [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


class PosixFdPort:
    """A pyserial POSIX port read and written straight on its non-blocking fd.

    pyserial opens and configures the port (baud rate, raw mode) and closes it; the
    50 Hz frame path skips its ``read``/``write`` wrappers, which ``select()`` before
    every call (docs/performance.md). The contract is pyserial's with ``timeout=0``:
    ``read`` returns what is there (``b""`` if nothing); a port that is readable but
    gives no data has gone (``SerialException``, as pyserial says it); a write that
    does not fit at once falls back to pyserial's, with its write timeout.
    """

    def __init__(self, serial_port: serial.serialposix.Serial) -> None:
        self.serial = serial_port
        self._fd: int = serial_port.fileno()

    def set_wake_bytes(self, n_bytes: int) -> None:
        """The tty's VMIN: ``select`` reports the port readable once ``n_bytes`` wait.

        Reads are not affected: the fd is non-blocking, so ``read`` still returns what is
        there at once. A hang-up is still readable at once. pyserial sets VMIN again only
        when it reconfigures the port, which the client never does after opening it.
        """
        attrs = termios.tcgetattr(self._fd)
        attrs[_CC][termios.VMIN] = n_bytes
        termios.tcsetattr(self._fd, termios.TCSANOW, attrs)

    def fileno(self) -> int:
        if self._fd < 0:
            raise serial.PortNotOpenError()  # as pyserial's own, after close
        return self._fd

    def read(self, size: int = 1) -> bytes:
        data = self._read_once(size)
        if data or not select.select([self._fd], [], [], 0)[0]:
            return data  # a raw tty (VMIN=0) reads b"" when it has nothing
        data = self._read_once(size)  # readable: bytes may have come since the read
        if not data:  # readable, and still empty: gone, as pyserial has it
            raise serial.SerialException(
                "device reports readiness to read but returned no data (device disconnected?)"
            )
        return data

    def _read_once(self, size: int) -> bytes:
        try:
            return os.read(self._fd, size)
        except OSError as exc:
            if exc.errno in _AGAIN:
                return b""
            raise serial.SerialException(f"read failed: {exc}") from exc

    def write(self, data: bytes) -> int | None:
        try:
            written = os.write(self._fd, data)
        except OSError as exc:
            if exc.errno not in _AGAIN:
                raise serial.SerialException(f"write failed: {exc}") from exc
            written = 0
        if written < len(data):
            self.serial.write(data[written:])
        return len(data)

    @property
    def in_waiting(self) -> int:
        return int(self.serial.in_waiting)

    def close(self) -> None:
        self.serial.close()
        self._fd = -1  # the number may be reused by another file: never touch it again


def disconnected(port_name: str, action: str, exc: BaseException) -> BoardDisconnectedError:
    """The error for a port failure (one of ``DISCONNECT_ERRORS``) during ``action``."""
    return BoardDisconnectedError(f"{action} failed: {exc}", port=port_name, code="disconnected")


def set_wake_bytes(port: PortLike, n_bytes: int) -> None:
    """Ask ``port`` to wake its reader only once ``n_bytes`` wait, if it can.

    The board client asks for more than an ACK while the board streams, so a lone ACK
    does not wake the event loop: it is read with the next frame, in the same wake-up
    (docs/architecture.md, "The loop's wake-ups"). A port without the feature wakes for
    any byte, which is only slower.
    """
    setter = getattr(port, "set_wake_bytes", None)
    if setter is not None:
        setter(n_bytes)


def port_fileno(port: PortLike) -> int | None:
    try:
        return port.fileno()
    except (io.UnsupportedOperation, AttributeError):
        return None


def wait_readable(port: PortLike, timeout_s: float) -> bool:
    """Block up to ``timeout_s`` until ``port`` has bytes; True if it has."""
    waiter = getattr(port, "wait_readable", None)
    if waiter is not None:
        return bool(waiter(timeout_s))
    fd = port_fileno(port)
    if fd is None:
        return _poll_in_waiting(port, timeout_s)
    readable, _, _ = select.select([fd], [], [], max(0.0, timeout_s))
    return bool(readable)


def _poll_in_waiting(port: PortLike, timeout_s: float) -> bool:
    """For fd-less backends without ``wait_readable`` (``loop://``): poll in real time."""
    deadline = time.monotonic() + max(0.0, timeout_s)
    while port.in_waiting <= 0:
        if time.monotonic() >= deadline:
            return False
        time.sleep(FALLBACK_POLL_S)
    return True


def read_available(port: PortLike) -> bytes:
    """Everything the port has right now (bounded, so a flood cannot starve the loop).

    ``read`` is used rather than ``in_waiting``: a hung-up pty reports 0 waiting bytes
    but is readable, and only ``read`` raises the error that reveals the disconnect.
    """
    first = port.read(READ_CHUNK)
    if len(first) < READ_CHUNK:
        return first  # the usual case: one frame or two, one read, no copy
    chunks = [first]
    for _ in range(MAX_READS_PER_CALL - 1):
        chunk = port.read(READ_CHUNK)
        if not chunk:
            break
        chunks.append(chunk)
        if len(chunk) < READ_CHUNK:
            break
    return b"".join(chunks)
