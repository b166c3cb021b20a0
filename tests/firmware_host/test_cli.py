"""The nirpad CLI: exit codes 0/2/3/4 against a real socket, output, and a fast start."""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from firmware_host.cli import format_status, main
from firmware_host.control import ControlServer
from firmware_host.control_client import ControlReply
from firmware_host.demo import _progress_fields

T = TypeVar("T")
STATUS = {
    "state": "treating",
    "profile_id": "rls-810-standard",
    "elapsed_s": 125.2,
    "remaining_s": 1674.8,
    "fluence_j_cm2": 6.26,
    "planned_fluence_j_cm2": 90.0,
    "irradiance_mw_cm2": {"810": 50.0, "850": 0.0},
    "skin_temp_c": 33.44,
    "board_temp_c": 35.0,
    "contact": True,
    "fault": None,
    "start_refusal": "a session is already running",
    "next_start_allowed_at": None,
}


class FakeController:
    def __init__(self) -> None:
        self.commands: list[str] = []

    def command(self, name: str, args: dict[str, Any] | None = None) -> ControlReply:
        self.commands.append(name)
        if name == "pause":
            return ControlReply(False, 3, "nothing to pause: no session is running")
        return ControlReply(True, 0, f"{name}: accepted")

    def status(self) -> dict[str, Any]:
        return STATUS


class ThreadLoop:
    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1)

    def call_soon_threadsafe(self, fn: Callable[[], T]) -> Future[T]:
        return self.pool.submit(fn)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[FakeController]:
    controller, loop = FakeController(), ThreadLoop()
    server = ControlServer(tmp_path, controller, loop)
    server.start()
    try:
        yield controller
    finally:
        server.close()
        loop.pool.shutdown()


