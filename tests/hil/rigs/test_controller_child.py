"""``hil.rigs.controller_child``: the command line of ``nirpad run`` as a child, and a
child that never becomes ready (the ready path runs in every process rig's test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hil.rigs.controller_child import (
    ControllerChild,
    ControllerNotReadyError,
    controller_argv,
    sim_board_args,
)


def test_the_command_line_of_a_controller_on_a_simulator(tmp_path: Path) -> None:
    rail, state = tmp_path / "rail", tmp_path / "state"
    args = sim_board_args("/dev/pts/9", rail_file=rail, state_dir=state, time_scale=60.0)
    assert args == [
        "--port", "/dev/pts/9", "--simulated-board", "--time-scale", "60",
        "--rail-file", str(rail), "--state-dir", str(state),
    ]  # fmt: skip
    assert "--time-scale" not in sim_board_args("/dev/pts/9", rail_file=rail, state_dir=state)
    assert controller_argv(args) == [sys.executable, "-m", "firmware_host", "run", *args]


@pytest.mark.slow
def test_a_controller_that_exits_is_never_ready_and_its_log_says_why(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-port"
    args = sim_board_args(str(missing), rail_file=tmp_path / "rail", state_dir=tmp_path / "state")
    with pytest.raises(ControllerNotReadyError, match="never became ready") as raised:
        ControllerChild(args, log_path=tmp_path / "run.log", notify_path=tmp_path / "notify")
    assert f"cannot open the pad on {missing}" in str(raised.value)
