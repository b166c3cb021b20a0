"""The control socket against slow and unkind clients, over real sockets: a slow client
holds up nobody and is cut off after the whole-request deadline; a command whose client
gave up is never carried out; deep nesting, lone surrogates, bad bytes, oversize
requests and requests of too many values get a clear refusal, the last before they are
parsed."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from firmware_host.control import ControlServer
from firmware_host.control_client import (
    MAX_REQUEST_BYTES,
    ControlClientError,
    ControlReply,
    send,
)
from firmware_host.control_request import (
    MAX_JSON_DEPTH,
    MAX_STRINGS,
    MAX_STRUCTURE_BYTES,
    REPLY_MARGIN_S,
    answer_deadline,
    decode_request,
    nesting_depth,
)

T = TypeVar("T")


class FakeController:
    """Records each call and the thread it ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def command(self, name: str, args: dict[str, Any] | None = None) -> ControlReply:
        self.calls.append((name, threading.current_thread().name))
        return ControlReply(True, 0, f"{name} accepted")

    def status(self) -> dict[str, Any]:
        self.calls.append(("status", threading.current_thread().name))
        return {"state": "ready"}


class ThreadLoop:
    """Runs each call on one 'loop' thread, in order."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="loop")

    def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
        return self.pool.submit(fn)


@pytest.fixture
def loop() -> Iterator[ThreadLoop]:
    fake = ThreadLoop()
    try:
        yield fake
    finally:
        fake.pool.shutdown(wait=True)


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


def _serve(tmp_path: Path, controller: Any, loop: Any, **kwargs: Any) -> ControlServer:
    srv = ControlServer(tmp_path, controller, loop, **kwargs)
    srv.start()
    return srv


def _connect(tmp_path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(tmp_path / "control.sock"))
    return sock


def _raw(tmp_path: Path, payload: bytes) -> dict[str, Any]:
    """Send ``payload`` as it is (the server may stop reading early) and read the reply."""
    with _connect(tmp_path) as sock:
        # Refused before the end: the answer is waiting all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    decoded = json.loads(reply)
    assert isinstance(decoded, dict)
    return decoded


@pytest.mark.timeout(30)
def test_a_slow_client_does_not_delay_another_clients_status(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    srv = _serve(tmp_path, controller, loop, read_deadline_s=60.0)
    try:
        with _connect(tmp_path) as slow:
            slow.sendall(b'{"cmd": "sta')  # and then nothing: it holds its connection
            reply = send(tmp_path, {"cmd": "status"}, timeout_s=10.0)
            assert reply is not None and reply["ok"] and reply["data"] == {"state": "ready"}
            slow.setblocking(False)
            with pytest.raises(BlockingIOError):
                slow.recv(1)  # still being read, not answered or cut: it held nobody up
    finally:
        srv.close()


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_byte_at_a_time_client_is_cut_off_after_the_whole_request_deadline(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    """Each byte comes well within the deadline; the request as a whole does not."""
    srv = _serve(tmp_path, controller, loop, read_deadline_s=0.5)
    try:
        with _connect(tmp_path) as slow:
            for byte in b'{"cmd": "status"}\n':
                time.sleep(0.1)
                try:
                    slow.send(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    break  # cut off
            reply = json.loads(slow.recv(65536))
    finally:
        srv.close()
    assert reply["ok"] is False and reply["exit_code"] == 2
    assert reply["message"] == "the request did not arrive whole within 0.5 s"
    assert controller.calls == []


@pytest.mark.timeout(30)
def test_clients_beyond_the_cap_are_told_busy_at_once(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    srv = _serve(tmp_path, controller, loop, read_deadline_s=60.0, max_clients=1)
    try:
        with _connect(tmp_path) as slow:
            slow.sendall(b"{")
            reply = send(tmp_path, {"cmd": "status"}, timeout_s=10.0)
    finally:
        srv.close()
    assert reply is not None and reply["ok"] is False and "busy" in reply["message"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"[" * 100_000 + b"\n", f"nested more than {MAX_JSON_DEPTH} levels deep"),
        (b'{"cmd": ' + b"[" * 40 + b"]" * 40 + b"}\n", f"nested more than {MAX_JSON_DEPTH}"),
        (b'{"cmd": "status", "x": "\\ud800"}\n', "lone surrogate"),
        (b'{"cmd": "\\udfff"}\n', "lone surrogate"),
        (b'{"cmd": "status\xff"}\n', "not UTF-8 text"),
        (b'{"cmd": "status"\n', "not JSON"),
        (b"[1]\n", "not a JSON object"),
        (b"x" * (MAX_REQUEST_BYTES + 10) + b"\n", f"larger than {MAX_REQUEST_BYTES // 1024} KiB"),
        (b'{"cmd": "start", "deadline_s": "soon"}\n', "deadline_s must be a number"),
        (b'{"cmd": "start", "timeout_s": NaN}\n', "timeout_s must be a finite number"),
        (b'{"cmd": "start", "timeout_s": ' + b"9" * 400 + b"}\n", "timeout_s must be a finite"),
    ],
    ids=[
        "100000-brackets", "deep-but-parsable", "lone-high-surrogate", "lone-low-surrogate",
        "bad-utf8", "truncated", "array", "oversize", "deadline-text", "timeout-nan",
        "timeout-huge-int",
    ],
)  # fmt: skip
@pytest.mark.timeout(30)
def test_unkind_requests_get_a_clear_refusal(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop, payload: bytes, message: str
) -> None:
    srv = _serve(tmp_path, controller, loop)
    try:
        reply = _raw(tmp_path, payload)
        after = send(tmp_path, {"cmd": "status"})  # and the server still serves
    finally:
        srv.close()
    assert reply["ok"] is False and reply["exit_code"] == 2
    assert message in reply["message"]
    assert "Traceback" not in reply["message"]
    assert controller.calls == [("status", controller.calls[0][1])]  # only the later status
    assert after is not None and after["ok"]


def test_the_client_refuses_an_oversize_request_itself(tmp_path: Path) -> None:
    big = {"cmd": "install", "name": "rx.toml", "data": "x" * MAX_REQUEST_BYTES}
    with pytest.raises(ControlClientError, match="larger than the controller accepts"):
        send(tmp_path, big)


@pytest.mark.timeout(30)
def test_a_start_whose_client_gave_up_is_never_carried_out(
    tmp_path: Path, controller: FakeController
) -> None:
    """The loop is busy past the client's deadline: the queued start is dropped."""
    gate = threading.Event()
    loop = ThreadLoop()
    loop.pool.submit(gate.wait, 30)  # the loop thread is held up
    srv = _serve(tmp_path, controller, loop)
    try:
        gave_up = send(tmp_path, {"cmd": "start"}, timeout_s=0.5)
        gate.set()
        reply = send(tmp_path, {"cmd": "status"})
    finally:
        srv.close()
        gate.set()
        loop.pool.shutdown(wait=True)
    assert gave_up is not None and gave_up["ok"] is False  # answered before 0.5 s: it says
    assert gave_up["message"] == "the controller did not answer in time; start was not carried out"
    assert reply is not None and reply["ok"]
    assert [name for name, _ in controller.calls] == ["status"]  # never "start"


