"""Suite-wide fixtures: every test must leave no stray threads and no child processes.

Owns: leak detection (as python-can and pymodbus do). A test that leaks fails with the
names of what it left behind; the leaked processes are killed so the suite goes on.
``builtin_wall_clock`` puts this process's wall clock on a day the shipped built-in
prescriptions are valid.
And, for the fast lane (``-m "not slow"``), not importing the test modules whose own
``pytestmark`` marks every test in them slow: none of their tests would run, and
importing them (assertion rewriting, their imports) is most of what collecting costs.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine

from hil.rigs.clock import WALL_START

_GRACE_S = 2.0
_NOT_SLOW = re.compile(r"\s*not\s+slow\s*")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if (
        collection_path.name.startswith("test_")
        and collection_path.suffix == ".py"
        and _deselects_every_slow_test(str(config.getoption("markexpr") or ""))
        and _marked_slow_throughout(collection_path)
    ):
        return True
    return None  # the other hooks and pytest's own rules decide


def _deselects_every_slow_test(markexpr: str) -> bool:
    """``not slow``, alone or and-ed with other terms. With an ``or`` or parentheses the
    expression is not read: such a run collects everything, as pytest does."""
    if "(" in markexpr or re.search(r"\bor\b", markexpr):
        return False
    return any(_NOT_SLOW.fullmatch(term) for term in re.split(r"\band\b", markexpr))


def _marked_slow_throughout(module: Path) -> bool:
    """True when the module's top-level ``pytestmark`` has ``pytest.mark.slow`` in it."""
    source = module.read_text(encoding="utf-8")
    if "pytestmark" not in source:
        return False
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "pytestmark" for target in node.targets
        ):
            return any(ast.unparse(part) == "pytest.mark.slow" for part in ast.walk(node.value))
    return False


def _child_pids() -> set[int]:
    """Live (non-zombie) child processes of this process.

    Each thread's ``/proc/self/task/<tid>/children`` names its children: a few small reads,
    where scanning every process in /proc costs milliseconds, twice per test. A kernel
    without those files gets the scan."""
    try:
        listed = {
            int(pid)
            for task in Path("/proc/self/task").iterdir()
            for pid in (task / "children").read_text().split()
        }
    except OSError:  # no such files here, or a thread ended while being read
        return _child_pids_by_scan()
    return {pid for pid in listed if _state_and_parent(Path(f"/proc/{pid}")) not in (None, "Z")}


def _child_pids_by_scan() -> set[int]:
    me = os.getpid()
    return {
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _state_and_parent(entry, me) not in (None, "Z")
    }


def _state_and_parent(entry: Path, parent: int | None = None) -> str | None:
    """The process's state letter (``Z``: a zombie); None if it is gone, or if ``parent``
    is given and is not its parent."""
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 2 or (parent is not None and int(fields[1]) != parent):
        return None
    return fields[0]


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


@pytest.fixture
def builtin_wall_clock() -> Iterator[None]:
    """This process's wall clock at the rigs' ``WALL_START``, ticking on from there: for
    the in-process tests that install or check the built-ins as shipped, whose fixed
    dates expire (child processes get a copy dated from today: ``profiles.shipped``)."""
    with time_machine.travel(WALL_START, tick=True):
        yield


@pytest.fixture
def new_york() -> Iterator[None]:
    """This host's time zone is America/New_York (west of UTC: an evening session falls
    on the next UTC date); the zone before is restored after the test."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()
