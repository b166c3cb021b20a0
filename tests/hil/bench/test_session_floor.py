"""The speed figure's floor: a host of no logic keeps the simulated board treating."""

from __future__ import annotations

import pytest

from drivers.protocol import FrameDecoder, OutputOff, SetOutput, encode_frame
from hil.bench.figures_inprocess import SessionCache, speed_figures
from hil.bench.figures_stack import BenchSetupError
from hil.bench.session_floor import _renewals, session_floor_s


def test_the_bare_host_keeps_the_board_lit_for_the_whole_time() -> None:
    # the lease is 200 ms: renewals that did not reach the board would end the light,
    # and session_floor_s refuses a floor measured on a dark board
    assert session_floor_s(1.0) > 0.0


def test_renewals_are_the_controllers_last_set_output_at_every_sequence_number() -> None:
    command = SetOutput(lease_ms=200, channels=())
    renewals = _renewals(encode_frame(command, 7))
    assert len(renewals) == 0x10000
    decoded = [FrameDecoder().feed(renewals[seq])[0] for seq in (0, 1, 0xFFFF)]
    assert [f.seq for f in decoded] == [0, 1, 0xFFFF]
    assert all(f.message == command for f in decoded)


@pytest.mark.parametrize("written", [b"", encode_frame(OutputOff(), 3)])
def test_renewals_refuse_a_last_frame_that_is_not_a_set_output(written: bytes) -> None:
    with pytest.raises(BenchSetupError, match="not a SET_OUTPUT"):
        _renewals(written)


def test_the_speed_figure_carries_its_floor_and_the_hosts_share() -> None:
    cache = SessionCache(1)
    (wall, _rate) = speed_figures(cache, floor_s=2.0)
    assert wall.floor == 2.0
    assert wall.median is not None
    assert f"the host takes {wall.median - 2.0:.1f} s" in wall.note
