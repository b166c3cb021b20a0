"""Running under systemd: sd_notify, the watchdog ping, and journald-friendly logs.

Owns: the ``NOTIFY_SOCKET`` datagram protocol (READY=1, STATUS=..., WATCHDOG=1,
STOPPING=1), written by hand over a non-blocking socket so a missing or slow reader
can never stall the event loop; the watchdog pacing (half of ``WATCHDOG_USEC``, pinged
from the loop's tick hook, so a hung loop stops the pings and systemd restarts us);
the stderr log format (``<N>`` priority prefixes when stderr is the journal), and
the ``<3>`` of a command's error line there (``error_line``).

Does not own the loop, the controller or what the status text says. Without
``NOTIFY_SOCKET`` every notification is a silent no-op, which is the normal case
outside systemd.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Final, TextIO

log = logging.getLogger(__name__)

# syslog priorities, as journald reads them from a "<N>" line prefix (sd-daemon.h).
_PRIORITY_BY_LEVEL: Final = (
    (logging.CRITICAL, 2),
    (logging.ERROR, 3),
    (logging.WARNING, 4),
    (logging.INFO, 6),
)
_DEBUG_PRIORITY: Final = 7


class Notifier:
    """Sends sd_notify datagrams to $NOTIFY_SOCKET; a no-op when it is not set."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        environ = os.environ if env is None else env
        address = environ.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        self._sock: socket.socket | None = None
        if address.startswith("@"):
            address = "\0" + address[1:]  # Linux abstract namespace
        if address.startswith(("/", "\0")):
            self._address = address
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        elif address:
            log.warning("ignoring NOTIFY_SOCKET=%r: not a Unix socket address", address)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, message: str) -> bool:
        """Send one datagram (``KEY=value`` lines). Never blocks, never raises."""
        if self._sock is None or self._address is None:
            return False
        try:
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:  # BlockingIOError included: a full queue drops the ping
            log.debug("sd_notify %r not sent: %s", message, exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.notify("STOPPING=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """Half of $WATCHDOG_USEC, or None when systemd's watchdog is not for this process."""
    environ = os.environ if env is None else env
    usec = environ.get("WATCHDOG_USEC", "")
    pid = environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1e6 / 2


class WatchdogPinger:
    """Call ``tick()`` from the event loop's tick hook; it pings every ``interval_s``.

    The ping comes only from the loop thread, so if the loop hangs, the pings stop and
    systemd's watchdog restarts the service (and the board's lease has already turned
    the light off).
    """

    def __init__(self, notifier: Notifier, interval_s: float, clock: Callable[[], float]) -> None:
        self._notifier = notifier
        self._interval_s = interval_s
        self._clock = clock
        self._next_s = clock()

    def tick(self) -> None:
        now_s = self._clock()
        if now_s >= self._next_s:
            self._notifier.watchdog()
            self._next_s = now_s + self._interval_s


class JournalFormatter(logging.Formatter):
    """``<N>logger: message``: journald takes N as the syslog priority, adds the time."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.splitlines() or [""])


def syslog_priority(levelno: int) -> int:
    for level, priority in _PRIORITY_BY_LEVEL:
        if levelno >= level:
            return priority
    return _DEBUG_PRIORITY


def stream_is_journal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """True when $JOURNAL_STREAM names this very stream (device:inode), as systemd sets."""
    environ = os.environ if env is None else env
    dev_ino = environ.get("JOURNAL_STREAM", "")
    if ":" not in dev_ino:
        return False
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return False
    return dev_ino == f"{st.st_dev}:{st.st_ino}"


def error_line(message: str, stream: TextIO | None = None) -> str:
    """``nirpad: message``, as a command's last word on stderr; under journald prefixed
    ``<3>`` (err), so the reason a service stopped is an error there, not journald's
    default priority (info) for a line without one."""
    out = sys.stderr if stream is None else stream
    prefix = f"<{syslog_priority(logging.ERROR)}>" if stream_is_journal(out) else ""
    return f"{prefix}nirpad: {message}"


def configure_logging(
    level: int = logging.INFO,
    stream: TextIO | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Log to stderr: journald priorities under systemd, time stamps otherwise."""
    out = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(out)
    if stream_is_journal(out, env):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
