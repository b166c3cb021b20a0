"""uvicorn as the page runs it: its settings, a deadline for every request, a time-out
for every TLS handshake, and a cap on the connections of each client address.

Owns: ``server_config``, the one place the page's uvicorn settings are made (h11, no
server header, no access log of form contents, no proxy headers, at most
``MAX_CONNECTIONS`` connections: uvicorn's ``limit_concurrency``, so with that many
open a request is answered 503 at once, logged at most once a minute), and
``RequestDeadlineProtocol``, uvicorn's h11 protocol with two things added: a connection
whose request (its headers, and its body) has not arrived whole within
``REQUEST_TIMEOUT_S`` is closed, and a new connection from an address that has
``MAX_CONNECTIONS_PER_CLIENT`` open already is closed at once, before uvicorn counts
it (``ConnectionsPerClient``, one per server, keeps the count). uvicorn has no request
timeout (``timeout_keep_alive`` runs only between requests), so a client that sends its
request a byte at a time, or sends nothing, would keep its connection, and its place
among the ``MAX_CONNECTIONS``, for ever: 15 of them would shut the caregiver out. The
deadline frees each place within 15 s; the cap per address keeps one device from
taking all the places again and again meanwhile. Under TLS the protocol sees a
connection only once its handshake is done, so ``PageEventLoop`` (uvicorn's event loop,
named in its ``loop=`` option) gives the handshake ``TLS_HANDSHAKE_TIMEOUT_S`` of its
own, where asyncio would give it 60 s.

Does not own where the page may listen (``web.serve``) nor what it answers (``web.app``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final

import h11
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import get_remote_addr

from safety.log_limit import RepeatLimiter

log = logging.getLogger(__name__)

MAX_CONNECTIONS: Final = 16
MAX_CONNECTIONS_PER_CLIENT: Final = 8
"""Open connections from one client address. A browser opens at most 6 at once to one
host and port (Chrome, Firefox and Safari, over HTTP/1.1), so 8 never refuses the
caregiver's; one device then holds at most half the ``MAX_CONNECTIONS``. Not applied on
loopback (``ConnectionsPerClient``)."""
REQUEST_TIMEOUT_S: Final = 15.0
"""From a connection's opening, or from the first bytes of its next request, until that
request has arrived whole. A browser sends a page's request, or an 80 KiB form, in well
under a second, even on a weak home Wi-Fi."""
TLS_HANDSHAKE_TIMEOUT_S: Final = REQUEST_TIMEOUT_S
"""From a TLS connection's opening until its handshake is done (asyncio's default is
60 s); the request's deadline starts after it."""
_ARRIVING: Final = (h11.IDLE, h11.SEND_BODY)  # h11's states of a request not yet whole
ClientAddress = ipaddress.IPv4Address | ipaddress.IPv6Address | None  # None: not known


