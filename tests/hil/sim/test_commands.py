"""The JSON-line command vocabulary, applied to an in-process board."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from hil.sim.__main__ import parse_args
from hil.sim.board import SimBoard
from hil.sim.commands import QUIT, CommandError, apply_command
from hil.sim.pty_runner import RailFile, read_rail_file


@pytest.fixture
def board() -> SimBoard:
    return SimBoard(start_s=10.0)


def test_state_reply_has_the_truth(board: SimBoard) -> None:
    reply = apply_command(board, {"cmd": "state"})
    assert isinstance(reply, dict) and reply["event"] == "state"
    for key in (
        "outputs_on",
        "skin_c",
        "contact",
        "lease_remaining_ms",
        "faults",
        "rail_enabled",
        "delivered_fluence_j_cm2",
        "t",
    ):
        assert key in reply


def test_set_press_rail_inject_clear_reset_quit(board: SimBoard) -> None:
    apply_command(board, {"cmd": "set", "ambient_c": 32, "contact": False, "blanket": True})
    state = board.state()
    assert (state["ambient_c"], state["contact"], state["blanket"]) == (32.0, False, True)
    apply_command(board, {"cmd": "press", "kind": "long"})
    assert board.state()["button_down"]
    apply_command(board, {"cmd": "rail", "enabled": False})
    assert not board.state()["rail_enabled"]
    apply_command(board, {"cmd": "inject", "fault": "link_delay", "ms": 30})
    assert board.state()["injections"] == [{"fault": "link_delay", "delay_ms": 30.0}]
    apply_command(board, {"cmd": "clear"})
    assert board.state()["injections"] == []
    apply_command(board, {"cmd": "reset"})
    names = [e["event"] for e in board.pop_events()]
    assert {"contact", "button", "rail", "injected", "cleared", "reset"} <= set(names)
    assert apply_command(board, {"cmd": "quit"}) == QUIT


@pytest.mark.parametrize(
    "command",
    [
        [],
        {"cmd": 3},
        {"cmd": "fly"},
        {"cmd": "set"},
        {"cmd": "set", "contact": "yes"},
        {"cmd": "set", "ambient_c": True},
        {"cmd": "set", "ambient_c": float("nan")},
        {"cmd": "set", "ambient_c": float("inf")},
        {"cmd": "set", "ambient_c": 1000},
        {"cmd": "set", "ambient_c": -100, "contact": False},
        {"cmd": "press", "kind": "medium"},
        {"cmd": "inject"},
        {"cmd": "inject", "fault": "nope"},
        {"cmd": "rail"},
        {"cmd": "reset", "reason": "gremlins"},
    ],
)
def test_bad_commands_raise_command_error(board: SimBoard, command: Any) -> None:
    with pytest.raises(CommandError):
        apply_command(board, command)


def test_rail_command_is_refused_when_a_rail_file_rules(board: SimBoard) -> None:
    with pytest.raises(CommandError):
        apply_command(board, {"cmd": "rail", "enabled": True}, rail_locked=True)


def test_rail_file_content(tmp_path: Any) -> None:
    path = tmp_path / "rail"
    assert read_rail_file(path) == RailFile(False, None)  # missing
    path.write_text("1 42\n")
    assert read_rail_file(path) == RailFile(True, 42)
    path.write_text("0 43")
    assert read_rail_file(path) == RailFile(False, 43)
    path.write_text("1")  # enabled, but nothing ever beats
    assert read_rail_file(path) == RailFile(True, None)
    path.write_text("yes -1")
    assert read_rail_file(path) == RailFile(False, None)
    path.write_text("")
    assert read_rail_file(path) == RailFile(False, None)


@pytest.mark.timeout(10)
def test_a_rail_file_that_is_no_file_reads_as_disabled_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "rail"
    os.mkfifo(fifo)  # opening it to read would wait for a writer: the simulator stood still
    assert read_rail_file(fifo) == RailFile(False, None)
    assert read_rail_file(tmp_path) == RailFile(False, None)  # a folder
    assert read_rail_file(Path("/dev/zero")) == RailFile(False, None)  # endless


def test_a_rail_count_too_long_for_int_is_no_count(tmp_path: Path) -> None:
    path = tmp_path / "rail"
    path.write_text("1 " + "9" * 5000 + "\n")  # int() refuses over 4300 digits
    assert read_rail_file(path) == RailFile(True, None)


def test_a_bad_room_temperature_changes_nothing(board: SimBoard) -> None:
    with pytest.raises(CommandError, match="room temperature"):
        apply_command(board, {"cmd": "set", "ambient_c": 1e400, "contact": False})
    state = board.state()
    assert (state["ambient_c"], state["contact"]) == (22.0, True)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e6", "-41", "abc"])
def test_the_simulator_refuses_a_bad_ambient_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse_args(["--ambient-c", value])
    assert exc.value.code == 2
    assert "--ambient-c" in capsys.readouterr().err
