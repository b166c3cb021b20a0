"""The page's uvicorn on a thread, as ``nirpad web`` runs it (``web.http_server.
server_config``), on an ephemeral 127.0.0.1 port, and raw sockets to talk to it: for
the tests of slow clients and of the connections each client may open.

Owns: starting and stopping that server with the limits a test injects (a request
deadline of a fraction of a second by default), connecting from a loopback address
(127.0.0.2 stands for another device: Linux routes all of 127.0.0.0/8 to loopback),
and reading until the server closes. No helper measures the wall clock: a connection is
"closed" when the server ends it before ``GUARD_S``, the socket's own timeout, which
only keeps a failing test short.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp

from web.http_server import MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT, server_config

DEADLINE_S = 0.3
GUARD_S = 5.0
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
FORM_HEAD = (
    b"POST /control/start HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n"
)


@contextlib.contextmanager
def serving(
    app: ASGIApp,
    *,
    max_connections: int = MAX_CONNECTIONS,
    max_connections_per_client: int = MAX_CONNECTIONS_PER_CLIENT,
    cap_loopback: bool = False,
    request_timeout_s: float = DEADLINE_S,
    tls: tuple[str, str] | None = None,
) -> Iterator[int]:
    """The page's uvicorn on a thread; yields its port, and stops it at the end."""
    cert, key = tls or (None, None)
    config = server_config(
        app,
        "127.0.0.1",
        0,
        cert,
        key,
        request_timeout_s=request_timeout_s,
        max_connections=max_connections,
        max_connections_per_client=max_connections_per_client,
        cap_loopback=cap_loopback,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test")
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(GUARD_S)


def connect(port: int, sent: bytes, source: str = "127.0.0.1") -> socket.socket:
    """A connection to the page from ``source`` (a loopback address), ``sent`` sent."""
    sock = socket.create_connection(("127.0.0.1", port), GUARD_S, source_address=(source, 0))
    sock.sendall(sent)
    return sock


def until_closed(sock: socket.socket) -> bytes:
    """All the server sent until it closed the connection (the client's end is left
    open); fails if the server never closes it."""
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except (ConnectionResetError, ssl.SSLEOFError):
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {GUARD_S} s")
    return received


def self_signed(
    folder: Path, host: str = "127.0.0.1", passphrase: bytes | None = None
) -> tuple[str, str]:
    """A day's self-signed certificate for ``host`` and its key (encrypted with
    ``passphrase`` if given), written to ``folder``; their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    encryption = NoEncryption() if passphrase is None else BestAvailableEncryption(passphrase)
    (folder / "c.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (folder / "k.pem").write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, encryption))
    return str(folder / "c.pem"), str(folder / "k.pem")
