"""The argparse types the command modules share: a sub-command table, a handler, a
whole number as a patient types it (``whole_number``), and a date and time as a
caregiver reads it off a clock (``stated_time``, read alike by ``nirpad clock confirm``
before it asks anyone and by the controller that gets it over the control socket).
Standard library (and ``profiles.locator``, as light) only: the commands that use them
start fast."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, TypeAlias

from profiles.locator import printable

__all__ = ["STATED_TIME_HELP", "Handler", "Subcommands", "stated_time", "whole_number"]

STATED_TIME_HELP: Final = (
    "Say the date and time as you read them on a clock you trust, e.g. "
    "nirpad clock confirm '2026-12-03 21:15'."
)

_CALENDAR_DATE_FIRST: Final = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8})([ T]|$)")
"""A stated time starts with its day as a calendar date: ``datetime.fromisoformat``
would also read a week date (``2026-W49-1``) or a day of the year (``2026-340``),
which nobody reads off a clock."""

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns (argparse names no public type for it)."""
Handler = Callable[[argparse.Namespace], int]
"""A sub-command's function: the parsed arguments in, the exit code out."""


def whole_number(text: str) -> int:
    """An option's whole number, as ``int`` reads it but without the underscores Python
    allows between digits: ``1_0`` is refused, never read as 10 (the same rule as
    ``care.diary_entry.whole_number``, which this module may not import)."""
    if "_" in text:
        raise argparse.ArgumentTypeError(f"'{printable(text)}' is not a whole number")
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{printable(text)}' is not a whole number") from None


def stated_time(text: object) -> datetime | None:
    """A caregiver's ``YYYY-MM-DD HH:MM`` (local time unless it names a zone), or None
    for anything else (``2026-02-30 06:40`` and a week date too): say
    ``STATED_TIME_HELP`` then."""
    if not isinstance(text, str) or _CALENDAR_DATE_FIRST.match(text.strip()) is None:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
        when = when.astimezone() if when.tzinfo is None else when
        when.astimezone(UTC)  # year 1 or 9999 may have no UTC or local time: not a date
        when.astimezone()  # the refusal shows it in local time
    except (ValueError, OverflowError):
        return None
    return when
