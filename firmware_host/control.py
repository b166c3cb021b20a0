"""The control socket: how the CLI talks to a running controller.

Owns: the Unix stream socket ``<state_dir>/control.sock`` (mode 0660, never a network
listener), the peer-credential check (root, the controller's own uid, or a member of
the socket's group), and the server thread that turns one JSON request line into one
JSON reply line (format in ``firmware_host.control_client``).

Does not own what a command does. Every command runs on the event-loop thread, through
``loop.call_soon_threadsafe``; this thread only waits for the answer. It never touches
the safety core, the ledger or the board itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import stat
import struct
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from firmware_host.control_client import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    ControlReply,
    encode_reply,
)
from firmware_host.paths import check_socket_path, control_socket_path

log = logging.getLogger(__name__)

SOCKET_MODE: Final = 0o660
MAX_REQUEST_BYTES: Final = 1 << 20
BUTTON_COMMANDS: Final = frozenset({"start", "pause", "resume", "stop", "ack"})
_T = TypeVar("_T")


class ControlServerError(OSError):
    """The control socket cannot be served. ``path`` names the socket."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class ReplyLike(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def exit_code(self) -> int: ...
    @property
    def message(self) -> str: ...
    @property
    def data(self) -> Any: ...


class ControllerLike(Protocol):
    def command(self, name: str, args: dict[str, Any] | None = None) -> ReplyLike: ...
    def status(self) -> dict[str, Any]: ...


class LoopLike(Protocol):
    def call_soon_threadsafe(self, fn: Callable[[], _T]) -> Future[_T]: ...


@dataclass(frozen=True)
class PeerCredentials:
    pid: int
    uid: int
    gid: int


# Called on the loop thread with (file name, TOML text); see runner.make_installer.
Installer = Callable[[str, str], ReplyLike]


