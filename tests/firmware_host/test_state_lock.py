"""One writer per state directory: the lock file, a refused second controller or install
(which changes nothing), and a SIGKILLed holder that never blocks the next one."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.profile_commands import validate_and_install
from firmware_host.runner import App, build_app, utc_now
from firmware_host.state_lock import StateDirBusy, StateLock, lock_path
from hil.sim.inprocess import make_sim
from safety.board_kind import BoardKind
from safety.ledger import LEDGER_FILENAME, Ledger
from safety.rail import make_rail

RX = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml")


def _files(state_dir: Path) -> dict[str, bytes]:
    """Every regular file of the state directory but the lock file, with its bytes."""
    return {
        p.name: p.read_bytes()
        for p in sorted(state_dir.iterdir())
        if p.is_file() and p.name != lock_path(state_dir).name
    }


def _app(stack: contextlib.ExitStack, state_dir: Path, seed: int = 3) -> App:
    clock, board, port = make_sim(seed=seed)
    rail = make_rail(None, None)
    stack.callback(rail.close)
    rail.add_listener(board.set_rail)
    return build_app(
        stack, state_dir=state_dir, port_url=None, rail_pin=None, rail_file=None,
        site_config=None, clock=clock, transport=port, rail=rail,
        board=BoardKind.simulated(board.time_scale),
    )  # fmt: skip


@pytest.fixture
def treating(tmp_path: Path, builtin_wall_clock: None) -> Iterator[tuple[App, Path]]:
    """A controller on ``tmp_path/state`` with a session treating for 60 s (virtual)."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    outcome = validate_and_install(
        state_dir, RX.read_bytes(), "rx.toml", None, session_state=lambda: None
    )
    assert outcome.ok, outcome.message
    with contextlib.ExitStack() as stack:
        app = _app(stack, state_dir)
        app.controller.boot()
        assert app.controller.command("start").ok
        app.loop.run_for(60.0)
        assert str(app.controller.state) == "treating"
        yield app, state_dir
        app.loop.close()


def test_the_lock_names_its_holder_and_is_released(tmp_path: Path) -> None:
    with StateLock.acquire(tmp_path) as lock:
        assert lock.held
        assert lock_path(tmp_path).read_text() == f"{os.getpid()}\n"
        with pytest.raises(StateDirBusy, match=f"pid {os.getpid()}") as busy:
            StateLock.acquire(tmp_path, "install")
        assert busy.value.holder_pid == os.getpid()
        assert "this install stopped before changing anything" in str(busy.value)
        assert lock_path(tmp_path).read_text() == f"{os.getpid()}\n"  # the refusal wrote nothing
    assert not lock.held
    StateLock.acquire(tmp_path).release()  # free again


def test_a_holder_without_a_pid_is_still_refused(tmp_path: Path) -> None:
    with StateLock.acquire(tmp_path):
        lock_path(tmp_path).write_text("")
        with pytest.raises(StateDirBusy, match="another nirpad process is using") as busy:
            StateLock.acquire(tmp_path)
    assert busy.value.holder_pid is None


def test_a_missing_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="cannot open the lock file"):
        StateLock.acquire(tmp_path / "nowhere")


def test_a_sigkilled_holder_never_blocks_the_next_one(tmp_path: Path) -> None:
    code = (
        "import sys, pathlib\n"
        "from firmware_host.state_lock import StateLock\n"
        "lock = StateLock.acquire(pathlib.Path(sys.argv[1]))\n"
        "print('held', flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    ) as holder:  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            with pytest.raises(StateDirBusy, match=f"pid {holder.pid}"):
                StateLock.acquire(tmp_path)
            holder.send_signal(signal.SIGKILL)
            assert holder.wait(10) == -signal.SIGKILL
        finally:
            holder.kill()
    StateLock.acquire(tmp_path).release()  # the kernel dropped the dead holder's lock


@pytest.mark.slow
def test_a_second_assembly_on_a_live_state_dir_changes_nothing(
    treating: tuple[App, Path], tmp_path: Path
) -> None:
    app, state_dir = treating
    before = _files(state_dir)
    assert LEDGER_FILENAME in before
    with contextlib.ExitStack() as stack, pytest.raises(StateDirBusy, match=f"pid {os.getpid()}"):
        _app(stack, state_dir, seed=4)
    assert _files(state_dir) == before  # no crash reconciliation, nothing written
    app.loop.run_for(30.0)  # the first controller goes on treating
    assert str(app.controller.state) == "treating"
    with Ledger.open(state_dir, utc_now) as ledger:
        (session,) = ledger.sessions()
    assert session.outcome is None  # the live session's row is still open


@pytest.mark.slow
def test_a_mistyped_second_run_exits_with_the_holder_and_touches_nothing(
    treating: tuple[App, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, state_dir = treating
    other_rail = tmp_path / "other-rail"
    before = _files(state_dir)
    argv = ["run", "--port", "NO_SUCH_PORT", "--rail-file", str(other_rail)]
    assert main([*argv, "--state-dir", str(state_dir)]) == 1
    err = capsys.readouterr().err
    assert f"(pid {os.getpid()}) is using the state directory {state_dir}" in err
    assert "Traceback" not in err
    assert not other_rail.exists()  # the rail was never opened
    assert _files(state_dir) == before
    app.loop.run_for(30.0)
    assert str(app.controller.state) == "treating"


@pytest.mark.usefixtures("builtin_wall_clock")  # the built-in as shipped
def test_profile_install_while_the_state_dir_is_held_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    with StateLock.acquire(state_dir):  # a controller starting up: no socket yet
        assert main(["profile", "install", str(RX), "--state-dir", str(state_dir)]) == 3
    assert "is using the state directory" in capsys.readouterr().err
    assert _files(state_dir) == {}  # no ledger, no installed prescription
    assert main(["profile", "install", str(RX), "--state-dir", str(state_dir)]) == 0
    assert lock_path(state_dir).read_text() == ""  # released, no stale pid
