"""SIGTERM, SIGINT and SIGHUP over the whole life of ``nirpad run`` and ``nirpad demo``:
while starting, a signal unwinds what was built and leaves nothing behind; while
running, the first one stops the loop; during the shutdown, more are ignored, so the
session is still closed and the outputs still turned off."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from firmware_host.loop import EventLoop
from firmware_host.runner import serve
from firmware_host.service import Notifier
from firmware_host.stop_signals import StopSignals, stop_signals
from safety.faults import Outcome
from tests.firmware_host.sim_app import build_sim_app, install_builtin, only_session

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_while_starting_unwinds_and_the_handlers_are_put_back(signum: int) -> None:
    before = signal.getsignal(signum)
    closed: list[str] = []
    with pytest.raises(KeyboardInterrupt), stop_signals(), contextlib.ExitStack() as stack:
        stack.callback(closed.append, "built so far")
        os.kill(os.getpid(), signum)
    assert closed == ["built so far"]
    assert signal.getsignal(signum) is before


def test_once_running_the_first_signal_stops_the_loop_and_the_rest_are_ignored(
    mocker: MockerFixture, caplog: pytest.LogCaptureFixture
) -> None:
    loop = mocker.Mock(spec=EventLoop)
    caplog.set_level("INFO", logger="firmware_host.stop_signals")
    with stop_signals() as signals:
        signals.attach(loop)
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.stop.is_set()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while shutting down
        os.kill(os.getpid(), signal.SIGHUP)
    loop.request_stop.assert_called_once_with()
    assert [r.getMessage() for r in caplog.records] == [
        "SIGTERM: stopping",
        "SIGINT: already stopping; the outputs are off or about to be",
        "SIGHUP: already stopping; the outputs are off or about to be",
    ]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("builtin_wall_clock")
def test_signals_during_the_shutdown_do_not_cut_it_short(tmp_path: Path) -> None:
    """SIGTERM while treating; then Ctrl-C and SIGTERM again while the parts close: the
    session is still recorded as stopped and the board's outputs are off."""
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    install_builtin(state_dir)
    with stop_signals() as signals, contextlib.ExitStack() as stack:
        app, clock, board = build_sim_app(stack, state_dir, seed=5)
        # runs after the loop has stopped, before the stack's parts close
        stack.callback(os.kill, os.getpid(), signal.SIGTERM)
        stack.callback(os.kill, os.getpid(), signal.SIGINT)
        started: list[float] = []

        def start_then_sigterm() -> None:
            if str(app.controller.state) == "ready" and not started:
                assert app.controller.command("start").ok
                started.append(clock())
            elif started and clock() - started[0] >= 5.0 and not signals.stop.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

        app.loop.on_tick_hook = start_then_sigterm
        assert serve(app, stack, Notifier(), signals, clock=clock) == 0
    board.advance_to(clock() + 1.0)
    assert board.state()["outputs_on"] is False
    session = only_session(state_dir)
    assert session.outcome is Outcome.STOPPED


def _cli_with_signal_at(
    tmp_path: Path, patch_target: str, argv: list[str]
) -> subprocess.CompletedProcess[str]:
    """``nirpad ARGV`` in a child whose ``patch_target`` sends it SIGTERM: a signal while
    the command is still starting. Temporary folders go under ``tmp_path / "tmp"``."""
    (tmp_path / "tmp").mkdir()
    code = textwrap.dedent(
        f"""
        import os, signal, sys, tempfile
        from unittest import mock
        tempfile.tempdir = {str(tmp_path / "tmp")!r}
        from firmware_host.cli import main

        def sigterm(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)
            raise AssertionError("the signal was not handled")

        with mock.patch({patch_target!r}, sigterm):
            sys.exit(main({argv!r}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=False,
    )  # fmt: skip


def _ended(done: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    """The exit code and the last line on stderr; never a traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, (done.stderr.splitlines() or [""])[-1]


@pytest.mark.timeout(90)
def test_a_sigterm_while_the_demo_starts_leaves_no_temporary_folder(tmp_path: Path) -> None:
    done = _cli_with_signal_at(tmp_path, "firmware_host.demo.build_app", ["demo"])
    assert _ended(done) == (130, "nirpad: interrupted")
    assert list((tmp_path / "tmp").iterdir()) == []  # the demo's state folder is gone


@pytest.mark.timeout(90)
def test_a_sigterm_while_run_starts_is_an_orderly_exit(tmp_path: Path) -> None:
    argv = ["run", "--port", "loop://", "--rail-file", str(tmp_path / "rail"),
            "--state-dir", str(tmp_path / "state")]  # fmt: skip
    done = _cli_with_signal_at(tmp_path, "firmware_host.runner.build_app", argv)
    assert _ended(done) == (130, "nirpad: interrupted")


def test_stop_signals_hands_out_one_stop_request_per_process() -> None:
    with stop_signals() as signals:
        assert isinstance(signals, StopSignals)
        assert signal.getsignal(signal.SIGTERM) == signals.handle
        assert not signals.stop.is_set()
