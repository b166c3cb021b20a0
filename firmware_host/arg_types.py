"""The argparse types the command modules share: a sub-command table, a handler, and a
whole number as a patient types it (``whole_number``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

from profiles.locator import printable

__all__ = ["Handler", "Subcommands", "whole_number"]

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
