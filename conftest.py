"""Suite-wide fixtures: every test must leave no stray threads and no child processes.

Owns: leak detection only (as python-can and pymodbus do). A test that leaks fails with
the names of what it left behind; the leaked processes are killed so the suite goes on.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_GRACE_S = 2.0


def _child_pids() -> set[int]:
    """Live (non-zombie) child processes of this process, read from /proc."""
    me = os.getpid()
    children: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == me and fields[0] != "Z":
            children.add(int(entry.name))
    return children


def _wait_until_clean(threads_before: set[threading.Thread]) -> tuple[list[str], set[int]]:
    deadline = time.monotonic() + _GRACE_S
    while True:
        stray = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        pids = _child_pids()
        if (not stray and not pids) or time.monotonic() > deadline:
            return [t.name for t in stray], pids
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    threads_before = set(threading.enumerate())
    pids_before = _child_pids()
    yield
    stray_threads, pids = _wait_until_clean(threads_before)
    pids -= pids_before
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    problems = []
    if stray_threads:
        problems.append(f"threads left running: {stray_threads}")
    if pids:
        problems.append(f"child processes left running (killed): {sorted(pids)}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
