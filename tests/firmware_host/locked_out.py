"""Run a command as a user locked out of a folder (mode 000), also when the tests run as
root: root reads any folder, so it runs without the capabilities that let it
(``setpriv``, the folder given to nobody). Skips, saying why, where that cannot be done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_locked_out(locked: Path, args: Sequence[str | Path]) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in this checkout while ``locked`` is mode 000 (restored after)."""
    drop: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv to run without root's override of file modes")
        os.chown(locked, 65534, 65534)
        drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    mode = locked.stat().st_mode & 0o7777
    locked.chmod(0o000)
    try:
        done = subprocess.run(
            [*drop, sys.executable, *map(str, args)],
            capture_output=True, text=True, timeout=30, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    finally:
        locked.chmod(mode)
    if drop and done.returncode != 0 and done.stderr.startswith("setpriv:"):
        pytest.skip(f"setpriv could not drop the capabilities: {done.stderr.strip()}")
    return done
