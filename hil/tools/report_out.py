"""A long run's report on stdout, when stdout can fail (a full disk, a closed pipe).

Owns: printing the report and, if that fails, one line on stderr instead of a
traceback (and nothing more from Python's own flush at exit). Does not own the report.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

__all__ = ["print_report"]


def print_report(text: str, prog: str) -> bool:
    """Print ``text`` to stdout; False (after saying why, on stderr) if it could not be."""
    try:
        print(text, flush=True)
    except OSError as exc:
        with contextlib.suppress(io.UnsupportedOperation, ValueError, OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # the flush at exit writes nowhere
            os.close(devnull)
        print(f"{prog}: the report could not be written ({exc.strerror or exc})", file=sys.stderr)
        return False
    return True
