"""The bounded CI version of the virtual soak (``python -m hil.tools.soak``).

Back-to-back sessions on one ledger and one virtual clock, with random simulator faults,
power cuts and contact losses between them; ``hil.suite.invariants`` judges every tick and
the ledger. The long run (1,000 sessions) and the real-time run are documented in
docs/reliability.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import pytest
from pytest_mock import MockerFixture

from hil.tools.soak import _realtime_loop, main, run_virtual
from safety.ledger import Ledger


def _args(tmp_path: Path, sessions: int, seed: int) -> object:
    return argparse.Namespace(
        sessions=sessions, seed=seed, session_min=1, fault_rate=0.4, state_dir=str(tmp_path)
    )


@pytest.mark.slow
def test_back_to_back_sessions_with_faults_keep_every_invariant(tmp_path: Path) -> None:
    report = run_virtual(_args(tmp_path, 12, 3))  # type: ignore[arg-type]
    assert report["findings"] == [] and report["findings_count"] == 0
    assert report["missed_lease_renewals"] == 0
    assert report["sessions_in_ledger"] == 12, report
    assert report["outcomes"].get("completed", 0) >= 6, report  # faults do not end the course
    assert report["ledger_bytes"] > 0


@pytest.mark.slow
def test_the_command_line_reports_and_exits_zero(tmp_path: Path, capsys: object) -> None:
    argv = ["--sessions", "2", "--session-min", "1", "--fault-rate", "0"]
    assert main([*argv, "--state-dir", str(tmp_path)]) == 0


def test_ctrl_c_ends_the_command_with_a_message_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mocker: MockerFixture
) -> None:
    mocker.patch("hil.tools.soak.run_virtual", side_effect=KeyboardInterrupt)
    assert main(["--sessions", "2", "--state-dir", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_ctrl_c_during_the_real_time_run_reports_what_was_measured(
    tmp_path: Path, mocker: MockerFixture
) -> None:
    """The loop ends on Ctrl-C and still returns its figures (marked interrupted)."""
    with Ledger.open(tmp_path, lambda: dt.datetime.now(dt.UTC)):
        pass  # an empty ledger, as a controller that never treated leaves it
    mocker.patch("hil.tools.soak.time.sleep")
    host = mocker.Mock(pid=os.getpid(), **{"poll.return_value": None})
    replies = iter([{"exit_code": 0}, {"data": {"state": "treating"}}, KeyboardInterrupt()])

    def send(state_dir: Path, request: dict[str, str]) -> dict[str, object]:
        reply = next(replies)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    args = argparse.Namespace(minutes=60.0)
    report = _realtime_loop(args, tmp_path, host, [], send)
    assert report["interrupted"] is True
    assert report["status_samples_by_state"] == {"treating": 1}
    assert report["sessions"] == [] and report["missed_lease_renewals"] == 0


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--session-min", "0"], "--session-min"),
        (["--sessions", "-3"], "--sessions"),
        (["--fault-rate", "nan"], "--fault-rate"),
        (["--fault-rate", "1.5"], "--fault-rate"),
        (["--realtime", "--minutes", "0"], "--minutes"),
        (["--realtime", "--profile", "nonsense"], "--profile"),
        (["--state-dir", __file__], "--state-dir"),
    ],
)
def test_a_bad_option_is_a_usage_error_before_anything_runs(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str], mocker: MockerFixture
) -> None:
    virtual = mocker.patch("hil.tools.soak.run_virtual")
    realtime = mocker.patch("hil.tools.soak.run_realtime")
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert option in capsys.readouterr().err
    assert not virtual.called and not realtime.called


def test_a_controller_that_never_becomes_ready_ends_the_real_time_run_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mocker: MockerFixture
) -> None:
    from hil.rigs.controller_child import ControllerNotReadyError

    why = "nirpad run never became ready (exit 1); log: nirpad: another nirpad process …"
    mocker.patch("hil.tools.soak.run_realtime", side_effect=ControllerNotReadyError(why))
    assert main(["--realtime", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"python -m hil.tools.soak: {why}\n"


def test_a_pads_state_directory_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mocker: MockerFixture
) -> None:
    """A soak trusts the rig clinic's test key: it must never write it into a pad's
    state directory (one with a record but no rig site.toml)."""
    virtual = mocker.patch("hil.tools.soak.run_virtual")
    (tmp_path / "ledger.sqlite3").write_bytes(b"a pad's record")
    with pytest.raises(SystemExit) as exc:
        main(["--state-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "not a rig's site.toml" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.sqlite3"]
    assert not virtual.called


def test_a_state_directory_a_controller_holds_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mocker: MockerFixture
) -> None:
    from firmware_host.state_lock import StateLock

    realtime = mocker.patch("hil.tools.soak.run_realtime")
    with StateLock.acquire(tmp_path), pytest.raises(SystemExit) as exc:
        main(["--realtime", "--state-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert f"--state-dir {tmp_path}: another nirpad process (pid {os.getpid()}) is using" in (
        capsys.readouterr().err
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nirpad.lock"]
    assert not realtime.called


def test_an_empty_folder_or_a_rigs_own_is_a_soaks_state_directory(
    tmp_path: Path, mocker: MockerFixture
) -> None:
    from hil.rigs.clinic import trust_rig_clinic

    mocker.patch("hil.tools.soak.run_virtual", return_value={"sessions": 0})
    mocker.patch("hil.tools.soak.print_report", return_value=True)
    assert main(["--state-dir", str(tmp_path / "new")]) == 0
    trust_rig_clinic(tmp_path / "rig")
    (tmp_path / "rig" / "ledger.sqlite3").write_bytes(b"an earlier soak's record")
    assert main(["--state-dir", str(tmp_path / "rig")]) == 0
