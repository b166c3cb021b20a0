"""A slow client cannot hold the page: real sockets against uvicorn serving the page as
``nirpad web`` does (``tests.web.real_server``: an ephemeral 127.0.0.1 port, a request
deadline of a fraction of a second injected for the test). No assertion here is on the
wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.types import Receive, Scope, Send

from tests.web.real_server import (
    DEADLINE_S,
    FORM_HEAD,
    GUARD_S,
    HEALTHZ,
    connect,
    self_signed,
    serving,
    until_closed,
)
from web.app import create_app
from web.http_server import REQUEST_TIMEOUT_S, PageEventLoop, limit_busy_lines, server_config
from web.settings import WebSettings


@pytest.fixture
def page(state_dir: Path) -> Iterator[int]:
    with serving(create_app(WebSettings(state_dir))) as port:
        yield port


def test_a_half_sent_request_line_is_closed_while_another_connection_is_answered(
    page: int,
) -> None:
    with connect(page, b"GET /hea") as slow, connect(page, HEALTHZ) as other:
        answer = until_closed(other)
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nok")
        assert until_closed(slow) == b""  # closed, and nothing answered


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n",  # the headers' blank line never comes
        FORM_HEAD + b"csrf_token=",  # 11 bytes of the 100 announced
    ],
    ids=["nothing", "headers-unfinished", "body-unfinished"],
)
@pytest.mark.slow
def test_a_request_that_does_not_arrive_whole_is_closed_unanswered(
    state_dir: Path, sent: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serving(create_app(WebSettings(state_dir))) as port, connect(port, sent) as sock:
        assert until_closed(sock) == b""
    # the server has stopped: the page's task for the form has ended, and logged
    assert "closed a connection from 127.0.0.1: its request had not arrived whole within 0.3 s" in (
        caplog.text
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback


@pytest.mark.slow
def test_each_request_on_a_kept_connection_has_its_own_deadline(page: int) -> None:
    with connect(page, HEALTHZ.replace(b"Connection: close", b"Connection: keep-alive")) as sock:
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 200 and answer.read() == b"ok"
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert until_closed(sock) == b""


@pytest.mark.slow
def test_an_answer_slower_than_the_deadline_is_not_cut() -> None:
    """Only the request's arrival has a deadline: the page may take longer to answer
    (a control request may wait 6 s for the controller, an install 10 s)."""

    async def slow_app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan events
        body = b""
        while (message := await receive())["type"] == "http.request":
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await asyncio.sleep(2 * DEADLINE_S)
        headers = [(b"content-length", b"%d" % (len(body) + 4))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"got " + body})

    sent = FORM_HEAD.replace(b"Content-Length: 100", b"Connection: close\r\nContent-Length: 4")
    with serving(slow_app) as port, connect(port, sent + b"a=bc") as sock:
        answer = until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"got a=bc")


def test_over_the_connection_cap_a_request_is_refused_at_once_until_slow_ones_are_closed(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn's ``limit_concurrency`` counts open connections, a silent one too: without
    the deadline, a few silent connections would shut the page out for good. Closing
    them is logged once a minute, not once each."""
    with (
        serving(create_app(WebSettings(state_dir)), max_connections=3) as port,
        connect(port, b"") as silent,
        connect(port, b"") as silent_too,
    ):
        with connect(port, HEALTHZ) as refused:
            assert until_closed(refused).startswith(b"HTTP/1.1 503 ")
        assert until_closed(silent) == until_closed(silent_too) == b""
        assert caplog.text.count("closed a connection from 127.0.0.1") == 1
        assert caplog.text.count("refused a request with 503: 3 connections open") == 1
        assert "Exceeded concurrency limit" not in caplog.text
        with connect(port, HEALTHZ) as served:  # the silent ones' ends still open
            assert until_closed(served).startswith(b"HTTP/1.1 200 ")