@pytest.mark.parametrize("command", ["start", "resume", "stop", "ack"])
def test_accepted_command_exits_0(
    running: FakeController, tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--state-dir", str(tmp_path)]) == 0
    assert running.commands == [command]
    assert capsys.readouterr().out == f"{command}: accepted\n"


class FullDisk(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_an_accepted_command_whose_output_is_lost_says_it_was_done(
    running: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(["stop", "--state-dir", str(tmp_path)]) == 1  # not 0: nothing was shown
    assert running.commands == ["stop"]  # and not sent again
    assert capsys.readouterr().err == (
        "nirpad: could not write the output: the disk is full; done all the same: stop: accepted\n"
    )


def test_refused_command_exits_3_with_reason_on_stderr(
    running: FakeController, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pause", "--state-dir", str(tmp_path)]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err == "nirpad: nothing to pause: no session is running\n"


@pytest.mark.parametrize("argv", [["status"], ["status", "--json"], ["start"], ["ack"]])
def test_no_controller_exits_4(
    tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--state-dir", str(tmp_path)]) == 4
    assert "no controller is running" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-1", "0", "1e400", "1e9"])
def test_a_timeout_that_is_no_number_of_seconds_is_a_usage_error(
    running: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    monkeypatch.setenv("NIRPAD_TIMEOUT_S", value)
    assert main(["start", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"nirpad: $NIRPAD_TIMEOUT_S must be a number of seconds above 0 and at most 3600, "
        f"not {value!r}; unset it to wait 6 s\n"
    )
    assert running.commands == []


def test_state_dir_from_environment(
    running: FakeController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIRPAD_STATE_DIR", str(tmp_path))
    assert main(["start"]) == 0
    monkeypatch.setenv("NIRPAD_STATE_DIR", str(tmp_path / "elsewhere"))
    assert main(["start"]) == 4


def test_status_json_has_the_controller_keys(
    running: FakeController, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--json", "--state-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == STATUS


def test_status_human_output(
    running: FakeController, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "State:" in out and "treating" in out
    assert "2:05" in out and "27:55" in out  # elapsed and remaining as minutes
    assert "810: 50.0" in out and "Contact:" in out and "yes" in out


def test_a_timeout_that_is_not_text_is_shown_as_bytes(
    running: FakeController,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NIRPAD_TIMEOUT_S", "5\udcff")  # the byte ff, as Python reads it
    assert main(["start", "--state-dir", str(tmp_path)]) == 2
    assert "at most 3600, not '5\\xff'; unset it" in capsys.readouterr().err


def test_format_status_fault_and_missing_keys() -> None:
    fault = {"code": "skin_overtemp", "message": "hot"}
    text = format_status({"state": "fault", "state_reason": "hot", "fault": fault})
    assert text.splitlines()[1].endswith("hot (skin_overtemp)")
    assert len(text.splitlines()) == 2  # the reason is the Fault line's, said once


def test_format_status_says_why_a_fault_cannot_be_acknowledged_yet() -> None:
    fault = {"code": "skin_overtemp", "message": "hot", "clear_refusal": "the cause is here"}
    lines = format_status({"state": "fault", "fault": fault}).splitlines()
    assert [" ".join(line.split()) for line in lines[1:]] == [
        "Fault: hot (skin_overtemp)",
        "Acknowledge: not yet: the cause is here",
    ]
    fault["clear_refusal"] = None
    assert len(format_status({"state": "fault", "fault": fault}).splitlines()) == 2


def test_format_status_says_why_the_pad_is_in_its_state() -> None:
    def lines(data: dict[str, Any]) -> list[str]:
        return [" ".join(line.split()) for line in format_status(data).splitlines()]

    reason = "session stopped: by a stop command"
    assert lines({"state": "complete", "state_reason": reason}) == [
        "State: complete",
        f"Why: {reason}",
    ]
    assert lines({"state": "ready", "state_reason": None}) == ["State: ready"]


def test_format_status_shows_no_readings_as_a_dash() -> None:
    """The board lost: no light level, temperature or contact to show."""
    gone = {"state": "fault", "irradiance_mw_cm2": {}, "skin_temp_c": None, "contact": None}
    assert [" ".join(line.split()) for line in format_status(gone).splitlines()] == [
        "State: fault",
        "Irradiance (mW/cm²): -",
        "Skin (°C): -",
        "Contact: -",
    ]


def test_the_demo_and_status_show_the_time_left_to_the_nearest_second() -> None:
    """59.6 s left is 1:00 in ``nirpad status`` and in the demo's progress line."""
    status = {"state": "treating", "elapsed_s": 17.97, "remaining_s": 59.6}
    assert format_status(status).splitlines()[1:] == ["Elapsed:             0:18",
                                                      "Remaining:           1:00"]  # fmt: skip
    assert _progress_fields(status)["info"].startswith(" 1:00 left")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["run"],
        ["run", "--port", "x", "--sim"],
        ["status", "--yaml"],
        ["history", "--csv", "--json"],
        ["start", "now"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "sim", "demo", "status", "start", "history"):
        assert f"    {name}" in out


def test_unexpected_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk on fire")

    monkeypatch.delenv("NIRPAD_DEBUG", raising=False)
    monkeypatch.setattr("firmware_host.control_client.send", explode)
    assert main(["status", "--state-dir", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "nirpad: disk on fire\n"


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("firmware_host.control_client.send", interrupted)
    assert main(["start", "--state-dir", str(tmp_path)]) == 130


def test_interrupt_while_the_profile_commands_load_exits_130(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``nirpad profile ...`` imports pydantic and the limits before its handler runs
    (seconds on a Pi): a Ctrl-C then is "interrupted", not a traceback."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("firmware_host.profile_commands.register", interrupted)
    assert main(["profile", "show", "--state-dir", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "nirpad: interrupted\n"


def test_sim_execs_the_simulator_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []

    def execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        calls.append((path, argv))

    monkeypatch.setattr("firmware_host.cli.os.execve", execve)
    main(["sim", "--seed", "3", "--help"])
    argv = [sys.executable, "-P", "-m", "hil.sim", "--seed", "3", "--help"]
    assert calls == [(sys.executable, argv)]


@pytest.mark.parametrize(
    ("command", "usage"),
    [
        (["firmware_host", "sim"], "usage: nirpad sim ["),
        (["hil.sim"], "usage: python -m hil.sim ["),
    ],
)
def test_the_simulators_help_names_the_command_typed(command: list[str], usage: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NIRPAD_SIM_PROG"}
    proc = subprocess.run(
        [sys.executable, "-m", *command, "--help"],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith(usage)


HEAVY = (
    "pydantic", "transitions", "gpiozero", "rich", "serial", "sqlite3", "cryptography",
    "matplotlib", "fpdf",
)  # fmt: skip


@pytest.mark.parametrize("argv", [["--help"], ["status"], ["start"]])
def test_fast_start_does_not_import_heavy_modules(tmp_path: Path, argv: list[str]) -> None:
    env = {**os.environ, "NIRPAD_STATE_DIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "firmware_host", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    assert proc.returncode in (0, 4), proc.stderr[-2000:]
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "firmware_host" in imported  # the measurement itself works
    assert imported.isdisjoint(HEAVY), sorted(imported & set(HEAVY))


class _InterruptImport:
    """A meta-path finder that raises KeyboardInterrupt when ``name`` is imported."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if fullname == self.name:
            raise KeyboardInterrupt


def test_interrupt_while_the_command_line_itself_loads_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The console script imports the command line under the guard: a Ctrl-C in those
    first tenths of a second on a Pi is "interrupted", not a traceback."""
    from firmware_host.console import run

    monkeypatch.delitem(sys.modules, "firmware_host.cli")
    monkeypatch.setattr(sys, "meta_path", [_InterruptImport("firmware_host.cli"), *sys.meta_path])
    assert run() == 130
    assert capsys.readouterr().err == "nirpad: interrupted\n"


def test_the_console_script_runs_the_command_line_on_its_arguments(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import tomllib

    from firmware_host.console import run

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["nirpad"] == "firmware_host.console:run"
    monkeypatch.setattr(sys, "argv", ["nirpad", "status", "--state-dir", str(tmp_path)])
    assert run() == 4  # no controller runs for this state directory
    assert capsys.readouterr().err == f"nirpad: no controller is running for {tmp_path}\n"
