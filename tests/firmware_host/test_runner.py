"""nirpad run's assembly and shutdown, with the real safety core on the in-process
simulator (virtual clock), and the simulator child-process handling.

SIGTERM mid-session is a real signal to this process, sent from the loop's tick hook at
a chosen virtual time: the loop must stop, the outputs go off, the open session is
closed in the ledger as ``stopped``, and sd_notify says READY, WATCHDOG and STOPPING.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from firmware_host import runner
from firmware_host.cli import build_parser
from firmware_host.profile_commands import validate_and_install
from firmware_host.runner import serve
from firmware_host.service import Notifier
from firmware_host.sim_process import RunError, SimProcess
from firmware_host.stop_signals import stop_signals
from safety.board_kind import REAL_BOARD, BoardKind
from safety.faults import Outcome
from tests.firmware_host.sim_app import build_sim_app, install_builtin, only_session


@pytest.fixture
def notify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "5000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield sock
    finally:
        sock.close()


def _datagrams(sock: socket.socket) -> list[bytes]:
    out = []
    with contextlib.suppress(BlockingIOError):
        while True:
            out.append(sock.recv(4096))
    return out


@pytest.mark.timeout(60)
@pytest.mark.slow
@pytest.mark.usefixtures("builtin_wall_clock")  # the built-in as shipped
def test_sigterm_mid_session_turns_off_and_records_stopped(
    tmp_path: Path, notify: socket.socket
) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    install_builtin(state_dir)
    seen: dict[str, object] = {}
    with stop_signals() as signals, contextlib.ExitStack() as stack:
        app, clock, board = build_sim_app(stack, state_dir, seed=5)
        started: list[float] = []

        sent: list[bytes] = []

        def press_start_then_sigterm() -> None:
            sent.extend(_datagrams(notify))  # systemd reads as it goes; so does this test
            state = str(app.controller.state)
            if state == "ready" and not started:
                reply = app.controller.command("start")
                assert reply.ok, reply.message
                started.append(clock())
            elif started and clock() - started[0] >= 120.0 and "signalled" not in seen:
                seen["signalled"] = state
                seen["on_before"] = board.state()["outputs_on"]
                os.kill(os.getpid(), signal.SIGTERM)

        app.loop.on_tick_hook = press_start_then_sigterm
        notifier = Notifier()
        stack.callback(notifier.close)
        assert serve(app, stack, notifier, signals, clock=clock) == 0
        assert (state_dir / "control.sock").exists()  # served while running
    assert not (state_dir / "control.sock").exists()
    assert seen["signalled"] == "treating" and seen["on_before"] is True
    board.advance_to(clock() + 1.0)
    assert board.state()["outputs_on"] is False
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored
    session = only_session(state_dir)
    assert session.outcome is Outcome.STOPPED
    assert 0.0 < session.delivered_fluence_total_j_cm2 < session.planned_fluence_total_j_cm2
    sent.extend(_datagrams(notify))
    assert sent[0].startswith(b"READY=1")
    assert b"WATCHDOG=1" in sent
    assert any(d.startswith(b"STOPPING=1") for d in sent)
    assert any(d.startswith(b"STATUS=treating") for d in sent)


def _fake_sim(tmp_path: Path, body: str) -> str:
    """A stand-in module for hil.sim, so the child handling is tested on its own."""
    pkg = tmp_path / "fakesim"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(body)
    return "fakesim"


def test_sim_process_reports_port_events_and_is_reaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _fake_sim(
        tmp_path,
        "import json, sys\n"
        "print(json.dumps({'port': '/dev/pts/99'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    print(json.dumps({'event': 'echo', 'got': json.loads(line)}), flush=True)\n",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    events: list[dict[str, object]] = []
    sim = SimProcess(["--x"], on_event=events.append, module=module)
    try:
        assert sim.start(timeout_s=20) == "/dev/pts/99"
        assert sim.argv == [sys.executable, "-P", "-m", module, "--x"]
        sim.send({"cmd": "state"})
        assert sim.child is not None
        echo = sim.child.wait_for(lambda e: e.get("event") == "echo", 20)
        assert echo["got"] == {"cmd": "state"}
        assert sim.recent == [{"port": "/dev/pts/99"}, echo]
    finally:
        proc = sim.child.proc if sim.child is not None else None
        sim.close()
    assert proc is not None and proc.returncode is not None  # reaped
    assert events == [{"port": "/dev/pts/99"}, echo]
    assert sim.recent == []  # closed
    sim.send({"cmd": "state"})  # to a closed simulator: dropped, no error


def test_sim_process_without_port_is_a_run_error_and_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _fake_sim(tmp_path, "import sys\nsys.exit(3)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    sim = SimProcess([], module=module)
    with pytest.raises(RunError, match="did not report its port"):
        sim.start(timeout_s=20)
    assert sim.child is None


def test_sim_process_that_ignores_sigterm_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _fake_sim(
        tmp_path,
        "import json, signal, sys\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(json.dumps({'port': 'p'}), flush=True)\n"
        "sys.stdin.read()\n"
        "import time\n"
        "while True: time.sleep(1)\n",
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr("firmware_host.sim_process.CHILD_EXIT_TIMEOUT_S", 0.5)
    sim = SimProcess([], module=module)
    sim.start(timeout_s=20)
    assert sim.child is not None
    proc = sim.child.proc
    sim.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.usefixtures("builtin_wall_clock")  # the built-in as shipped
def test_a_prescription_edited_after_install_fails_its_signature_at_boot(tmp_path: Path) -> None:
    """The signature is checked on every load of the installed file, not only at install."""
    from profiles.signing import generate_keypair, sign_profile
    from profiles.store import installed_path

    state_dir = tmp_path / "state"
    state_dir.mkdir()
    private_pem, public_b64 = generate_keypair()
    site = state_dir / "site.toml"
    site.write_text(
        f'[signing]\nrequire_signed = true\n[signing.trusted_keys]\nclinic = "{public_b64}"\n'
    )
    text = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_text()
    signed = sign_profile(text, private_pem, "clinic")
    outcome = validate_and_install(
        state_dir, signed.encode(), "rx.toml", site, session_state=lambda: None
    )
    assert outcome.ok, outcome.message
    path = installed_path(state_dir)
    path.write_text(path.read_text().replace("sessions_per_week = 3", "sessions_per_week = 7"))
    with contextlib.ExitStack() as stack:
        app, _, _ = build_sim_app(stack, state_dir, seed=5, site_config=site)
        assert str(app.controller.boot()) == "idle"
        status = app.controller.status()
        assert "signature" in status["state_reason"]
        assert not app.controller.command("start").ok


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--port", "x", "--time-scale", "2"], "--time-scale needs --sim or --simulated-board"),
        (["--sim", "--time-scale", "0"], "between 1 and 600"),
        (["--sim", "--time-scale", "0.01"], "between 1 and 600"),
        (["--sim", "--time-scale", "601"], "between 1 and 600"),
        (["--port", "x", "--simulated-board", "--time-scale", "nan"], "between 1 and 600"),
    ],
)
def test_the_time_scale_is_the_hosts_own_and_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from firmware_host.cli import main

    # 2, a usage error: nirpad.service's RestartPreventExitStatus does not retry it
    assert main(["run", *argv, "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nirpad: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "s").exists()  # refused before anything was touched


@pytest.mark.parametrize("option", ["--state-dir", "--site-config", "--rail-file"])
def test_a_home_folder_of_no_user_is_a_usage_error_systemd_does_not_retry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str
) -> None:
    from firmware_host.cli import main

    args = ["run", "--sim", "--state-dir", str(tmp_path / "s"), option, "~nosuchuser-nirpad/x"]
    assert main(args) == 2  # RestartPreventExitStatus=2 in nirpad.service
    err = capsys.readouterr().err
    assert err.startswith("nirpad: cannot use ~nosuchuser-nirpad/x:") and err.count("\n") == 1
    assert not (tmp_path / "s").exists()  # refused before anything was touched


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["--port", "x"], REAL_BOARD),
        (["--port", "x", "--simulated-board"], BoardKind.simulated(1.0)),
        (["--port", "x", "--simulated-board", "--time-scale", "60"], BoardKind.simulated(60.0)),
        (["--sim", "--time-scale", "600"], BoardKind.simulated(600.0)),
    ],
)
def test_the_board_kind_comes_from_the_command_line(argv: list[str], kind: BoardKind) -> None:
    from firmware_host.cli import build_parser
    from firmware_host.runner import board_kind

    args = build_parser().parse_args(["run", *argv])
    assert board_kind(args) == kind


class _Built(Exception):
    """Raised by a stand-in ``build_app``: the run stops once its parts are chosen."""


def test_run_checks_prescriptions_against_the_site_configuration_the_commands_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mocker: MockerFixture
) -> None:
    """``$NIRPAD_SITE_CONFIG`` chooses the controller's limits and keys, as it does the
    CLI's and the page's: a prescription the caregiver checked is judged the same way."""
    site = tmp_path / "clinic" / "site.toml"
    monkeypatch.setenv("NIRPAD_SITE_CONFIG", str(site))
    build = mocker.patch("firmware_host.runner.build_app", side_effect=_Built)
    args = build_parser().parse_args(
        ["run", "--port", "loop://", "--rail-file", str(tmp_path / "rail"),
         "--state-dir", str(tmp_path / "state")]
    )  # fmt: skip
    with pytest.raises(_Built):
        runner.main(args)
    assert build.call_args.kwargs["site_config"] == site


@pytest.mark.parametrize("errno_code", [None, errno.ENOSPC])
def test_a_rail_file_that_cannot_be_written_is_a_run_error_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_code: int | None
) -> None:
    if errno_code is None:
        rail_file, reason = tmp_path / "no such folder" / "rail", "No such file or directory"
    else:
        rail_file, reason = tmp_path / "rail", "the disk is full"

        def full(fd: int) -> None:
            raise OSError(errno_code, os.strerror(errno_code))

        monkeypatch.setattr("safety.rail.os.fsync", full)
    with contextlib.ExitStack() as stack, pytest.raises(RunError) as refused:
        runner.open_rail(stack, None, rail_file)
    assert str(refused.value) == f"cannot write the rail file {rail_file}: {reason}"
    assert not list(tmp_path.glob(".rail-*"))  # no temporary file left


def test_a_rail_file_under_the_home_folder_is_expanded_as_a_shell_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse
    import contextlib

    from firmware_host.runner import _board

    monkeypatch.setenv("HOME", str(tmp_path))
    args = argparse.Namespace(rail_file="~/rail", sim=False, port="/dev/ttyUSB0", rail_pin=None)
    with contextlib.ExitStack() as stack:
        assert _board(args, tmp_path / "s", stack) == ("/dev/ttyUSB0", None, tmp_path / "rail")
