"""``nirpad clock confirm`` and ``nirpad ledger reset``: a caregiver repairs the record.

Owns: carrying either request to the running controller over the control socket (its
safety core does the work, so the loop's trusted clock is re-anchored too), or, when no
controller runs, doing it here while holding the state directory's lock. Neither ever
shortens an interval: the next session waits one full interval from now. Before asking
anyone it refuses, exit 2, a date and time it cannot read (``arg_types.stated_time``)
and a state directory that does not exist (no record is kept there: a mistyped path);
every refusal is one ``nirpad: `` line.

Does not own what a confirmation or a reset writes (``safety.ledger``,
``safety.ledger_guard``) nor the refusals they cause (``safety.start_guards``).
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from firmware_host.arg_types import STATED_TIME_HELP, stated_time
from firmware_host.control_client import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    ControlClientError,
    send,
)
from firmware_host.paths import StateDirError, resolve_state_dir
from firmware_host.state_lock import StateLock
from firmware_host.stdout_guard import done

__all__ = ["confirm_clock_here", "main", "reset_ledger_here"]

_WHO = "a caregiver (command line)"
_DONE = "; the next session waits one full interval from now"
_NOTHING = {"clock_confirm": "nothing was confirmed", "ledger_reset": "there is nothing to reset"}


def main(args: argparse.Namespace, command: str) -> int:
    """``command`` is ``clock_confirm`` or ``ledger_reset``; returns the exit code."""
    state_dir = resolve_state_dir(args.state_dir)
    request = {"cmd": command}
    stated: datetime | None = None
    if command == "clock_confirm":
        stated = stated_time(args.when)
        if stated is None:
            return _say(STATED_TIME_HELP, EXIT_USAGE)
        request["now"] = args.when
    if not _exists(state_dir):
        return _say(
            f"there is no state directory {state_dir}: no treatment record is kept there, "
            f"so {_NOTHING[command]}; check --state-dir (or $NIRPAD_STATE_DIR)",
            EXIT_USAGE,
        )
    try:
        reply = send(state_dir, request, timeout_s=6.0)
    except ControlClientError as exc:
        return _say(str(exc), EXIT_ERROR)
    if reply is None:
        return _here(state_dir, command, stated)
    if not reply.get("ok"):
        return _say(str(reply.get("message") or "refused"), _refused_code(reply))
    done(str(reply.get("message", "")))
    return EXIT_OK


def _say(message: str, exit_code: int) -> int:
    print(f"nirpad: {message}", file=sys.stderr)
    return exit_code


def _exists(state_dir: Path) -> bool:
    """Whether something has the state directory's name (``resolve_state_dir`` refused
    what is not a folder); one this user may not look into is there: its readers say so."""
    try:
        os.stat(state_dir)
    except FileNotFoundError:
        return False
    except OSError:
        pass  # no permission to look: it is there
    return True


def _refused_code(reply: dict[str, Any]) -> int:
    """The controller's exit code for a refusal: 1, 2 or 3 (anything else: 3)."""
    code = reply.get("exit_code")
    return code if code in (EXIT_ERROR, EXIT_USAGE, EXIT_REFUSED) else EXIT_REFUSED


def _here(state_dir: Path, command: str, stated: datetime | None) -> int:
    try:
        lock = StateLock.acquire(state_dir, command.replace("_", " "))
    except StateDirError as exc:
        return _say(str(exc), EXIT_REFUSED)
    try:
        if stated is not None:
            problem = confirm_clock_here(state_dir, stated)
        else:
            problem = reset_ledger_here(state_dir)
    finally:
        lock.release()
    if problem is not None:
        return _say(problem, EXIT_REFUSED)
    what = "clock confirmed" if command == "clock_confirm" else "treatment record reset"
    done(what + _DONE)
    return EXIT_OK


def _now() -> datetime:
    return datetime.now(UTC)


def confirm_clock_here(state_dir: Path, stated: datetime) -> str | None:
    """Record the confirmation in the ledger (no controller runs) of the time a caregiver
    ``stated`` (``arg_types.stated_time``); None, or why not."""
    from safety.core import CONFIRM_TOLERANCE_S
    from safety.errors import LedgerError
    from safety.ledger_guard import open_guarded

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
