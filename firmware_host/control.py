"""The control socket: how the CLI talks to a running controller.

Owns: the Unix stream socket ``<state_dir>/control.sock`` (mode 0660, never a network
listener), the peer-credential check (root, the controller's own uid, or a member of
the socket's group), and the server threads that turn one JSON request line into one
JSON reply line (format in ``firmware_host.control_client``).

Slow or unkind clients (docs/architecture.md, "Control socket"): an accept thread hands
each connection to its own short-lived thread, at most ``MAX_CLIENTS`` at a time (more
are told "busy" at once), so no client holds up another. A request must arrive whole
within ``READ_DEADLINE_S`` of the connection (not per byte), within
``MAX_REQUEST_BYTES``, of at most ``MAX_STRINGS`` strings and ``MAX_STRUCTURE_BYTES``
besides (checked before it is parsed), nested at most ``MAX_JSON_DEPTH`` deep and as real
text (no lone surrogates); anything else gets a clear refusal. Each request carries its client's
deadline (``deadline_s`` on the host's monotonic clock, or ``timeout_s``); the server
turns it into an absolute deadline on its injected clock, less ``REPLY_MARGIN_S`` so its
answer still arrives in time, and a command that reaches the loop past it is dropped
and logged, never carried out.

Does not own what a command does. Commands and status run on the event-loop thread,
through ``loop.call_soon_threadsafe``, and are quick; the server thread only waits for
the answer. ``install`` is the exception: the installer validates and writes on the
connection's thread and hops onto the loop only for the cheap parts (see
``runner.make_installer``). This module never touches the safety core, the ledger or
the board itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import select
import selectors
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
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
from firmware_host.control_request import (
    READ_DEADLINE_S,
    answer_deadline,
    decode_request,
    read_request,
)
from firmware_host.paths import check_socket_path, control_socket_path
from safety.log_limit import RepeatLimiter

log = logging.getLogger(__name__)

SOCKET_MODE: Final = 0o660
MAX_CLIENTS: Final = 8
"""Connections served at once; one more is told "busy" at once and closed."""
ANSWER_TIMEOUT_S: Final = 5.0
"""The most the server waits for the loop per step, and the deadline of a request that
names none."""
SEND_TIMEOUT_S: Final = 1.0
ACCEPT_RETRY_S: Final = 0.1
"""After a failed accept (out of file descriptors: the connection stays queued and the
socket stays readable), wait this long before the next try instead of spinning."""
SHOWN_COMMAND_CHARS: Final = 40
"""An unknown or late command is named in the log and the reply by at most this much."""
BUTTON_COMMANDS: Final = frozenset({"start", "pause", "resume", "stop", "ack"})
CAREGIVER_COMMANDS: Final = frozenset({"clock_confirm", "ledger_reset"})
KNOWN_COMMANDS: Final = BUTTON_COMMANDS | CAREGIVER_COMMANDS | {"status", "install"}
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


class OnLoop(Protocol):
    """Runs ``fn`` on the loop within the request's deadline and returns its result;
    raises TimeoutError when the deadline passes first (``fn`` then never runs).
    ``even_late`` runs it all the same (for a consequence of a change already made)."""

    def __call__(self, fn: Callable[[], _T], *, even_late: bool = False) -> _T: ...


# Called on the connection's thread with (file name, TOML text, a way onto the loop);
# see runner.make_installer.
Installer = Callable[[str, str, OnLoop], ReplyLike]
_EXPIRED: Final = object()  # what a call returns when it reached the loop too late


class NotCarriedOut(TimeoutError):
    """The request's deadline passed before its command ran: it never will."""


def peer_credentials(conn: socket.socket) -> PeerCredentials:
    """The kernel's SO_PEERCRED record of the process at the other end of ``conn``."""
    size = struct.calcsize("3i")
    pid, uid, gid = struct.unpack(
        "3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, size)
    )
    return PeerCredentials(pid=pid, uid=uid, gid=gid)


def peer_groups(cred: PeerCredentials, proc: Path = Path("/proc")) -> frozenset[int]:
    """Supplementary groups of the peer: its process's own list from /proc, or, where
    /proc hides other users' processes (the unit's ``ProtectProc=invisible``), the
    groups the system's group database gives its user."""
    try:
        text = (proc / str(cred.pid) / "status").read_text()
    except OSError:
        return _database_groups(cred)
    for line in text.splitlines():
        if line.startswith("Groups:"):
            return frozenset(int(g) for g in line.split()[1:])
    return frozenset()


def _database_groups(cred: PeerCredentials) -> frozenset[int]:
    """The groups of ``cred.uid``'s user in the group database (empty if it has none)."""
    try:
        name = pwd.getpwuid(cred.uid).pw_name
        return frozenset(os.getgrouplist(name, cred.gid))
    except (KeyError, OSError):
        return frozenset()


def peer_allowed(cred: PeerCredentials, socket_gid: int, own_uid: int) -> bool:
    """Root, the controller's own user, or a member of the socket's group."""
    if cred.uid in (0, own_uid) or cred.gid == socket_gid:
        return True
    return socket_gid in peer_groups(cred)


