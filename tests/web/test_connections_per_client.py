"""One client address cannot take all the page's connections: the count per address
(``web.http_server.ConnectionsPerClient``, its address normalisation), and real sockets
against uvicorn serving the page as ``nirpad web`` does (``tests.web.real_server``),
with a cap of 2 per address injected and 127.0.0.2 standing for another device. No
assertion here is on the wall clock.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest

from tests.web.real_server import HEALTHZ, connect, serving, until_closed
from web.app import create_app
from web.http_server import (
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_CLIENT,
    ClientAddress,
    ConnectionsPerClient,
    client_address,
    server_config,
)
from web.settings import WebSettings

OTHER_DEVICE = "127.0.0.2"
BROWSER_CONNECTIONS_PER_HOST = 6  # Chrome's, Firefox's and Safari's, over HTTP/1.1
KEPT = HEALTHZ.replace(b"Connection: close", b"Connection: keep-alive")
WEBSOCKET = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
REFUSED_LINE = "closed a new connection from 127.0.0.1 at once: 2 connections from that address"


@pytest.fixture
def other_device() -> str:
    """127.0.0.2, or a skip where it is not a loopback address (Linux routes all 127/8)."""
    try:
        socket.create_server((OTHER_DEVICE, 0)).close()
    except OSError:
        pytest.skip(f"{OTHER_DEVICE} is not a loopback address here")
    return OTHER_DEVICE


@pytest.fixture
def capped_page(state_dir: Path, other_device: str) -> Iterator[int]:
    """The page with at most 2 connections per address, loopback ones included."""
    app = create_app(WebSettings(state_dir))
    with serving(app, max_connections_per_client=2, cap_loopback=True) as port:
        yield port


def kept(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection whose request was answered 200 and that is kept open (uvicorn's
    keep-alive, 5 s): it holds its place, and no request deadline runs."""
    sock = connect(port, KEPT, source)
    assert answered(sock)
    return sock


def answered(sock: socket.socket) -> bool:
    """Whether the server answered the request sent on ``sock`` with 200 "ok"."""
    answer = http.client.HTTPResponse(sock)
    answer.begin()
    return answer.status == 200 and answer.read() == b"ok"


def refused(port: int) -> bool:
    """Whether a new connection from 127.0.0.1 is closed unanswered."""
    with connect(port, HEALTHZ) as sock:
        return until_closed(sock) == b""


def served(port: int, source: str = "127.0.0.1") -> bool:
    with connect(port, HEALTHZ, source) as sock:
        return until_closed(sock).startswith(b"HTTP/1.1 200 ")


def test_over_its_cap_an_address_is_closed_at_once_while_another_is_served(
    capped_page: int, caplog: pytest.LogCaptureFixture
) -> None:
    with kept(capped_page) as first, kept(capped_page):
        assert refused(capped_page) and refused(capped_page)
        assert served(capped_page, OTHER_DEVICE)
        first.sendall(KEPT)  # the two already open are unharmed
        assert answered(first)
    assert caplog.text.count(REFUSED_LINE) == 1  # once a minute, not once each


@pytest.mark.slow
def test_a_refused_connection_never_counts_against_the_page_s_connection_cap(
    state_dir: Path, other_device: str
) -> None:
    """uvicorn answers 503 once ``max_connections`` are open (itself among them)."""
    app = create_app(WebSettings(state_dir))
    with (
        serving(app, max_connections=4, max_connections_per_client=2, cap_loopback=True) as port,
        kept(port),
        kept(port),
    ):
        assert all([refused(port) for _ in range(4)])
        assert served(port, other_device)  # the third of 4


def test_a_place_is_given_back_when_the_client_closes_its_connection(capped_page: int) -> None:
    with kept(capped_page):
        with kept(capped_page) as second:
            second.shutdown(socket.SHUT_WR)
            assert until_closed(second) == b""  # the server has closed its end too
        with kept(capped_page):  # the second's place
            assert refused(capped_page)  # and only that one


@pytest.mark.slow
def test_a_place_is_given_back_when_the_request_deadline_closes_the_connection(
    capped_page: int,
) -> None:
    with kept(capped_page) as first, kept(capped_page) as second:
        assert refused(capped_page)
        first.sendall(b"GET /hea")
        second.sendall(b"GET /hea")
        assert until_closed(first) == until_closed(second) == b""
    with kept(capped_page), kept(capped_page):  # both places back
        assert refused(capped_page)


@pytest.mark.slow
def test_a_websocket_handed_to_uvicorn_gives_its_place_back(capped_page: int) -> None:
    """uvicorn hands an upgrade to its WebSocket protocol, which the guard refuses (403):
    the page's protocol never sees that connection lost."""
    for _ in range(3):
        with connect(capped_page, WEBSOCKET) as sock:
            assert until_closed(sock).startswith(b"HTTP/1.1 403 ")
    assert served(capped_page)


@pytest.mark.slow
def test_on_loopback_no_connection_is_refused_by_default(state_dir: Path) -> None:
    """The kiosk's browser, every local user and every SSH tunnel share 127.0.0.1."""
    app = create_app(WebSettings(state_dir))
    with (
        serving(app, max_connections_per_client=2) as port,
        kept(port),
        kept(port),
        kept(port),
    ):
        assert served(port)


def test_each_server_counts_its_own_and_a_browser_is_never_refused() -> None:
    def per_client(config: object) -> ConnectionsPerClient:
        return config.http.per_client  # type: ignore[attr-defined, no-any-return]

    one, two = (server_config(lambda: None, "0.0.0.0", 8443, None, None) for _ in range(2))
    assert per_client(one) is not per_client(two)
    assert per_client(one).most_each == MAX_CONNECTIONS_PER_CLIENT
    assert BROWSER_CONNECTIONS_PER_HOST < MAX_CONNECTIONS_PER_CLIENT < MAX_CONNECTIONS


@pytest.mark.parametrize(
    ("peer", "counted_as"),
    [
        (("::ffff:192.0.2.7", 50000), IPv4Address("192.0.2.7")),  # a listener on ::
        (("192.0.2.7", 50001), IPv4Address("192.0.2.7")),
        (("::ffff:127.0.0.1", 50002), IPv4Address("127.0.0.1")),
        (("2001:db8::7", 50003), IPv6Address("2001:db8::7")),
        (("2001:0DB8:0::7", 50004), IPv6Address("2001:db8::7")),
        (None, None),  # the socket had no peer any more
    ],
)
def test_an_ipv4_mapped_address_is_counted_as_its_ipv4_address(
    peer: tuple[str, int] | None, counted_as: ClientAddress
) -> None:
    assert client_address(peer) == counted_as


def test_one_address_seen_two_ways_shares_one_cap() -> None:
    places = ConnectionsPerClient(2)
    plain, mapped = client_address(("192.0.2.7", 1)), client_address(("::ffff:192.0.2.7", 2))
    assert places.take(plain) and places.take(mapped)
    assert not places.take(plain) and not places.take(mapped)
    assert places.take(ip_address("192.0.2.8"))  # another device
    places.give_back(mapped)
    assert places.open_from(plain) == 1 and places.take(plain)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_counted_but_capped_only_when_asked(host: str) -> None:
    address = client_address((host, 1))
    free, capped = ConnectionsPerClient(2), ConnectionsPerClient(2, cap_loopback=True)
    assert all([free.take(address) for _ in range(3)]) and free.open_from(address) == 3
    assert [capped.take(address) for _ in range(3)] == [True, True, False]