@pytest.mark.slow
def test_under_tls_a_slow_connection_is_closed_and_frees_its_place_at_once(
    state_dir: Path, tmp_path: Path
) -> None:
    """Aborted, not closed: a TLS close would wait for the client's own close (up to
    30 s), the connection still counted against the cap all that time."""
    client_tls = ssl.create_default_context()
    client_tls.check_hostname = False
    client_tls.verify_mode = ssl.CERT_NONE
    app = create_app(WebSettings(state_dir, tls=True))
    with serving(app, max_connections=2, tls=self_signed(tmp_path)) as port:

        def tls_connect(sent: bytes) -> socket.socket:
            sock = client_tls.wrap_socket(socket.create_connection(("127.0.0.1", port), GUARD_S))
            sock.sendall(sent)
            return sock

        with tls_connect(b"GET /hea") as slow:
            assert until_closed(slow) == b""
            with tls_connect(HEALTHZ) as served:  # the slow one's end still open
                assert until_closed(served).startswith(b"HTTP/1.1 200 ")


def test_a_flood_of_503s_is_one_log_line_a_minute_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now_s = [0.0]
    limit_busy_lines(16, clock=lambda: now_s[0])
    limit_busy_lines(16, clock=lambda: now_s[0])  # a second server: still one filter
    uvicorn_log = logging.getLogger("uvicorn.error")
    try:
        caplog.set_level(logging.INFO)
        for _ in range(5):
            uvicorn_log.warning("Exceeded concurrency limit.")
        uvicorn_log.warning("something else")
        now_s[0] = 61.0
        uvicorn_log.warning("Exceeded concurrency limit.")
    finally:
        limit_busy_lines(16)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "refused a request with 503: 16 connections open already",
        "something else",
        "refused a request with 503: 16 connections open already "
        "(and 4 more times in the last 61 s)",
    ]


def test_a_tls_listener_is_made_with_the_handshake_time_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's protocol sees a TLS connection only once its handshake is done, so the
    request's deadline cannot cover the handshake: asyncio's own time-out does, given
    where uvicorn makes the listener (its default is 60 s)."""
    made: list[dict[str, object]] = []

    async def create_server(self: object, *args: object, **kwargs: object) -> None:
        made.append(kwargs)

    monkeypatch.setattr(asyncio.SelectorEventLoop, "create_server", create_server)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(*self_signed(tmp_path))
    config = server_config(create_app(WebSettings(tmp_path)), "127.0.0.1", 8480, None, None)
    loop_factory = config.get_loop_factory()
    assert loop_factory is not None
    with contextlib.closing(loop_factory()) as loop:
        loop.run_until_complete(loop.create_server(asyncio.Protocol, ssl=server_tls))
        loop.run_until_complete(loop.create_server(asyncio.Protocol, ssl=None))
    assert made[0]["ssl_handshake_timeout"] == REQUEST_TIMEOUT_S
    assert "ssl_handshake_timeout" not in made[1]  # asyncio refuses it without TLS


@pytest.mark.slow
def test_under_tls_a_stalled_handshake_is_closed_while_another_connection_is_answered(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that never sends its TLS ClientHello (or sends half of one) is
    closed after the handshake's time-out (injected: the deadline's 0.3 s), answering
    nothing; before that fix it was held for asyncio's 60 s."""
    monkeypatch.setattr(PageEventLoop, "tls_handshake_timeout_s", DEADLINE_S)
    client_tls = ssl.create_default_context()
    client_tls.check_hostname = False
    client_tls.verify_mode = ssl.CERT_NONE
    app = create_app(WebSettings(state_dir, tls=True))
    with (
        serving(app, tls=self_signed(tmp_path)) as port,
        connect(port, b"") as silent,
        connect(port, b"\x16\x03\x01\x02\x00\x01") as half_hello,
    ):
        sock = client_tls.wrap_socket(socket.create_connection(("127.0.0.1", port), GUARD_S))
        with sock as served:
            served.sendall(HEALTHZ)
            assert until_closed(served).startswith(b"HTTP/1.1 200 ")
        assert until_closed(silent) == until_closed(half_hello) == b""
