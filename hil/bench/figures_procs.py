"""Real processes for the real-time figures: ``python -m hil.sim`` and ``nirpad run``.

Owns: starting, talking to and ending the two processes the way a user would run them
(the simulator on its pseudo-terminal with a rail file; the controller with
``--port``, ``--rail-file`` and ``--state-dir``, READY over a ``NOTIFY_SOCKET``, commands
over its control socket), reading the simulator's JSON-line events with their own
``"t"`` time stamps, and mapping this process's monotonic clock onto the simulator's.
Does not own what is measured (``figures_pty``). Every process started here is ended
and reaped on exit (the suite's leak fixture checks it).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from firmware_host.control_client import ControlClientError, send
from firmware_host.json_child import Event, EventTimeout
from hil.bench.figures_stack import BenchSetupError
from hil.rigs.clinic import reissued_today
from hil.rigs.controller_child import ControllerChild, ControllerNotReadyError, sim_board_args
from hil.rigs.sim_child import SimChild as HarnessSimChild

EXIT_TIMEOUT_S: Final = 5.0


class SimChild(HarnessSimChild):
    """``python -m hil.sim`` with a reading cursor: ``next_event`` consumes up to its match."""

    def __init__(self, rail_file: Path, baud: int) -> None:
        try:
            super().__init__("--rail-file", str(rail_file), "--baud", str(baud))
        except EventTimeout as exc:
            raise BenchSetupError(f"the simulator did not start: {exc}") from None
        self._cursor = self.mark()

    def next_event(self, match: Callable[[Event], bool], timeout_s: float) -> Event:
        """The first matching event after the cursor, which moves past it."""
        try:
            index, event = self.wait_for_index(match, timeout_s, after=self._cursor)
        except EventTimeout:
            raise BenchSetupError(f"the simulator sent no such event in {timeout_s:g} s") from None
        self._cursor = index + 1
        return event

    def drain(self) -> None:
        """Skip every event received so far."""
        self._cursor = self.mark()

    def clock_offset_s(self, tries: int = 7) -> tuple[float, float]:
        """(sim "t" − our monotonic, ± uncertainty): the best of ``tries`` state round trips."""
        best: tuple[float, float] | None = None
        for _ in range(tries):
            self.drain()
            t0 = time.monotonic()
            self.send({"cmd": "state"})
            reply = self.next_event(lambda e: e.get("event") == "state", 5.0)
            t1 = time.monotonic()
            estimate = (float(reply["t"]) - (t0 + t1) / 2, (t1 - t0) / 2)
            if best is None or estimate[1] < best[1]:
                best = estimate
        assert best is not None
        return best


def install_prescription(state_dir: Path) -> None:
    """The built-in 810 nm profile, installed as a caregiver would (no controller running),
    dated from today: the host process runs on the real wall clock."""
    from firmware_host.profile_commands import validate_and_install

    state_dir.mkdir(parents=True, exist_ok=True)
    data = reissued_today()
    outcome = validate_and_install(
        state_dir, data, "rls-810-standard.toml", None, session_state=lambda: "idle"
    )
    if not outcome.ok:
        raise BenchSetupError(f"install refused: {outcome.message}")


class HostProcess(ControllerChild):
    """``nirpad run --port PTY`` on its own state directory; ``boot_s`` is start→READY."""

    def __init__(self, port: str, rail_file: Path, state_dir: Path, log_path: Path) -> None:
        self.state_dir = state_dir
        args = sim_board_args(port, rail_file=rail_file, state_dir=state_dir)
        super().__init__(args, log_path=log_path, notify_path=state_dir / "notify", wait=False)
        try:
            self.boot_s = self.wait_ready()
        except ControllerNotReadyError as exc:
            self.close()
            raise BenchSetupError(f"nirpad run did not become ready: {exc}") from None
        except BaseException:  # Ctrl-C while waiting: never leave the controller running
            self.close()
            raise

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = send(self.state_dir, request, timeout_s=5.0)
        except ControlClientError as exc:
            raise BenchSetupError(f"control socket: {exc}") from exc
        if reply is None:
            raise BenchSetupError("the controller is not running")
        return reply

    def state(self) -> str:
        return str(self.request({"cmd": "status"})["data"]["state"])

    def command(self, name: str) -> dict[str, Any]:
        return self.request({"cmd": name})

    def wait_state(self, wanted: str, timeout_s: float = 10.0) -> None:
        deadline_s = time.monotonic() + timeout_s
        while (state := self.state()) != wanted:
            if time.monotonic() > deadline_s:
                raise BenchSetupError(f"controller in {state}, not {wanted}, after {timeout_s} s")
            time.sleep(0.01)

    def close(self) -> None:
        self.stop(EXIT_TIMEOUT_S)  # SIGTERM: the controller turns the outputs off and exits


RAM_DIR: Final = Path("/dev/shm")


@contextlib.contextmanager
def rail_file() -> Iterator[Path]:
    """Where the host's rail lines are mirrored for the simulator: a file in memory
    (``/dev/shm``) where there is one, like the GPIO lines it stands for. On a disk,
    every heartbeat's atomic replace costs the controller a journal flush, 50 times a
    second (docs/performance.md), which no real rail costs."""
    where = RAM_DIR if RAM_DIR.is_dir() and os.access(RAM_DIR, os.W_OK) else None
    with tempfile.TemporaryDirectory(prefix="nirpad-bench-rail-", dir=where) as tmp:
        yield Path(tmp) / "rail"


@contextlib.contextmanager
def pty_pair(workdir: Path, baud: int) -> Iterator[tuple[SimChild, Callable[[str], HostProcess]]]:
    """A simulator, and a factory of controllers on it (one state directory each)."""
    with rail_file() as rail:
        yield from _pty_pair(workdir, rail, baud)


def _pty_pair(
    workdir: Path, rail: Path, baud: int
) -> Iterator[tuple[SimChild, Callable[[str], HostProcess]]]:
    sim = SimChild(rail, baud)
    hosts: list[HostProcess] = []

    def host(name: str) -> HostProcess:
        state_dir = workdir / name
        install_prescription(state_dir)
        started = HostProcess(sim.port, rail, state_dir, workdir / f"{name}.log")
        hosts.append(started)
        return started

    try:
        yield sim, host
    finally:
        for started in hosts:
            started.close()
        sim.close()