@pytest.mark.timeout(30)
def test_a_request_read_after_its_deadline_is_not_carried_out(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    srv = _serve(tmp_path, controller, loop)
    try:
        late = {"cmd": "start", "deadline_s": time.monotonic() - 1.0}
        reply = _raw(tmp_path, json.dumps(late).encode() + b"\n")
    finally:
        srv.close()
    assert reply["ok"] is False and "did not answer in time" in reply["message"]
    assert controller.calls == []


class ManualLoop:
    """A loop whose calls run only when the test says so."""

    def __init__(self) -> None:
        self.calls: list[tuple[Callable[[], Any], Future[Any]]] = []
        self.posted = threading.Event()

    def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self.calls.append((fn, future))
        self.posted.set()
        return future

    def run_one(self) -> None:
        fn, future = self.calls.pop(0)
        assert future.set_running_or_notify_cancel()
        future.set_result(fn())


@pytest.mark.timeout(30)
def test_a_command_reaching_the_loop_past_its_deadline_is_dropped_and_logged(
    tmp_path: Path, controller: FakeController, caplog: pytest.LogCaptureFixture
) -> None:
    """The loop takes the call up (so it cannot be cancelled) only after the deadline,
    on the server's own clock: the call returns without touching the controller."""
    now = [100.0]
    loop = ManualLoop()
    srv = ControlServer(tmp_path, controller, loop, clock=lambda: now[0], answer_timeout_s=30.0)
    replies: list[Any] = []
    worker = threading.Thread(
        target=lambda: replies.append(srv.dispatch({"cmd": "start"}, deadline_s=101.0))
    )
    worker.start()
    assert loop.posted.wait(10)
    now[0] = 101.5  # the client's deadline has passed
    loop.run_one()
    worker.join(10)
    assert replies and replies[0].ok is False and "in time" in replies[0].message
    assert controller.calls == []
    assert "dropped start: it reached the loop after its client's deadline" in caplog.text


def test_the_answer_deadline_is_the_clients_less_a_margin() -> None:
    assert answer_deadline({"deadline_s": 50.0}, 10.0, 5.0) == pytest.approx(50.0 - REPLY_MARGIN_S)
    assert answer_deadline({"timeout_s": 2.0}, 10.0, 5.0) == pytest.approx(12.0 - REPLY_MARGIN_S)
    both = {"deadline_s": 50.0, "timeout_s": 2.0}
    assert answer_deadline(both, 10.0, 5.0) == pytest.approx(12.0 - REPLY_MARGIN_S)  # earlier
    assert answer_deadline({}, 10.0, 5.0) == 15.0
    assert answer_deadline({"deadline_s": 1e12}, 10.0, 5.0) == 70.0  # at most a minute
    assert nesting_depth({"a": [1, {"b": []}]}) == 4 and nesting_depth("x") == 0


def _parse_forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a request of this shape must be refused before it is parsed")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b'{"cmd": "status", "x": [' + b"0," * 200_000 + b"0]}", "too many values"),
        (b'{"cmd": "status", "x": [' + b'"",' * 100_000 + b'""]}', "too many values"),
        (b"{" + b",".join(b'"k%d": 1' % i for i in range(MAX_STRINGS + 1)) + b"}", "too many"),
        (b'{"x": [' + b",".join([b"[" * 15 + b"0" + b"]" * 15] * 10_000) + b"]}", "nested"),
    ],
    ids=["200000-numbers", "100000-strings", "65-keys", "10000-lists-16-deep"],
)
def test_a_request_of_many_values_is_refused_before_it_is_parsed(
    monkeypatch: pytest.MonkeyPatch, payload: bytes, message: str
) -> None:
    """Parsing builds every value while holding the interpreter's lock, which the event
    loop needs to keep its ticks: a request of a few hundred kilobytes of small values
    would stall it for longer than the board's lease."""
    monkeypatch.setattr(json, "loads", _parse_forbidden)
    reply = decode_request(payload)
    assert isinstance(reply, ControlReply) and reply.exit_code == 2
    assert message in reply.message