class ControlServer:
    """Serves ``<state_dir>/control.sock``: one thread accepts, one thread per client."""

    def __init__(
        self,
        state_dir: Path,
        controller: ControllerLike,
        loop: LoopLike,
        *,
        installer: Installer | None = None,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
        read_deadline_s: float = READ_DEADLINE_S,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = control_socket_path(state_dir)
        self._controller = controller
        self._loop = loop
        self._installer = installer
        self._answer_timeout_s = answer_timeout_s
        self._read_deadline_s = read_deadline_s
        self._max_clients = max_clients
        self._clock = clock  # the host's monotonic clock: clients name deadlines on it
        self._listener: socket.socket | None = None
        self._inode: int | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = os.pipe()
        self._lock = threading.Lock()
        self._clients: dict[threading.Thread, socket.socket] = {}
        self._pending: set[Future[Any]] = set()  # cancelled by close() if the loop is gone
        self._closing = threading.Event()
        self._log_limit = RepeatLimiter(log, time.monotonic)  # one line a minute per kind

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
        """Stop the threads, remove the socket (if still ours), free everything."""
        if self._thread is not None:
            self._closing.set()
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=SEND_TIMEOUT_S + 1.0)
            self._thread = None
        self._end_clients()
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

    def _end_clients(self) -> None:
        """Cancel calls a stopped loop will never run, cut every client, join them."""
        with self._lock:
            pending, clients = list(self._pending), dict(self._clients)
        for future in pending:
            future.cancel()
        for conn in clients.values():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)  # a blocked recv returns; replies still go out
        for thread in clients:
            thread.join(timeout=SEND_TIMEOUT_S + 1.0)

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
                    if not self._accept_one() and self._stopped_within(ACCEPT_RETRY_S):
                        return

    def _stopped_within(self, timeout_s: float) -> bool:
        """Wait ``timeout_s`` unless ``close`` asks the thread to stop first."""
        ready, _, _ = select.select([self._stop_r], [], [], timeout_s)
        return bool(ready)

    def _accept_one(self) -> bool:
        """Accept one connection and hand it over; False if accept failed."""
        assert self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except OSError as exc:
            self._log_limit.log("accept", logging.WARNING, f"control socket accept failed: {exc}")
            return False
        received_s = self._clock()
        with self._lock:
            busy = len(self._clients) >= self._max_clients or self._closing.is_set()
            if not busy:
                thread = threading.Thread(
                    target=self._client, args=(conn, received_s), name="nirpad-control-client",
                    daemon=True,
                )  # fmt: skip
                self._clients[thread] = conn
                thread.start()
        if busy:
            message = f"control socket busy: {self._max_clients} clients already; one refused"
            self._log_limit.log("busy", logging.WARNING, message)
            busy_reply = ControlReply(False, EXIT_ERROR, "the controller is busy; retry")
            _send_and_close(conn, busy_reply, self._log_limit)
        return True

    def _client(self, conn: socket.socket, received_s: float) -> None:
        """One connection, on its own thread: read, answer, close."""
        try:
            reply = self._handle(conn, received_s)
            _send_and_close(conn, reply, self._log_limit)
        except Exception:  # this thread must end cleanly whatever one client does
            log.exception("control request failed")
            conn.close()
        finally:
            with self._lock:
                self._clients.pop(threading.current_thread(), None)

    def _handle(self, conn: socket.socket, received_s: float) -> ReplyLike:
        cred = peer_credentials(conn)
        line = read_request(conn, received_s, self._clock, self._read_deadline_s)
        if not peer_allowed(cred, self._socket_gid(), os.geteuid()):
            refused = f"refused a control request from uid {cred.uid} (pid {cred.pid})"
            self._log_limit.log("peer", logging.WARNING, refused)
            return ControlReply(False, EXIT_REFUSED, f"user id {cred.uid} may not control nirpad")
        request = line if isinstance(line, ControlReply) else decode_request(line)
        if isinstance(request, ControlReply):
            refused = f"refused a control request from pid {cred.pid}: {request.message}"
            self._log_limit.log(request.message, logging.WARNING, refused)
            return request
        deadline_s = answer_deadline(request, received_s, self._answer_timeout_s)
        if isinstance(deadline_s, ControlReply):
            return deadline_s
        return self.dispatch(request, deadline_s)

    def _socket_gid(self) -> int:
        try:
            return os.stat(self.path).st_gid
        except OSError:
            return os.getegid()

    def dispatch(self, request: dict[str, Any], deadline_s: float | None = None) -> ReplyLike:
        """Answer one decoded request by ``deadline_s`` on the server's clock (default:
        ``answer_timeout_s`` from now). Public so tests can drive it without a socket."""
        cmd = request.get("cmd")
        if deadline_s is None:
            deadline_s = self._clock() + self._answer_timeout_s
        try:
            if self._clock() >= deadline_s:
                raise NotCarriedOut("its deadline passed before it was read")
            if cmd == "status":
                data = self._on_loop(self._controller.status, deadline_s, "status")
                return ControlReply(True, EXIT_OK, "", data)
            if isinstance(cmd, str) and cmd in BUTTON_COMMANDS:
                return self._on_loop(lambda: self._controller.command(cmd), deadline_s, cmd)
            if isinstance(cmd, str) and cmd in CAREGIVER_COMMANDS:
                args = {"now": request.get("now")}
                return self._on_loop(lambda: self._controller.command(cmd, args), deadline_s, cmd)
            if cmd == "install":
                return self._install(request, deadline_s)
        except NotCarriedOut as exc:
            late = f"control command {_shown(cmd)} not carried out: {exc}"
            self._log_limit.log("not carried out", logging.WARNING, late)
            message = f"the controller did not answer in time; {_named(cmd)} was not carried out"
            return ControlReply(False, EXIT_ERROR, message)
        except TimeoutError as exc:
            self._log_limit.log("late", logging.WARNING, f"control command {_shown(cmd)}: {exc}")
            return ControlReply(False, EXIT_ERROR, "the controller did not answer in time")
        except Exception as exc:  # a controller bug must reach the user, not kill this thread
            log.exception("control command %s failed", _shown(cmd))
            return ControlReply(False, EXIT_ERROR, f"the controller failed: {exc}")
        return ControlReply(False, EXIT_USAGE, f"unknown command {_shown(cmd)}")

    def _install(self, request: dict[str, Any], deadline_s: float) -> ReplyLike:
        name, data = request.get("name"), request.get("data")
        if not isinstance(name, str) or not isinstance(data, str):
            return ControlReply(False, EXIT_USAGE, "install needs a file name and its text")
        if self._installer is None:
            return ControlReply(False, EXIT_ERROR, "this controller cannot install profiles")

        def on_loop(fn: Callable[[], _T], *, even_late: bool = False) -> _T:
            return self._on_loop(fn, None if even_late else deadline_s, "install")

        return self._installer(name, data, on_loop)  # validates here, off the loop

    def _on_loop(self, fn: Callable[[], _T], deadline_s: float | None, what: str) -> _T:
        """Run ``fn`` on the loop thread unless ``deadline_s`` passes first (then it is
        dropped, logged, and TimeoutError raised). ``None``: no deadline, only the
        server's own bound (``answer_timeout_s``) on the wait."""
        clock = self._clock

        def if_in_time() -> Any:
            if deadline_s is not None and clock() >= deadline_s:
                return _EXPIRED
            return fn()

        future = self._loop.call_soon_threadsafe(if_in_time)
        with self._lock:
            self._pending.add(future)
        if self._closing.is_set():
            future.cancel()
        try:
            result = self._result(future, deadline_s)
        finally:
            with self._lock:
                self._pending.discard(future)
        if result is _EXPIRED:
            dropped = f"dropped {what}: it reached the loop after its client's deadline"
            self._log_limit.log("dropped", logging.WARNING, dropped)
            raise NotCarriedOut("it reached the loop after its deadline")
        return result  # type: ignore[no-any-return]

    def _result(self, future: Future[Any], deadline_s: float | None) -> Any:
        wait_s = self._answer_timeout_s
        if deadline_s is not None:
            wait_s = min(wait_s, max(0.0, deadline_s - self._clock()))
        try:
            return future.result(timeout=wait_s)
        except CancelledError:
            raise NotCarriedOut("the controller stopped before answering") from None
        except FutureTimeout:
            if future.cancel():  # still queued: it will never run
                raise NotCarriedOut("the loop did not take it up in time") from None
        # Already running on the loop (a call takes less than a tick): its answer stands.
        try:
            return future.result(timeout=self._answer_timeout_s)
        except (CancelledError, FutureTimeout):
            raise TimeoutError("the controller did not finish in time") from None


def _shown(cmd: object) -> str:
    """A request's command as a log line or a reply names it: quoted, at most
    ``SHOWN_COMMAND_CHARS`` long (a client chooses it)."""
    text = repr(cmd)
    if len(text) <= SHOWN_COMMAND_CHARS:
        return text
    return text[: SHOWN_COMMAND_CHARS - 3] + "..."


def _named(cmd: object) -> str:
    """A known command by its name, anything else as ``_shown`` shows it."""
    known = isinstance(cmd, str) and cmd in KNOWN_COMMANDS
    return str(cmd) if known else _shown(cmd)


def _send_and_close(conn: socket.socket, reply: ReplyLike, log_limit: RepeatLimiter) -> None:
    """Send ``reply`` (bounded: a client that does not read is not waited for), close."""
    with conn:
        try:
            conn.settimeout(SEND_TIMEOUT_S)
            conn.sendall(encode_reply(reply))
            conn.shutdown(socket.SHUT_WR)
        except OSError as exc:
            log_limit.log("left", logging.INFO, f"a control client left before its answer: {exc}")