def peer_credentials(conn: socket.socket) -> PeerCredentials:
    """The kernel's SO_PEERCRED record of the process at the other end of ``conn``."""
    size = struct.calcsize("3i")
    pid, uid, gid = struct.unpack(
        "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    )
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


def peer_groups(cred: PeerCredentials) -> frozenset[int]:
    """Supplementary groups of the peer process, from /proc (empty if unreadable)."""
    try:
        text = Path(f"/proc/{cred.pid}/status").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("Groups:"):
            return frozenset(int(g) for g in line.split()[1:])
    return frozenset()


def peer_allowed(cred: PeerCredentials, socket_gid: int, own_uid: int) -> bool:
    """Root, the controller's own user, or a member of the socket's group."""
    if cred.uid in (0, own_uid) or cred.gid == socket_gid:
        return True
    return socket_gid in peer_groups(cred)


class ControlServer:
    """Serves ``<state_dir>/control.sock`` on one thread; commands run on the loop."""

    def __init__(
        self,
        state_dir: Path,
        controller: ControllerLike,
        loop: LoopLike,
        *,
        installer: Installer | None = None,
        answer_timeout_s: float = 5.0,
        conn_timeout_s: float = 2.0,
    ) -> None:
        self.path = control_socket_path(state_dir)
        self._controller = controller
        self._loop = loop
        self._installer = installer
        self._answer_timeout_s = answer_timeout_s
        self._conn_timeout_s = conn_timeout_s
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._pending: Future[Any] | None = None  # cancelled by close() if the loop is gone
        self._closing = threading.Event()

    def start(self) -> None:
        """Bind the socket (mode 0660 before it appears under its name) and serve."""
        check_socket_path(self.path)
        self._refuse_if_running()
        tmp = self.path.with_name(f".ctl{os.getpid()}")
        tmp.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(tmp))
            os.chmod(tmp, SOCKET_MODE)
            os.rename(tmp, self.path)
            listener.listen(8)
        except OSError as exc:
            listener.close()
            tmp.unlink(missing_ok=True)
            raise ControlServerError(f"cannot serve {self.path}: {exc}", path=self.path) from exc
        self._listener = listener
        self._inode = os.stat(self.path).st_ino
        self._thread = threading.Thread(target=self._serve, name="nirpad-control", daemon=True)
        self._thread.start()
        log.info("control socket listening on %s", self.path)

    def close(self) -> None:
        """Stop the server thread, remove the socket (if still ours), free everything."""
        if self._thread is not None:
            self._closing.set()
            os.write(self._stop_w, b"x")
            pending = self._pending
            if pending is not None:
                pending.cancel()  # a stopped loop will never run it
            self._thread.join(timeout=self._answer_timeout_s + self._conn_timeout_s + 1.0)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            try:
                if os.stat(self.path).st_ino == self._inode:
                    self.path.unlink()
            except FileNotFoundError:
                pass
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._stop_r = self._stop_w = -1

    def _refuse_if_running(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise ControlServerError(f"{self.path} exists and is not a socket", path=self.path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.path))
            except OSError:
                log.info("removing the stale control socket %s", self.path)
                return
        raise ControlServerError(
            f"another controller is already running with {self.path}", path=self.path
        )

    def _serve(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self._listener, selectors.EVENT_READ)
            sel.register(self._stop_r, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    if key.fileobj == self._stop_r:
                        return
                    self._accept_one()

    def _accept_one(self) -> None:
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            log.warning("control socket accept failed: %s", exc)
            return
        with conn:
            try:
                conn.settimeout(self._conn_timeout_s)
                reply = self._handle(conn)
                conn.sendall(encode_reply(reply))
            except Exception:  # the server thread must survive any one client
                log.exception("control request failed")

    def _handle(self, conn: socket.socket) -> ReplyLike:
        cred = peer_credentials(conn)
        if not peer_allowed(cred, self._socket_gid(), os.geteuid()):
            log.warning("refused a control request from uid %d (pid %d)", cred.uid, cred.pid)
            _read_request(conn)  # (bounded) let it finish sending: it then reads the refusal
            return ControlReply(False, EXIT_REFUSED, f"user id {cred.uid} may not control nirpad")
        request = _read_request(conn)
        if isinstance(request, ControlReply):
            return request
        return self.dispatch(request)

    def _socket_gid(self) -> int:
        try:
            return os.stat(self.path).st_gid
        except OSError:
            return os.getegid()

    def dispatch(self, request: dict[str, Any]) -> ReplyLike:
        """Answer one decoded request (public so tests can drive it without a socket)."""
        cmd = request.get("cmd")
        try:
            if cmd == "status":
                return ControlReply(True, EXIT_OK, "", self._on_loop(self._controller.status))
            if isinstance(cmd, str) and cmd in BUTTON_COMMANDS:
                return self._on_loop(lambda: self._controller.command(cmd))
            if cmd == "install":
                return self._install(request)
        except TimeoutError:
            return ControlReply(False, EXIT_ERROR, "the controller did not answer in time")
        except Exception as exc:  # a controller bug must reach the user, not kill this thread
            log.exception("control command %r failed", cmd)
            return ControlReply(False, EXIT_ERROR, f"the controller failed: {exc}")
        return ControlReply(False, EXIT_USAGE, f"unknown command {cmd!r}")

    def _install(self, request: dict[str, Any]) -> ReplyLike:
        name, data = request.get("name"), request.get("data")
        if not isinstance(name, str) or not isinstance(data, str):
            return ControlReply(False, EXIT_USAGE, "install needs a file name and its text")
        if self._installer is None:
            return ControlReply(False, EXIT_ERROR, "this controller cannot install profiles")
        installer = self._installer
        return self._on_loop(lambda: installer(name, data))

    def _on_loop(self, fn: Callable[[], _T]) -> _T:
        future = self._loop.call_soon_threadsafe(fn)
        self._pending = future
        if self._closing.is_set():
            future.cancel()
        try:
            return future.result(timeout=self._answer_timeout_s)
        except CancelledError:
            raise TimeoutError("the controller stopped before answering") from None
        finally:
            self._pending = None


def _read_request(conn: socket.socket) -> dict[str, Any] | ControlReply:
    buf = b""
    while not buf.endswith(b"\n") and len(buf) <= MAX_REQUEST_BYTES:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    if len(buf) > MAX_REQUEST_BYTES:
        return ControlReply(False, EXIT_USAGE, "request too large")
    try:
        request = json.loads(buf)
    except ValueError:
        return ControlReply(False, EXIT_USAGE, "request is not JSON")
    if not isinstance(request, dict):
        return ControlReply(False, EXIT_USAGE, "request is not a JSON object")
    return request
