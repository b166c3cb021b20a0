"""Why a file could not be written, in the words a person reads.

Owns: ``os_error_text``, the one wording of an ``OSError`` for the messages of the
commands that write files (the key pair, the rail file, the password file, the report
and calendar) or cannot write their standard output (``firmware_host.stdout_guard``):
a full disk or quota says so, anything else gives the system's own sentence. Does not
own the messages around it.
"""

from __future__ import annotations

import errno

__all__ = ["os_error_text"]


def os_error_text(exc: OSError) -> str:
    """``the disk is full`` for ENOSPC and EDQUOT, else the error's own text."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    return exc.strerror or str(exc)
