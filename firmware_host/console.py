"""The ``nirpad`` console script's entry: the command line imported under a Ctrl-C guard.

Owns: ``run`` and ``EXIT_INTERRUPTED``. Importing the command line takes a moment (a
few tenths of a second on a Pi); a Ctrl-C then ends with ``nirpad: interrupted`` and
exit 130, as one during a command does, never a traceback. Imports nothing of nirpad
at module level, so there is nothing before the guard to interrupt.
"""

from __future__ import annotations

import sys
from typing import Final

EXIT_INTERRUPTED: Final = 130


def run() -> int:
    """Import the command line and run it on ``sys.argv``; its exit code."""
    try:
        from firmware_host.cli import main
    except KeyboardInterrupt:
        print("nirpad: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return main()
