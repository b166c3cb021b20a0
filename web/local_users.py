"""Who is at the other end of a loopback connection, and whether the CLI would serve them.

Owns, for the page on a loopback address without a password: finding the local user id
of the process that opened a TCP connection to the page, from the kernel's socket table
(``/proc/self/net/tcp`` and ``tcp6``: the row whose local address and port are the
client's and whose remote ones are the page's; its ``uid`` column, when a process
still holds that socket: not a ``TIME_WAIT`` row nor one whose inode is 0), as identd does;
and the rule for who may use the page then: the users the control socket serves
(root, the controller's user, a member of the socket's group: ``firmware_host.control``'s
``peer_allowed``, here from the group database since a TCP peer has no pid to ask) and
the page's own user. So the page never gives a local account more than the CLI gives it.

``/proc/self/net`` and not ``/proc/net``: under the unit's ``ProcSubset=pid`` only the
process directories and ``self`` are mounted (docs/deployment.md).
Does not own the refusal's page nor when the check applies (``web.guard``).
"""

from __future__ import annotations

import grp
import ipaddress
import logging
import os
import pwd
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from firmware_host.paths import control_socket_path

log = logging.getLogger(__name__)

PROC_NET: Final = Path("/proc/self/net")
DEFAULT_GROUP_NAME: Final = "nirpad"
# Rows that stand for no socket: a TIME_WAIT row shows uid 0 whoever made the connection,
# a pending SYN_RECV one the listener's user.
NO_OWNER_STATES: Final = frozenset({0x06, 0x0C})
# A socket no process holds any more (closed while its FIN is under way: FIN_WAIT1,
# FIN_WAIT2, CLOSING, LAST_ACK) has inode 0 and, on most kernels, uid 0: anyone's
# connection, closed right after its request was sent, would pass as root's.
NO_INODE: Final = 0
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Endpoint = tuple[Address, int]
ByteOrder = Literal["little", "big"]


@dataclass(frozen=True)
class TcpRow:
    local: Endpoint
    remote: Endpoint
    state: int
    uid: int
    inode: int

    @property
    def owned(self) -> bool:
        """Whether the row's ``uid`` is the user of a socket a process still holds."""
        return self.state not in NO_OWNER_STATES and self.inode != NO_INODE


def _address(text: str, byteorder: ByteOrder) -> Endpoint:
    """``0100007F:1F90`` → (127.0.0.1, 8080): the kernel prints each 32-bit word of the
    address in the host's byte order and the port as a number."""
    hex_address, hex_port = text.split(":")
    raw = b"".join(
        int(hex_address[i : i + 8], 16).to_bytes(4, byteorder)
        for i in range(0, len(hex_address), 8)
    )
    return ipaddress.ip_address(raw), int(hex_port, 16)


def parse_tcp_table(text: str, byteorder: ByteOrder = sys.byteorder) -> Iterator[TcpRow]:
    """The rows of ``/proc/net/tcp`` or ``tcp6`` text (the heading and bad rows skipped)."""
    for line in text.splitlines()[1:]:
        parts = line.split()
        try:
            yield TcpRow(
                _address(parts[1], byteorder), _address(parts[2], byteorder),
                int(parts[3], 16), int(parts[7]), int(parts[9]),
            )  # fmt: skip
        except (IndexError, ValueError):
            continue


def _endpoint(end: object) -> Endpoint | None:
    """An ASGI ``client`` or ``server`` pair as an address and a port (None: not TCP/IP)."""
    if not isinstance(end, (tuple, list)) or len(end) != 2:
        return None
    host, port = end
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]), int(port)
    except ValueError:
        return None


def _candidates(end: Endpoint) -> list[tuple[str, Endpoint]]:
    """Where a connection's row may be: ``tcp`` for IPv4, ``tcp6`` for IPv6; an
    IPv4-mapped address (a dual-stack listener) may have its client in either."""
    address, port = end
    if isinstance(address, ipaddress.IPv4Address):
        return [("tcp", end)]
    mapped = address.ipv4_mapped
    return [("tcp6", end)] + ([] if mapped is None else [("tcp", (mapped, port))])


def peer_uid(client: object, server: object, proc_net: Path = PROC_NET) -> int | None:
    """The user id that opened the connection from ``client`` to ``server`` (the ASGI
    scope's pairs), or None when no live row says so."""
    client_end, server_end = _endpoint(client), _endpoint(server)
    if client_end is None or server_end is None:
        return None
    server_by_file = dict(_candidates(server_end))
    for name, wanted in _candidates(client_end):
        try:
            text = (proc_net / name).read_text()
        except OSError as exc:
            log.warning("cannot read %s: %s", proc_net / name, exc)
            continue
        server_here = server_by_file.get(name) or server_end
        for row in parse_tcp_table(text):
            if row.local == wanted and row.remote == server_here:
                return row.uid if row.owned else None
    return None


def user_groups(uid: int) -> frozenset[int]:
    """The groups the group database gives ``uid``'s user (its primary one included)."""
    try:
        user = pwd.getpwuid(uid)
        return frozenset(os.getgrouplist(user.pw_name, user.pw_gid))
    except (KeyError, OSError):
        return frozenset()


@dataclass(frozen=True)
class LocalUsers:
    """The local users who may use a page without a password: root, the controller's
    user and a member of the control socket's group (the state directory's owner and
    group while no controller runs), and the page's own user."""

    state_dir: Path
    own_uid: int = field(default_factory=os.geteuid)
    proc_net: Path = PROC_NET
    groups_of: Callable[[int], frozenset[int]] = user_groups

    def _owner(self) -> tuple[int, int]:
        for path in (control_socket_path(self.state_dir), self.state_dir):
            try:
                info = os.stat(path)
            except OSError:
                continue
            return info.st_uid, info.st_gid
        return self.own_uid, os.getegid()

    def allowed(self, uid: int) -> bool:
        owner_uid, group = self._owner()
        return uid in (0, owner_uid, self.own_uid) or group in self.groups_of(uid)

    def group_name(self) -> str:
        try:
            return grp.getgrgid(self._owner()[1]).gr_name
        except KeyError:
            return DEFAULT_GROUP_NAME
