"""The argparse types the command modules share: a sub-command table and a handler."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeAlias

__all__ = ["Handler", "Subcommands"]

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers`` returns (argparse names no public type for it)."""
Handler = Callable[[argparse.Namespace], int]
"""A sub-command's function: the parsed arguments in, the exit code out."""
