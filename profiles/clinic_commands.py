"""The ``nirpad profile`` commands that need nothing but this package: schema, keygen.

Owns: their handlers, ``(args) -> exit code``, and what they print (CLI output, so
``print`` is right here; an error is one line starting ``nirpad: ``, as the
rest of the CLI says it). They are registered by ``firmware_host.profile_commands``,
which also owns the commands that need the safety layer (check, install, show) and
``sign``, whose output file is written by ``firmware_host.output_files``.
Exit codes: 0 ok, 1 error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Final

from profiles.errors import ProfileError
from profiles.keyfiles import write_keypair_report
from profiles.schema import json_schema

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1


def _err(message: str) -> None:
    print(f"nirpad: {message}", file=sys.stderr)


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def cmd_keygen(args: argparse.Namespace, say_done: Callable[[str], None] = print) -> int:
    """Write the key pair; ``say_done`` prints what was written (the command line's
    ``done``, so a failed output still names the files and the trust line)."""
    try:
        lines = write_keypair_report(Path(args.out))
    except ProfileError as exc:
        _err(f"cannot make the key pair: {exc}")
        return EXIT_ERROR
    say_done("\n".join(lines))
    return EXIT_OK
