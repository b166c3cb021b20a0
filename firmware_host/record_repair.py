"""``nirpad clock confirm`` and ``nirpad ledger reset``: a caregiver repairs the record.

Owns: carrying either request to the running controller over the control socket (its
safety core does the work, so the loop's trusted clock is re-anchored too), or, when no
controller runs, doing it here while holding the state directory's lock. Neither ever
shortens an interval: the next session waits one full interval from now.

Does not own what a confirmation or a reset writes (``safety.ledger``,
``safety.ledger_guard``) nor the refusals they cause (``safety.core_checks``).
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

__all__ = ["confirm_clock_here", "main", "reset_ledger_here"]

_WHO = "a caregiver (command line)"
_DONE = "; the next session waits one full interval from now"


def main(args: argparse.Namespace, command: str) -> int:
    """``command`` is ``clock_confirm`` or ``ledger_reset``; returns the exit code."""
    state_dir = resolve_state_dir(args.state_dir)
    try:
        reply = send(state_dir, {"cmd": command}, timeout_s=6.0)
    except ControlClientError as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if reply is None:
        return _here(state_dir, command)
    print(reply.get("message", ""), file=sys.stdout if reply.get("ok") else sys.stderr)
    return EXIT_OK if reply.get("ok") else EXIT_REFUSED


def _here(state_dir: Path, command: str) -> int:
    try:
        lock = StateLock.acquire(state_dir, command.replace("_", " "))
    except StateDirError as exc:
        print(f"nirpad: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        act = confirm_clock_here if command == "clock_confirm" else reset_ledger_here
        problem = act(state_dir)
    finally:
        lock.release()
    if problem is not None:
        print(f"nirpad: {problem}", file=sys.stderr)
        return EXIT_REFUSED
    done = "clock confirmed" if command == "clock_confirm" else "treatment record reset"
    print(done + _DONE)
    return EXIT_OK


def _now() -> datetime:
    return datetime.now(UTC)


def confirm_clock_here(state_dir: Path) -> str | None:
    """Record the confirmation in the ledger (no controller runs); None, or why not."""
    from safety.errors import LedgerError
    from safety.ledger import Ledger

    try:
        with Ledger.open(state_dir, _now) as ledger:
            stamp = _now().isoformat(timespec="seconds")
            ledger.confirm_clock(f"{_WHO} confirmed the clock reads {stamp}")
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
