"""Without a password the page serves only the local users the control socket serves.

The sample tables in ``proc_net/`` are little-endian hosts' ``/proc/net/tcp`` and
``tcp6`` (the page on 127.0.0.1:8480 and [::1]:8480, several clients); the last test
makes a real loopback connection and finds its user in the real table.
"""

from __future__ import annotations

import html
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from tests.web.conftest import BASE_URL
from web.app import create_app
from web.local_users import LocalUsers, parse_tcp_table, peer_uid, user_groups
from web.serve import settings_for
from web.settings import WebSettings

SAMPLES = Path(__file__).parent / "proc_net"
PAGE_V4 = ("127.0.0.1", 8480)
PAGE_V6 = ("::1", 8480)


def test_the_sample_table_is_read_row_by_row_and_bad_rows_are_skipped() -> None:
    rows = list(parse_tcp_table((SAMPLES / "tcp").read_text()))
    assert [(str(r.local[0]), r.local[1], r.state, r.uid) for r in rows] == [
        ("127.0.0.1", 8480, 0x0A, 998),
        ("127.0.0.1", 8480, 0x01, 998),
        ("127.0.0.1", 50000, 0x01, 1001),
        ("127.0.0.1", 50001, 0x06, 0),
        ("127.0.0.2", 50002, 0x01, 0),
    ]


@pytest.mark.parametrize(
    ("client", "server", "uid"),
    [
        (("127.0.0.1", 50000), PAGE_V4, 1001),  # the client's row, not the page's (998)
        (("127.0.0.2", 50002), PAGE_V4, 0),
        (("::1", 50010), PAGE_V6, 1002),
        (("::ffff:127.0.0.1", 50020), ("::ffff:127.0.0.1", 8480), 1003),
        (("127.0.0.1", 50001), PAGE_V4, None),  # TIME_WAIT shows uid 0 for anyone
        (("127.0.0.1", 50009), PAGE_V4, None),  # no such connection
        (("127.0.0.1", 50000), ("127.0.0.1", 8481), None),  # to another server
        (("testclient", 50000), PAGE_V4, None),
        (None, PAGE_V4, None),
    ],
)
def test_the_user_of_a_connection_is_its_client_rows_uid(
    client: tuple[str, int] | None, server: tuple[str, int], uid: int | None
) -> None:
    assert peer_uid(client, server, SAMPLES) == uid


def test_an_unreadable_table_finds_nobody(tmp_path: Path) -> None:
    assert peer_uid(("127.0.0.1", 50000), PAGE_V4, tmp_path) is None


def _users(state_dir: Path, members: frozenset[int] = frozenset()) -> LocalUsers:
    group = os.stat(state_dir).st_gid

    def groups_of(uid: int) -> frozenset[int]:
        return frozenset({group}) if uid in members else frozenset({4242})

    return LocalUsers(state_dir, own_uid=998, proc_net=SAMPLES, groups_of=groups_of)


def test_root_the_pads_user_the_pages_own_user_and_group_members_are_allowed(
    state_dir: Path,
) -> None:
    owner = os.stat(state_dir).st_uid
    users = _users(state_dir, members=frozenset({1001}))
    assert all(users.allowed(uid) for uid in (0, owner, 998, 1001))
    assert not users.allowed(1002)


def test_the_control_sockets_owner_and_group_decide_while_it_exists(state_dir: Path) -> None:
    dir_group = os.stat(state_dir).st_gid
    groups = {1234: frozenset({1006}), 1235: frozenset({dir_group})}
    users = LocalUsers(state_dir, own_uid=998, groups_of=lambda uid: groups.get(uid, frozenset()))
    assert users.allowed(1235) and not users.allowed(1005)  # no socket: the directory's
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(state_dir / "control.sock"))
        os.chown(state_dir / "control.sock", 1005, 1006)
        assert users.allowed(1005)  # the controller's user
        assert users.allowed(1234)  # a member of the socket's group
        assert not users.allowed(1235)  # only of the directory's
    finally:
        sock.close()


