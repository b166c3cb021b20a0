"""A board that did not answer the handshake but talks later (still booting when the
controller started, say): its calibration was never read, so no self-test can pass in
this process. The patient and the caregiver are told to restart nirpad, never to hold
the button to acknowledge (which would only fail the self-test again, blaming the
pad's calibration)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from firmware_host.runner import build_app
from hil.sim.inprocess import make_sim
from safety.board_kind import BoardKind
from safety.rail import make_rail

from .sim_app import install_builtin


class _DeafPort:
    """The simulator's port while ``deaf``: the board talks but does not hear."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.deaf = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> int:
        return len(data) if self.deaf else int(self.inner.write(data))


def test_a_board_that_answers_only_after_the_handshake_is_a_restart(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    install_builtin(state_dir)
    with contextlib.ExitStack() as stack:
        clock, board, port = make_sim(seed=3)
        rail = make_rail(None, None)
        stack.callback(rail.close)
        rail.add_listener(board.set_rail)
        deaf = _DeafPort(port)
        app = build_app(
            stack, state_dir=state_dir, port_url=None, rail_pin=None, rail_file=None,
            site_config=None, clock=clock, transport=deaf, rail=rail,
            board=BoardKind.simulated(board.time_scale),
        )  # fmt: skip
        deaf.deaf = False  # the board hears from now on
        app.controller.boot()
        app.loop.run_for(0.5)
        ack = app.controller.command("ack")  # what holding the button does
        status = app.controller.status()
        app.loop.run_for(0.2)
        assert board.state()["outputs_on"] is False
    assert str(app.controller.state) == "fault"
    assert status["fault"]["code"] == "board_not_answering"
    assert not ack.ok and "restart nirpad" in ack.message
    assert "restart nirpad" in status["start_refusal"]
    assert "acknowledge" not in status["start_refusal"]
