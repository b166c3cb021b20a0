"""``nirpad clock confirm`` and ``nirpad ledger reset``: a caregiver repairs the record.

Owns: carrying either request to the running controller over the control socket (its
safety core does the work, so the loop's trusted clock is re-anchored too), or, when no
controller runs, doing it here while holding the state directory's lock. Neither ever
shortens an interval: the next session waits one full interval from now.

Does not own what a confirmation or a reset writes (``safety.ledger``,
``safety.ledger_guard``) nor the refusals they cause (``safety.start_guards``).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from firmware_host.control_client import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    ControlClientError,
    send,
)
from firmware_host.paths import StateDirError, resolve_state_dir
from firmware_host.state_lock import StateLock
from firmware_host.stdout_guard import done

__all__ = ["confirm_clock_here", "main", "reset_ledger_here"]

_WHO = "a caregiver (command line)"
_DONE = "; the next session waits one full interval from now"


def main(args: argparse.Namespace, command: str) -> int:
    """``command`` is ``clock_confirm`` or ``ledger_reset``; returns the exit code."""
    state_dir = resolve_state_dir(args.state_dir)
    request = {"cmd": command}
    if command == "clock_confirm":
        request["now"] = args.when
    try:
        reply = send(state_dir, request, timeout_s=6.0)
    except ControlClientError as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if reply is None:
        return _here(state_dir, command, request.get("now"))
    if not reply.get("ok"):
        print(reply.get("message", ""), file=sys.stderr)
        return EXIT_REFUSED
    done(str(reply.get("message", "")))
    return EXIT_OK


def _here(state_dir: Path, command: str, stated: str | None) -> int:
    try:
        lock = StateLock.acquire(state_dir, command.replace("_", " "))
    except StateDirError as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        if command == "clock_confirm":
            problem = confirm_clock_here(state_dir, stated)
        else:
            problem = reset_ledger_here(state_dir)
    finally:
        lock.release()
    if problem is not None:
        print(f"nirpad: {problem}", file=sys.stderr)
        return EXIT_REFUSED
    what = "clock confirmed" if command == "clock_confirm" else "treatment record reset"
    done(what + _DONE)
    return EXIT_OK


def _now() -> datetime:
    return datetime.now(UTC)


def confirm_clock_here(state_dir: Path, stated_text: str | None) -> str | None:
    """Record the confirmation in the ledger (no controller runs); None, or why not."""
    from firmware_host.controller import STATED_TIME_HELP, stated_time
    from safety.core import CONFIRM_TOLERANCE_S
    from safety.errors import LedgerError
    from safety.ledger_guard import open_guarded

    stated = stated_time(stated_text)
    if stated is None:
        return STATED_TIME_HELP
    now = _now()
    if abs((now - stated).total_seconds()) > CONFIRM_TOLERANCE_S:
        shown = now.astimezone().strftime("%Y-%m-%d %H:%M")
        return f"The clock reads {shown}. Set the clock to the right date and time first."
    try:
        with open_guarded(state_dir, _now) as ledger:
            problem = ledger.lost_refusal()
            if problem is not None:
                return problem
            ledger.confirm_clock(f"{_WHO} confirmed the clock reads {now.isoformat()}")
    except LedgerError as exc:
        return str(exc)
    return None


def reset_ledger_here(state_dir: Path) -> str | None:
    """Reset a record found lost or damaged (no controller runs); None, or why not."""
    from safety.errors import LedgerDamagedError, LedgerError
    from safety.ledger_guard import open_guarded, reset_ledger

    try:
        try:
            with open_guarded(state_dir, _now) as ledger:
                if ledger.lost_refusal() is None:
                    return "The treatment record is not lost; there is nothing to reset."
        except LedgerDamagedError:
            pass  # damaged with no usable backup: the reset moves it aside
        reset_ledger(state_dir, _now, _WHO).close()
    except (LedgerError, OSError) as exc:
        return f"The treatment record cannot be reset: {exc}"
    return None