@pytest.fixture
def local_client(state_dir: Path) -> Callable[..., TestClient]:
    def make(client: tuple[str, int], members: frozenset[int] = frozenset()) -> TestClient:
        settings = WebSettings(state_dir, local_users=_users(state_dir, members))
        app = create_app(settings)

        async def as_client(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "client": client, "server": PAGE_V4}, receive, send)

        return TestClient(as_client, base_url=BASE_URL)

    return make


def test_without_a_password_a_refused_user_gets_a_403_that_says_how_to_grant_it(
    local_client: Callable[..., TestClient],
) -> None:
    refused = local_client(("127.0.0.1", 50000))  # uid 1001, not a member
    for path in ("/", "/course", "/healthz", "/static/style.css"):
        assert refused.get(path).status_code == 403, path
    response = refused.post("/control/start", data={"csrf_token": "x"})
    assert response.status_code == 403
    text = html.unescape(response.text)
    assert "may not use the pad's page" in text and "usermod -aG" in text
    assert local_client(("127.0.0.1", 50001)).get("/").status_code == 403  # TIME_WAIT: unknown


def test_without_a_password_an_allowed_user_gets_the_page(
    local_client: Callable[..., TestClient],
) -> None:
    assert local_client(("127.0.0.1", 50000), members=frozenset({1001})).get("/").status_code == 200
    assert local_client(("127.0.0.2", 50002)).get("/").status_code == 200  # root


def test_the_check_is_on_exactly_on_loopback_without_a_password(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "127.0.0.1", None, None)
    assert settings.local_users is not None and settings.local_users.state_dir == tmp_path
    assert settings.local_users.own_uid == os.geteuid()
    assert settings.local_users.proc_net == Path("/proc/self/net")


def test_a_real_loopback_connection_is_found_as_our_own_user() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        try:
            found = peer_uid(client.getsockname(), server.getsockname())
            reverse = peer_uid(accepted.getsockname(), client.getsockname())
        finally:
            accepted.close()
            client.close()
    assert found == os.geteuid()
    assert reverse == os.geteuid()  # the page's own end, by the same rule


def test_a_real_ipv6_loopback_connection_is_found_too() -> None:
    with socket.create_server(("::1", 0), family=socket.AF_INET6) as server:
        client = socket.create_connection(server.getsockname()[:2])
        try:
            found = peer_uid(client.getsockname()[:2], server.getsockname()[:2])
        finally:
            client.close()
    assert found == os.geteuid()


def test_a_users_groups_come_from_the_group_database() -> None:
    assert 0 in user_groups(0)  # root's own group
    assert user_groups(2**31 - 2) == frozenset()  # no such user


ORPHAN_TABLE = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
    "   0: 0100007F:C360 0100007F:2120 05 00000000:00000000 00:00000000 00000000     0"
    "        0 0 1 0000000099f0281c 20 4 30 10 -1\n"
)


def test_a_connection_its_client_closed_belongs_to_nobody(tmp_path: Path) -> None:
    """Closed by its client while the page still reads its request, a socket no process
    holds shows inode 0 and uid 0: it must not pass as root's."""
    (tmp_path / "tcp").write_text(ORPHAN_TABLE)
    assert peer_uid(("127.0.0.1", 50016), PAGE_V4, tmp_path) is None


def test_a_real_connection_closed_by_its_client_is_not_found_as_anyones() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        client = socket.create_connection(server.getsockname())
        accepted, _ = server.accept()
        try:
            client_end = client.getsockname()
            assert peer_uid(client_end, server.getsockname()) == os.geteuid()
            client.close()  # FIN_WAIT: the kernel keeps the row, held by no process
            found = peer_uid(client_end, server.getsockname())
        finally:
            accepted.close()
    assert found is None
