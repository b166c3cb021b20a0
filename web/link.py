"""The page's only way to the controller: one control-socket request, as the CLI sends it.

Owns: sending a request with ``firmware_host.control_client.send`` off the event loop
(a worker thread: the socket call blocks) and turning each way it can end into a
``LinkAnswer`` a page can show in plain words: no controller running, the exchange
failed, refused (with the controller's own sentence), or done.
Does not own what a command means (the controller) nor any rule of its own: a refusal
is the controller's, word for word.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from starlette.concurrency import run_in_threadpool

from firmware_host.control_client import ControlClientError, send
from firmware_host.plain_text import plain

log = logging.getLogger(__name__)

NOT_RUNNING: Final = (
    "The controller is not running, so the pad cannot be controlled from here. "
    "Start it (on the pad: the nirpad service; for a try-out: `nirpad run --sim`)."
)
BUTTONS: Final = ("start", "pause", "resume", "stop", "ack")


@dataclass(frozen=True)
class LinkAnswer:
    """``running`` False: nobody listens; ``ok`` False with ``running``: failed or refused."""

    running: bool
    ok: bool
    message: str
    data: Any = None


def ask_now(state_dir: Path, request: dict[str, Any], timeout_s: float) -> LinkAnswer:
    """One request, blocking; never raises for a controller that is gone or slow."""
    try:
        reply = send(state_dir, request, timeout_s=timeout_s)
    except ControlClientError as exc:
        log.warning("control request %s failed: %s", request.get("cmd"), exc)
        return LinkAnswer(True, False, f"The page could not talk to the controller: {exc}")
    if reply is None:
        return LinkAnswer(False, False, NOT_RUNNING)
    message = plain(str(reply.get("message") or "")) or ""
    return LinkAnswer(True, bool(reply.get("ok")), message, reply.get("data"))


async def ask(state_dir: Path, request: dict[str, Any], timeout_s: float) -> LinkAnswer:
    return await run_in_threadpool(ask_now, state_dir, request, timeout_s)


async def status(state_dir: Path, timeout_s: float) -> LinkAnswer:
    """The controller's status document (``data``), as ``nirpad status --json`` shows it."""
    answer = await ask(state_dir, {"cmd": "status"}, timeout_s)
    if answer.ok and not isinstance(answer.data, dict):
        return LinkAnswer(True, False, "The controller sent a status the page cannot read.")
    return answer
