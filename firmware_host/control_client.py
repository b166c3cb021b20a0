"""Client side of the control socket: one JSON request, one JSON reply.

Owns: connecting to ``<state_dir>/control.sock``, sending one request line and reading
one reply line. Does not own what the commands mean (``control`` and the controller do)
nor how the CLI prints replies (``cli``).

Wire format (shared with ``firmware_host.control``): the client sends one JSON object
terminated by ``\\n`` (``{"cmd": "status"}``, ``{"cmd": "start"}``,
``{"cmd": "install", "name": "rx.toml", "data": "<TOML text>"}``) and the server answers
one JSON object terminated by ``\\n``: ``{"ok": bool, "exit_code": int, "message": str,
"data": object}``. Then the server closes the connection. Each request also carries
``deadline_s``: when this client stops waiting, on the host's monotonic clock
(``time.monotonic``; the socket is local, so both ends read the same clock). The server
never carries out a command after that (``control_request.answer_deadline``).

Only the standard library is imported: ``nirpad status`` must start fast.
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import time
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from firmware_host.paths import check_socket_path, control_socket_path

MAX_REPLY_BYTES: Final = 1 << 20
MAX_REQUEST_BYTES: Final = 512 * 1024
"""A request line's cap: a 64 KiB prescription escaped as JSON is at most 6 times longer."""
EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_NOT_RUNNING: Final = 4
# These mean "nobody is listening": no controller runs for this state directory.
_NOT_RUNNING_ERRNOS: Final = frozenset({errno.ENOENT, errno.ECONNREFUSED, errno.ENOTDIR})


@dataclass(frozen=True)
class ControlReply:
    """One reply; the controller's ``CommandReply`` has the same four fields."""

    ok: bool
    exit_code: int
    message: str = ""
    data: Any = None


class ControlClientError(OSError):
    """Talking to the controller failed for a reason other than "none is running"."""


def send(state_dir: Path, request: dict[str, Any], timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Send ``request`` to the controller of ``state_dir`` and return its reply.

    Returns None when no controller runs there (socket missing or refused).
    Raises ControlClientError when one runs but the exchange fails (permission
    denied, no answer within ``timeout_s``, a reply that is not JSON).
    """
    deadline_s = time.monotonic() + timeout_s
    path = control_socket_path(state_dir)
    try:
        check_socket_path(path)
    except OSError as exc:
        raise ControlClientError(str(exc)) from exc
    line = encode_line({**request, "deadline_s": deadline_s})
    if len(line) > MAX_REQUEST_BYTES:
        raise ControlClientError(
            f"the request is larger than the controller accepts ({MAX_REQUEST_BYTES // 1024} KiB)"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            if exc.errno in _NOT_RUNNING_ERRNOS:
                return None
            raise ControlClientError(_describe(exc, path)) from exc
        try:
            _send_line(sock, line)  # the answer may come early: a refusal
            raw = _read_line(sock, deadline_s)
        except TimeoutError as exc:
            raise ControlClientError(
                f"the controller did not answer within {timeout_s:g} s"
            ) from exc
        except OSError as exc:
            raise ControlClientError(_describe(exc, path)) from exc
    return _parse_reply(raw)


def _send_line(sock: socket.socket, line: bytes) -> None:
    # The server stopped reading (it refused the request): its answer is there to read.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(line)


def encode_line(message: dict[str, Any]) -> bytes:
    """One wire line: compact JSON, dates as ISO 8601, anything else unknown as str."""
    return json.dumps(message, default=_json_default).encode() + b"\n"


def encode_reply(reply: Any) -> bytes:
    """The reply line for anything with ``ok``, ``exit_code``, ``message``, ``data``."""
    return encode_line(
        {
            "ok": bool(reply.ok),
            "exit_code": int(reply.exit_code),
            "message": str(reply.message or ""),
            "data": reply.data,
        }
    )


def _json_default(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def _read_line(sock: socket.socket, deadline_s: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining_s = deadline_s - time.monotonic()
        if remaining_s <= 0:
            raise TimeoutError
        sock.settimeout(remaining_s)  # one deadline for the whole answer, not per chunk
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n") or size > MAX_REPLY_BYTES:
            break
    return b"".join(chunks)


def _parse_reply(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        raise ControlClientError("the controller closed the connection without an answer")
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise ControlClientError("the controller sent an answer that is not JSON") from exc
    if not isinstance(reply, dict):
        raise ControlClientError("the controller sent an answer that is not a JSON object")
    return reply


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"permission denied on {path}: run as the controller's user, "
            "or as a member of the socket's group"
        )
    return f"cannot talk to the controller at {path}: {exc.strerror or exc}"
