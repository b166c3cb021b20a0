"""uvicorn as the page runs it: its settings, and a deadline for every request.

Owns: ``server_config``, the one place the page's uvicorn settings are made (h11, no
server header, no access log of form contents, no proxy headers, at most
``MAX_CONNECTIONS`` connections: uvicorn's ``limit_concurrency``, so with that many
open a request is answered 503 at once, logged at most once a minute), and
``RequestDeadlineProtocol``, uvicorn's h11
protocol with one thing added: a connection whose request (its headers, and its body)
has not arrived whole within ``REQUEST_TIMEOUT_S`` is closed. uvicorn has no such
timeout (``timeout_keep_alive`` runs only between requests), so a client that sends its
request a byte at a time, or sends nothing, would keep its connection, and its place
among the ``MAX_CONNECTIONS``, for ever: 15 of them would shut the caregiver out.

Does not own where the page may listen (``web.serve``) nor what it answers (``web.app``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import ClassVar, Final

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

from safety.log_limit import RepeatLimiter

log = logging.getLogger(__name__)

MAX_CONNECTIONS: Final = 16
REQUEST_TIMEOUT_S: Final = 15.0
"""From a connection's opening, or from the first bytes of its next request, until that
request has arrived whole. A browser sends a page's request, or an 80 KiB form, in well
under a second, even on a weak home Wi-Fi."""
_ARRIVING: Final = (h11.IDLE, h11.SEND_BODY)  # h11's states of a request not yet whole


class RequestDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus ``request_timeout_s`` for each request to arrive whole.

    A subclass given to uvicorn's own ``http=`` option (it takes a protocol class), where
    a patch of uvicorn would change every server in the process. It only watches the
    asyncio protocol's calls (``connection_made``, ``data_received``, ``connection_lost``)
    and h11's ``their_state`` (the client's side: ``IDLE`` or ``SEND_BODY`` until the
    request is whole); uvicorn does the rest. It pins h11, the pure-Python parser, where
    uvicorn's ``auto`` would take httptools if it were installed. A request that has
    arrived whole is never cut, however long its answer takes; between requests
    uvicorn's keep-alive timeout (5 s) closes an idle connection, and the next request's
    first bytes start a new deadline."""

    request_timeout_s: ClassVar[float] = REQUEST_TIMEOUT_S
    slow_log: ClassVar[RepeatLimiter] = RepeatLimiter(log, time.monotonic)
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._follow_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_deadline()
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        """Run the deadline while a request is arriving; stop it once it has arrived."""
        if self.conn.their_state not in _ARRIVING or self.transport.is_closing():
            self._stop_deadline()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout_s, self._too_slow)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        """Close at once, answering nothing (there is no request to answer). Aborted, not
        closed: under TLS a close waits up to 30 s more for the client's goodbye."""
        self._deadline = None
        if self.transport.is_closing():  # closed already (by uvicorn, or after a handover)
            return
        client = self.client[0] if self.client else "an unknown address"
        self.slow_log.log(
            "slow",
            logging.WARNING,
            f"closed a connection from {client}: its request had not arrived whole within "
            f"{self.request_timeout_s:g} s",
        )
        self.transport.abort()


class BusyLogLimit(logging.Filter):
    """uvicorn's "Exceeded concurrency limit." (a line per 503) as one line a minute.

    A filter on uvicorn's ``uvicorn.error`` logger: that line is dropped and said once
    a minute through a ``RepeatLimiter``, with the count of those in between; every
    other line passes unchanged. A flood of connections then costs no log line each."""

    UVICORN_MESSAGE: Final = "Exceeded concurrency limit."

    def __init__(self, max_connections: int, limiter: RepeatLimiter) -> None:
        super().__init__()
        self._max_connections = max_connections
        self._limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != self.UVICORN_MESSAGE:
            return True
        self._limiter.log(
            "busy",
            logging.WARNING,
            f"refused a request with 503: {self._max_connections} connections open already",
        )
        return False


def limit_busy_lines(max_connections: int, clock: Callable[[], float] = time.monotonic) -> None:
    """Put one ``BusyLogLimit`` on ``uvicorn.error`` (replacing one put there before)."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    for old in [f for f in uvicorn_log.filters if isinstance(f, BusyLogLimit)]:
        uvicorn_log.removeFilter(old)
    uvicorn_log.addFilter(BusyLogLimit(max_connections, RepeatLimiter(log, clock)))


def deadline_protocol(request_timeout_s: float) -> type[RequestDeadlineProtocol]:
    """``RequestDeadlineProtocol`` with this deadline (a test's is a fraction of a
    second) and a log limiter of its own."""

    class WithDeadline(RequestDeadlineProtocol):
        pass

    WithDeadline.request_timeout_s = request_timeout_s
    WithDeadline.slow_log = RepeatLimiter(log, time.monotonic)
    return WithDeadline


def server_config(
    app: ASGIApp,
    listen: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    *,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
) -> uvicorn.Config:
    """uvicorn's settings for the page on ``listen``:``port`` (TLS with a cert and key)."""
    limit_busy_lines(max_connections)
    return uvicorn.Config(
        app,
        host=listen,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        http=deadline_protocol(request_timeout_s),
        server_header=False,
        date_header=False,
        access_log=False,
        proxy_headers=False,
        limit_concurrency=max_connections,
        log_config=None,
    )