def client_address(peer: tuple[str, int] | None) -> ClientAddress:
    """The address a connection's client is counted under: an IPv4-mapped IPv6 address
    (``::ffff:192.0.2.7``, how a listener on ``::`` sees an IPv4 client) as its IPv4
    address; ``None`` when the socket has no peer any more (gone before it was counted)."""
    if peer is None:
        return None
    try:
        address = ipaddress.ip_address(peer[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ConnectionsPerClient:
    """The connections each client address has open on one server, at most ``most_each``.

    One per server (``server_config`` makes it; several servers in a process, as in the
    tests, count apart), used only on its event loop's thread. A connection takes a
    place when it is made and gives it back once, when it is lost. Loopback addresses
    are counted but not capped unless ``cap_loopback``: there the kiosk's browser, every
    local user and every SSH tunnel share one address (the page tells local users apart
    on each request, ``web.local_users``), so a cap there would protect no one and could
    refuse a second browser."""

    def __init__(self, most_each: int, *, cap_loopback: bool = False) -> None:
        self.most_each = most_each
        self._cap_loopback = cap_loopback
        self._open: dict[ClientAddress, int] = {}

    def take(self, address: ClientAddress) -> bool:
        """Count a new connection from ``address``; False, counting nothing, if that
        address is capped and has ``most_each`` open already."""
        count = self._open.get(address, 0)
        if count >= self.most_each and self._capped(address):
            return False
        self._open[address] = count + 1
        return True

    def give_back(self, address: ClientAddress) -> None:
        """Count a connection from ``address`` less: once for each ``take`` that was True."""
        left = self._open[address] - 1
        if left:
            self._open[address] = left
        else:
            del self._open[address]

    def open_from(self, address: ClientAddress) -> int:
        return self._open.get(address, 0)

    def _capped(self, address: ClientAddress) -> bool:
        return self._cap_loopback or address is None or not address.is_loopback


class RequestDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, plus ``request_timeout_s`` for each request to arrive whole,
    and ``per_client``'s cap on each address's connections.

    A subclass given to uvicorn's own ``http=`` option (it takes a protocol class), where
    a patch of uvicorn would change every server in the process. It only watches the
    asyncio protocol's calls (``connection_made``, ``data_received``, ``connection_lost``)
    and h11's ``their_state`` (the client's side: ``IDLE`` or ``SEND_BODY`` until the
    request is whole); uvicorn does the rest. It pins h11, the pure-Python parser, where
    uvicorn's ``auto`` would take httptools if it were installed. A request that has
    arrived whole is never cut, however long its answer takes; between requests
    uvicorn's keep-alive timeout (5 s) closes an idle connection, and the next request's
    first bytes start a new deadline.

    A connection over its address's cap is aborted in ``connection_made`` without
    uvicorn's: it never joins the connections ``limit_concurrency`` counts. Each class
    ``page_protocol`` makes has a ``per_client`` of its own, so one per server."""

    request_timeout_s: ClassVar[float] = REQUEST_TIMEOUT_S
    per_client: ClassVar[ConnectionsPerClient]  # set by page_protocol, one per server
    refusal_log: ClassVar[RepeatLimiter] = RepeatLimiter(log, time.monotonic)
    _deadline: asyncio.TimerHandle | None = None
    _address: ClientAddress = None
    _counted = False  # holds a place in per_client: from connection_made until lost
    _refused = False  # closed in connection_made, never uvicorn's

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        address = client_address(get_remote_addr(transport))
        if not self.per_client.take(address):
            self._refused = True
            self._refuse(transport, address)
            return
        self._address, self._counted = address, True
        super().connection_made(transport)
        self._follow_request()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio calls this once for each connection made, whoever ended it (the
        client, uvicorn, the deadline's abort), a refused one's too."""
        if self._refused:  # uvicorn never had it, and it held no place
            return
        self._give_back_place()
        self._stop_deadline()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        """uvicorn hands the connection to its WebSocket protocol (the page's guard
        refuses it at once), whose loss this protocol never sees: its place goes now."""
        self._give_back_place()
        super().handle_websocket_upgrade(event)

    def _give_back_place(self) -> None:
        if self._counted:
            self._counted = False
            self.per_client.give_back(self._address)

    def _refuse(self, transport: asyncio.Transport, address: ClientAddress) -> None:
        """Abort at once, answering nothing: a 503 would need uvicorn's place, and under
        TLS a close would wait for the client's goodbye, the socket counted by no one."""
        client = "an unknown address" if address is None else address
        self.refusal_log.log(
            "crowded",
            logging.WARNING,
            f"closed a new connection from {client} at once: "
            f"{self.per_client.most_each} connections from that address open already",
        )
        transport.abort()

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
        self.refusal_log.log(
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


class PageEventLoop(asyncio.SelectorEventLoop):
    """asyncio's event loop, whose TLS listeners give a handshake at most
    ``tls_handshake_timeout_s``: a client that opens a connection and never finishes
    its handshake is closed then, answering nothing.

    uvicorn makes its listener with ``create_server`` and no handshake time-out, so
    asyncio's 60 s applied; its ``loop=`` option takes an event loop class by import
    string, as here. It pins asyncio's own loop, where uvicorn's ``auto`` would take
    uvloop if it were installed."""

    tls_handshake_timeout_s: ClassVar[float] = TLS_HANDSHAKE_TIMEOUT_S

    async def create_server(self, *args: Any, **kwargs: Any) -> asyncio.Server:
        if kwargs.get("ssl") is not None:  # without TLS, asyncio refuses a handshake time-out
            kwargs.setdefault("ssl_handshake_timeout", self.tls_handshake_timeout_s)
        return await super().create_server(*args, **kwargs)


def page_protocol(
    request_timeout_s: float, per_client: ConnectionsPerClient
) -> type[RequestDeadlineProtocol]:
    """``RequestDeadlineProtocol`` for one server: this deadline (a test's is a fraction
    of a second), this count of connections per client, and a log limiter of its own."""

    class ForOneServer(RequestDeadlineProtocol):
        pass

    ForOneServer.request_timeout_s = request_timeout_s
    ForOneServer.per_client = per_client
    ForOneServer.refusal_log = RepeatLimiter(log, time.monotonic)
    return ForOneServer


def server_config(
    app: ASGIApp,
    listen: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    *,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
    max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
    cap_loopback: bool = False,
) -> uvicorn.Config:
    """uvicorn's settings for the page on ``listen``:``port`` (TLS with a cert and key).
    ``cap_loopback`` applies the cap per client on loopback too (for the tests, whose
    clients are all there)."""
    limit_busy_lines(max_connections)
    per_client = ConnectionsPerClient(max_connections_per_client, cap_loopback=cap_loopback)
    return uvicorn.Config(
        app,
        host=listen,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        http=page_protocol(request_timeout_s, per_client),
        loop=f"{__name__}:{PageEventLoop.__name__}",
        server_header=False,
        date_header=False,
        access_log=False,
        proxy_headers=False,
        limit_concurrency=max_connections,
        log_config=None,
    )
