"""The HIL suite's target selection: the simulator by default, a real board on request.

Owns: the ``--board-url URL`` option (like labgrid's ``--lg-env``, pyserial's port
argument), the two extra markers of this suite and the skips they imply, the board lock
of a real-board run, and the fixtures every scenario uses (``target``, ``rig``,
``wall``-less state directories). One suite, two targets:

* without ``--board-url``: every test runs; the board is the simulator (in-process on a
  virtual clock, or ``python -m hil.sim`` on a pty for the scenarios about timing);
* with ``--board-url``: tests marked ``sim_only`` (they need the simulator's fault
  injection or its physical truth) are skipped, and tests marked ``emits`` (they turn
  light on) are skipped unless ``NIRPAD_ALLOW_EMISSION=1`` is also set. Each skip says
  why. The run holds an exclusive lock on the board (``hil.rigs.locking``) from start to end.

Does not own the leak check (the root ``conftest.py`` fails any test that leaves
threads or child processes behind) nor the rigs themselves (``hil.rigs.harness``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from hil.rigs.harness import InProcessRig, assert_dark_after_close
from hil.rigs.locking import BoardLock, BoardLockedError
from hil.rigs.targets import (
    ALLOW_EMISSION_ENV,
    EMITS,
    SIM_ONLY,
    board_url_problem,
    emission_allowed,
    skip_reason,
)

_HIL_DIR: Final = Path(__file__).resolve().parent
_lock: BoardLock | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("nirpad-hil", "nirpad hardware-in-the-loop")
    group.addoption(
        "--board-url",
        metavar="URL",
        default=None,
        help=(
            "run the HIL suite against this real driver board (a serial port or pyserial "
            "URL) instead of the simulator. Tests that emit light also need "
            f"{ALLOW_EMISSION_ENV}=1; tests that need fault injection are skipped."
        ),
    )
    group.addoption(
        "--hil-trace-dir",
        metavar="DIR",
        default=None,
        help="write a CSV trace (hil.tools.trace format) of every in-process scenario into DIR",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{EMITS}: the test turns light on; on a real board it needs {ALLOW_EMISSION_ENV}=1",
    )
    config.addinivalue_line(
        "markers", f"{SIM_ONLY}: needs the simulator (fault injection, physical truth)"
    )
    trace_dir = config.getoption("--hil-trace-dir", default=None)
    if trace_dir:  # found now, not as the same error in every scenario
        try:
            Path(trace_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(
                f"--hil-trace-dir {trace_dir}: not a folder that can be written ({exc})"
            ) from None
    global _lock
    url = config.getoption("--board-url", default=None)
    if url:
        problem = board_url_problem(str(url))
        if problem is not None:  # one line, not the same traceback in every test
            raise pytest.UsageError(f"--board-url {problem}")
        _lock = BoardLock(str(url))
        try:
            _lock.acquire()
        except BoardLockedError as exc:
            _lock = None
            raise pytest.UsageError(str(exc)) from None


def pytest_unconfigure(config: pytest.Config) -> None:
    global _lock
    if _lock is not None:
        _lock.release()
        _lock = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    url = config.getoption("--board-url", default=None)
    allow = emission_allowed()
    for item in items:
        if _HIL_DIR not in Path(str(item.path)).resolve().parents:
            continue
        reason = skip_reason(url, {m.name for m in item.iter_markers()}, allow)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass(frozen=True)
class Target:
    """What the suite runs against: ``board_url`` None means the simulator."""

    board_url: str | None
    allow_emission: bool

    @property
    def is_simulator(self) -> bool:
        return self.board_url is None


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    url = pytestconfig.getoption("--board-url", default=None)
    return Target(None if not url else str(url), emission_allowed())


@pytest.fixture
def rig(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[InProcessRig]:
    """The in-process stack (rls-810-standard installed, time scale 60), booted to ready.

    After the test it is closed, and the board must have seen outputs-off last. With
    ``--hil-trace-dir DIR`` the run is traced to ``DIR/<test id>.csv``."""
    built = InProcessRig.build(tmp_path / "state", time_scale=60.0)
    try:
        trace_dir = request.config.getoption("--hil-trace-dir", default=None)
        if trace_dir:
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
            Path(trace_dir).mkdir(parents=True, exist_ok=True)
            built.trace_to(Path(trace_dir) / f"{name}.csv")
        built.boot()
        yield built
    finally:
        built.close()
    assert_dark_after_close(built)