def test_a_large_install_with_quotes_and_brackets_in_its_text_is_parsed_whole() -> None:
    """The limits count what lies outside the strings: a prescription's own text (its
    quotes, brackets and commas) does not count however long it is."""
    text = '[[phases]]\nwavelengths_nm = [810, 850]\nnote = "a \\"quoted\\" word"\n' * 5000
    request = {"cmd": "install", "name": "rx.toml", "data": text, "deadline_s": 12.5}
    line = json.dumps(request).encode()
    assert len(line) < MAX_REQUEST_BYTES
    assert decode_request(line) == request
    keys = {f"k{i}": i for i in range(MAX_STRINGS - 2)}  # with "cmd" and "status": 64
    assert isinstance(decode_request(json.dumps({"cmd": "status", **keys}).encode()), dict)
    numbers = b'{"cmd": "status", "x": [' + b"1," * (MAX_STRUCTURE_BYTES // 2 - 20) + b"1]}"
    assert isinstance(decode_request(numbers), dict)  # just under the bytes outside strings
    deep = b'{"cmd": "status", "x": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    assert isinstance(decode_request(deep + b"}"), dict)


FLOOD = 50


def _control_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "firmware_host.control"]


@pytest.mark.timeout(60)
def test_a_flood_of_refused_requests_logs_a_line_per_kind_not_per_request(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """A script that sends garbage hundreds of times a second must not write hundreds
    of log lines a second, nor one as long as the command it chose."""
    caplog.set_level(logging.INFO, logger="firmware_host.control")
    late = {"cmd": "x" * 200_000, "deadline_s": 0.0}
    srv = _serve(tmp_path, controller, loop)
    try:
        replies = [
            _raw(tmp_path, payload)
            for _ in range(FLOOD)
            for payload in (b'{"cmd":\n', b"[1]\n", json.dumps(late).encode() + b"\n")
        ]
    finally:
        srv.close()
    assert all(reply["ok"] is False for reply in replies)
    assert len({reply["message"] for reply in replies}) == 3
    lines = _control_lines(caplog)
    assert len([line for line in lines if line.startswith(("refused", "control command"))]) == 3
    assert max(len(line) for line in lines) < 500


def test_an_unknown_command_is_named_short_in_its_reply(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop
) -> None:
    srv = _serve(tmp_path, controller, loop)
    try:
        reply = _raw(tmp_path, json.dumps({"cmd": "\x00" * 50_000}).encode() + b"\n")
    finally:
        srv.close()
    assert reply["ok"] is False and reply["message"].startswith("unknown command '\\x00")
    assert len(reply["message"]) < 100  # not 400 kB echoed back


@pytest.mark.timeout(60)
def test_clients_told_busy_in_a_flood_are_logged_once(
    tmp_path: Path, controller: FakeController, loop: ThreadLoop, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="firmware_host.control")
    srv = _serve(tmp_path, controller, loop, read_deadline_s=60.0, max_clients=1)
    try:
        with _connect(tmp_path) as slow:
            slow.sendall(b"{")
            replies = [send(tmp_path, {"cmd": "status"}) for _ in range(FLOOD)]
    finally:
        srv.close()
    assert all(reply is not None and "busy" in reply["message"] for reply in replies)
    busy_lines = [line for line in _control_lines(caplog) if line.startswith("control socket busy")]
    assert len(busy_lines) == 1
