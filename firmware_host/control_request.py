"""One control request off the wire: read it whole within its deadline, check it, and
work out until when its client still waits for the answer.

Owns: the limits on a request (``MAX_REQUEST_BYTES``, ``READ_DEADLINE_S`` for the whole
request, ``MAX_JSON_DEPTH``, ``MAX_STRINGS`` and ``MAX_STRUCTURE_BYTES``, real text
only) and their refusals, worded for a person; and the request's answer deadline
(``answer_deadline``). Every check here is linear in the request's size, and a request
is parsed only once its shape is known to be small (a few strings, however long, and
little else): parsing holds the interpreter's lock, which the event loop needs every
tick, for as long as it builds objects. Does not own what a command does (``control``
dispatches it) nor the wire format of replies (``control_client``).
"""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Callable
from typing import Any, Final

from firmware_host.control_client import EXIT_USAGE, MAX_REQUEST_BYTES, ControlReply

__all__ = [
    "MAX_ANSWER_S",
    "MAX_JSON_DEPTH",
    "MAX_REQUEST_BYTES",
    "MAX_STRINGS",
    "MAX_STRUCTURE_BYTES",
    "READ_DEADLINE_S",
    "REPLY_MARGIN_S",
    "answer_deadline",
    "decode_request",
    "read_request",
]

READ_DEADLINE_S: Final = 2.0
"""The whole request line must arrive within this of the connection (not per byte)."""
MAX_JSON_DEPTH: Final = 16
"""A real request is two levels deep; anything deeper than this is refused unparsed."""
MAX_STRINGS: Final = 64
"""Strings (keys and values) in one request; a real one has fewer than a dozen."""
MAX_STRUCTURE_BYTES: Final = 4096
"""Bytes outside the strings of one request (braces, numbers, commas); a real one has
under a hundred. With ``MAX_STRINGS``, this bounds the objects a parse can build."""
_STRING_SCANNER: Final = json.JSONDecoder()
MAX_ANSWER_S: Final = 60.0
"""No request is worked on longer than this, whatever deadline its client names."""
REPLY_MARGIN_S: Final = 0.5
"""Work stops this long before the client's deadline, so the reply still reaches it."""

Clock = Callable[[], float]


def refusal(message: str) -> ControlReply:
    return ControlReply(False, EXIT_USAGE, message)


def read_request(
    conn: socket.socket, received_s: float, clock: Clock, limit_s: float = READ_DEADLINE_S
) -> bytes | ControlReply:
    """The bytes up to the first newline, or a refusal: too slow (the whole line must be
    in within ``limit_s`` of ``received_s`` on ``clock``) or too large. EOF ends it too."""
    buf = bytearray()
    complete = False
    while not complete:
        remaining_s = received_s + limit_s - clock()
        if remaining_s <= 0:
            return refusal(f"the request did not arrive whole within {limit_s:g} s")
        conn.settimeout(remaining_s)
        try:
            chunk = conn.recv(65536)
        except TimeoutError:
            continue  # the loop's check words the refusal
        if not chunk:
            break
        buf += chunk
        complete = b"\n" in chunk  # only the new bytes: no rescan of the whole buffer
        if len(buf) > MAX_REQUEST_BYTES:
            return refusal(f"the request is larger than {MAX_REQUEST_BYTES // 1024} KiB")
    line = bytes(buf).split(b"\n", 1)[0]
    if len(line) > MAX_REQUEST_BYTES:
        return refusal(f"the request is larger than {MAX_REQUEST_BYTES // 1024} KiB")
    return line


def decode_request(line: bytes) -> dict[str, Any] | ControlReply:
    """The request object, or a refusal that says what is wrong with it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return refusal("the request is not UTF-8 text")
    shape = _shape_refusal(text)
    if shape is not None:
        return shape
    try:
        request = json.loads(text)  # the C scanner: linear, and deep nesting is an error
    except RecursionError:
        return _too_deep()
    except ValueError:
        return refusal("the request is not JSON")
    if not isinstance(request, dict):
        return refusal("the request is not a JSON object")
    if nesting_depth(request) > MAX_JSON_DEPTH:
        return _too_deep()
    if _has_lone_surrogate(request):
        return refusal("the request contains a lone surrogate (such as \\ud800), not text")
    return request


def _shape_refusal(text: str) -> ControlReply | None:
    """A refusal if ``text`` has more than ``MAX_STRINGS`` strings or more than
    ``MAX_STRUCTURE_BYTES`` outside them (checked before anything is parsed), else None."""
    outside = _outside_strings(text)
    if outside is None:
        return refusal("the request is not JSON")
    if len(outside) <= MAX_STRUCTURE_BYTES and outside.count('"') <= 2 * MAX_STRINGS:
        return None
    if _bracket_depth(outside[:MAX_STRUCTURE_BYTES]) > MAX_JSON_DEPTH:
        return _too_deep()
    return refusal(
        f"the request holds too many values (at most {MAX_STRINGS} strings and "
        f"{MAX_STRUCTURE_BYTES} bytes besides)"
    )


def _outside_strings(text: str) -> str | None:
    """``text`` with each string's content taken out (``""`` left in its place), cut
    short once past the limits; None if a string is not valid JSON. Each step is one
    C-speed search or string scan, and there are at most ``MAX_STRINGS + 1`` of them."""
    parts: list[str] = []
    size = pos = 0
    for _ in range(MAX_STRINGS + 1):
        quote = text.find('"', pos)
        end = len(text) if quote < 0 else quote
        parts.append(text[pos : min(end, pos + MAX_STRUCTURE_BYTES + 1 - size)])
        size += end - pos
        if quote < 0 or size > MAX_STRUCTURE_BYTES:
            return "".join(parts)
        try:
            _, pos = _STRING_SCANNER.raw_decode(text, quote)  # this one string
        except ValueError:
            return None
        parts.append('""')
    return "".join(parts)


def _bracket_depth(text: str) -> int:
    """How deep brackets nest in ``text`` (short: a refusal's wording only)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _too_deep() -> ControlReply:
    return refusal(f"the request is nested more than {MAX_JSON_DEPTH} levels deep")


def nesting_depth(value: Any) -> int:
    """How deep lists and objects nest in a decoded JSON value (no recursion)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        else:
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def answer_deadline(
    request: dict[str, Any], received_s: float, default_s: float
) -> float | ControlReply:
    """Until when (on the server's clock) the client still waits for this answer.

    ``deadline_s`` is the client's own deadline on the host's monotonic clock (the
    socket is local: client and server read the same clock); ``timeout_s`` is a
    relative one, counted from ``received_s``. The earlier one wins, less
    ``REPLY_MARGIN_S``; neither means ``default_s``; never more than ``MAX_ANSWER_S``.
    """
    deadline = received_s + MAX_ANSWER_S
    named = False
    for key, base in (("deadline_s", 0.0), ("timeout_s", received_s)):
        if key not in request:
            continue
        value = request[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return refusal(f"{key} must be a number of seconds")
        try:
            seconds = float(value)  # an integer too large for a float raises OverflowError
        except OverflowError:
            seconds = math.inf
        if not math.isfinite(seconds):
            return refusal(f"{key} must be a finite number of seconds")
        deadline = min(deadline, base + seconds - REPLY_MARGIN_S)
        named = True
    return deadline if named else min(deadline, received_s + default_s)
