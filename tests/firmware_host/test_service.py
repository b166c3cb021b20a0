"""sd_notify datagrams, the watchdog pacing, and the journald log format."""

from __future__ import annotations

import configparser
import io
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_host.service import (
    JournalFormatter,
    Notifier,
    WatchdogPinger,
    configure_logging,
    stream_is_journal,
    watchdog_interval_s,
)
from hil.rigs.clock import VirtualClock


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    try:
        yield sock, path
    finally:
        sock.close()


def _received(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096))
        except BlockingIOError:
            return out


def test_ready_status_watchdog_stopping_datagrams(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path})
    try:
        assert notifier.enabled
        assert notifier.ready("state ready")
        assert notifier.status("treating\n12 min left")
        assert notifier.watchdog()
        assert notifier.stopping()
    finally:
        notifier.close()
    assert _received(sock) == [
        b"READY=1\nSTATUS=state ready",
        b"STATUS=treating 12 min left",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]


def test_abstract_namespace_address() -> None:
    name = f"nirpad-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        try:
            assert notifier.ready()
        finally:
            notifier.close()
        assert sock.recv(100) == b"READY=1"


def test_silent_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[object] = []
    monkeypatch.setattr("firmware_host.service.socket.socket", lambda *a: created.append(a))
    for env in ({}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "relative/path"}):
        notifier = Notifier(env)
        assert not notifier.enabled
        assert not notifier.ready() and not notifier.watchdog()
        notifier.close()
    assert created == []


def test_missing_reader_never_raises(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    try:
        assert notifier.ready() is False
    finally:
        notifier.close()


def test_full_queue_does_not_block(notify_socket: tuple[socket.socket, str]) -> None:
    _, path = notify_socket  # nobody reads: the receive queue fills up
    notifier = Notifier({"NOTIFY_SOCKET": path})
    try:
        results = [notifier.watchdog() for _ in range(5000)]
    finally:
        notifier.close()
    assert results[0] is True and results[-1] is False  # dropped, not blocked


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "5000000"}) == 2.5
    assert (
        watchdog_interval_s({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": str(os.getpid())}) == 2.5
    )
    assert watchdog_interval_s({"WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None


def test_pinger_pings_only_when_ticked(notify_socket: tuple[socket.socket, str]) -> None:
    sock, path = notify_socket
    clock = VirtualClock()
    notifier = Notifier({"NOTIFY_SOCKET": path})
    pinger = WatchdogPinger(notifier, 2.5, clock)
    try:
        pinger.tick()  # first tick pings at once
        for _ in range(19):  # 19 ticks of 125 ms = 2.375 s: not yet
            clock.advance(0.125)
            pinger.tick()
        assert _received(sock) == [b"WATCHDOG=1"]
        clock.advance(0.125)
        pinger.tick()
        assert _received(sock) == [b"WATCHDOG=1"]
        clock.advance(60.0)  # a hung loop: time passes, nobody ticks, nothing is sent
        assert _received(sock) == []
    finally:
        notifier.close()


def test_journal_format_has_priority_prefixes() -> None:
    formatter = JournalFormatter("%(name)s: %(message)s")
    lines = {
        level: formatter.format(logging.LogRecord("nirpad.x", level, "f", 1, "m", None, None))
        for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
    }
    assert lines == {
        logging.DEBUG: "<7>nirpad.x: m",
        logging.INFO: "<6>nirpad.x: m",
        logging.WARNING: "<4>nirpad.x: m",
        logging.ERROR: "<3>nirpad.x: m",
        logging.CRITICAL: "<2>nirpad.x: m",
    }
    multi = logging.LogRecord("n", logging.ERROR, "f", 1, "a\nb", None, None)
    assert formatter.format(multi) == "<3>n: a\n<3>b"  # each line, tracebacks too


def test_journal_stream_must_match_stderr(tmp_path: Path) -> None:
    with open(tmp_path / "log", "w") as stream:
        st = os.fstat(stream.fileno())
        assert stream_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not stream_is_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not stream_is_journal(stream, {})
    assert not stream_is_journal(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


@pytest.mark.parametrize("journal", [True, False])
def test_configure_logging_picks_the_format(tmp_path: Path, journal: bool) -> None:
    root = logging.getLogger()
    old_level = root.level
    with open(tmp_path / "log", "w") as stream:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"} if journal else {}
        handler = configure_logging(logging.INFO, stream, env)
        try:
            logging.getLogger("nirpad.test").warning("rail cut")
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)
    text = (tmp_path / "log").read_text()
    if journal:
        assert text == "<4>nirpad.test: rail cut\n"
    else:
        assert text.endswith("WARNING nirpad.test: rail cut\n") and not text.startswith("<")


def test_unit_file_has_what_systemd_needs() -> None:
    import firmware_host

    unit_path = Path(firmware_host.__file__).parent / "systemd" / "nirpad.service"
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(unit_path)
    svc = unit["Service"]
    assert svc["Type"] == "notify"
    assert svc["Restart"] == "on-failure"
    assert svc["RestartPreventExitStatus"] == "2"  # `nirpad run`'s usage errors
    assert svc["WatchdogSec"] == "5"
    assert svc["User"] == "nirpad" and svc["StateDirectory"] == "nirpad"
    assert svc["ExecStart"] == "/usr/bin/nirpad run --port /dev/ttyUSB0 --state-dir /var/lib/nirpad"
    assert svc["RestrictAddressFamilies"] == "AF_UNIX"  # no network listener, ever
    assert unit["Install"]["WantedBy"] == "multi-user.target dev-ttyUSB0.device"


@pytest.mark.parametrize(
    ("options", "code"),
    [([], 1), (["--time-scale", "5"], 2)],
    ids=["no-board-retried", "usage-not-retried"],
)
def test_under_the_journal_the_reason_a_start_failed_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: list[str], code: int
) -> None:
    """``journalctl -p err -u nirpad`` must show why the controller did not start: its
    last line, ``nirpad: ...``, carries the error priority (a line without one is
    journald's default, info), as every logged line carries its own."""
    from firmware_host.cli import main

    with open(tmp_path / "journal", "w", encoding="utf-8") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        monkeypatch.setattr("sys.stderr", stream)
        argv = ["run", "--port", str(tmp_path / "no-board"), "--rail-file", str(tmp_path / "rail")]
        assert main([*argv, "--state-dir", str(tmp_path / "state"), *options]) == code
    lines = (tmp_path / "journal").read_text(encoding="utf-8").splitlines()
    assert lines[-1].startswith("<3>nirpad: "), lines
    assert all(line.startswith("<") for line in lines), lines
