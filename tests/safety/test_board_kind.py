"""The board is never trusted about time: its INFO must match what the host started for.

A board that claims to be a simulator, or a time scale, that the host was not started
for is refused at the handshake (``board_mismatch``): latched, critical (rail cut),
recorded, and it never emits. The host's own time scale is bounded to 1–600.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.protocol import Info
from hil.sim.inprocess import make_sim
from safety.board_kind import REAL_BOARD, BoardKind, check_time_scale
from safety.core_events import FaultLatched
from safety.faults import FaultCode
from safety.rail import make_rail

from .conftest import Rig, WallClock, make_profile


def _info(simulator: bool, time_scale: float) -> Info:
    return Info(1, 1, (1, 0, 0), simulator, time_scale, "X", (), 0)


@pytest.mark.parametrize("scale", [1.0, 2.5, 60.0, 600.0])
def test_a_simulator_may_run_between_1_and_600(scale: float) -> None:
    assert BoardKind.simulated(scale) == BoardKind(True, scale)
    assert check_time_scale(scale) == scale


@pytest.mark.parametrize("scale", [0.0, 0.01, 0.99, 600.01, 601.0, -1.0, math.nan, math.inf])
def test_a_time_scale_outside_1_to_600_is_refused(scale: float) -> None:
    with pytest.raises(ValueError, match="between 1 and 600"):
        BoardKind.simulated(scale)


def test_a_real_board_runs_at_time_scale_1_only() -> None:
    assert BoardKind(False, 1.0) == REAL_BOARD
    with pytest.raises(ValueError, match="real board runs at time scale 1"):
        BoardKind(False, 60.0)
    assert "real board" in REAL_BOARD.describe()
    assert "time scale 60" in BoardKind.simulated(60.0).describe()


@pytest.mark.parametrize(
    ("expected", "simulator", "time_scale"),
    [
        (REAL_BOARD, True, 1.0),  # the simulator flag on a real run
        (REAL_BOARD, False, 0.01),
        (REAL_BOARD, False, 0.0),
        (REAL_BOARD, False, 601.0),
        (REAL_BOARD, False, 2.0),  # flag off but a scale other than 1
        (BoardKind.simulated(60.0), False, 60.0),  # a real board where a simulator was meant
        (BoardKind.simulated(60.0), True, 0.01),
        (BoardKind.simulated(60.0), True, 0.0),
        (BoardKind.simulated(60.0), True, 601.0),
        (BoardKind.simulated(60.0), True, 60.01),
    ],
)
def test_every_other_claim_is_a_mismatch(
    expected: BoardKind, simulator: bool, time_scale: float
) -> None:
    problem = expected.mismatch(_info(simulator, time_scale))
    assert problem is not None
    assert f"time scale {time_scale:g}" in problem and expected.describe() in problem


@pytest.mark.parametrize(
    ("expected", "simulator", "time_scale"),
    [(REAL_BOARD, False, 1.0), (BoardKind.simulated(60.0), True, 60.0)],
)
def test_the_board_the_host_started_for_matches(
    expected: BoardKind, simulator: bool, time_scale: float
) -> None:
    assert expected.mismatch(_info(simulator, time_scale)) is None


def test_a_scale_is_compared_to_the_hundredth_info_can_carry() -> None:
    expected = BoardKind.simulated(1.234)  # INFO carries 1.23
    assert expected.mismatch(_info(True, 1.23)) is None
    assert expected.mismatch(_info(True, 1.22)) is not None


# -- in-process: the whole safety core against a board that claims what it should not --


ClaimRig = Callable[[BoardKind, "tuple[bool, float] | None", float], Rig]


@pytest.fixture
def claim_rig(tmp_path: Path) -> Iterator[ClaimRig]:
    """Build a rig whose board runs at ``scale`` and whose INFO says ``claim``."""
    rigs: list[Rig] = []

    def build(expected: BoardKind, claim: tuple[bool, float] | None, scale: float) -> Rig:
        clock, board, port = make_sim(time_scale=scale, info_claim=claim)
        rail = make_rail(None, None)
        rail.add_listener(board.set_rail)
        rig = Rig(clock, board, port, rail, tmp_path / f"state{len(rigs)}", WallClock(clock))
        rig.board_kind = expected
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        if rig.core is not None:
            rig.core.close()
        rig.rail.close()


MISMATCHES = [
    pytest.param(REAL_BOARD, None, 1.0, id="simulator-flag-on-a-real-run"),
    pytest.param(REAL_BOARD, (False, 0.01), 1.0, id="x0.01"),
    pytest.param(REAL_BOARD, (False, 0.0), 1.0, id="x0"),
    pytest.param(REAL_BOARD, (False, 601.0), 1.0, id="x601"),
    pytest.param(REAL_BOARD, (False, 2.0), 1.0, id="flag-off-scale-2"),
    pytest.param(BoardKind.simulated(60.0), None, 1.0, id="sim-x1-for-a-x60-host"),
    pytest.param(BoardKind.simulated(60.0), (False, 1.0), 60.0, id="real-board-for-a-sim-host"),
]


@pytest.mark.parametrize(("expected", "claim", "scale"), MISMATCHES)
def test_a_board_claiming_another_kind_is_refused_and_never_emits(
    claim_rig: ClaimRig, expected: BoardKind, claim: tuple[bool, float] | None, scale: float
) -> None:
    rig = claim_rig(expected, claim, scale)
    core = rig.connect()
    events = core.poll()
    assert [e.code for e in events if isinstance(e, FaultLatched)] == [FaultCode.BOARD_MISMATCH]
    fault = core.snapshot().fault
    assert fault is not None and "not the kind this controller was started for" in fault.message
    assert "but this controller was started for" in fault.message
    assert not rig.rail.enabled  # critical: the rail is cut
    assert core.self_test() is not None
    assert not rig.rail.enabled  # the self-test's rail check never ran
    reason = core.start_refusal(make_profile())
    assert reason is not None and "Acknowledge" in reason
    assert core.acknowledge_fault() is not None  # a restart with the right board, never an ack
    rig.run(2.0)
    outputs = [e for e in rig.board.pop_events() if e["event"] == "output"]
    assert all(e.get("on") is not True for e in outputs)
    assert max(rig.board.state()["irradiance_mw_cm2"]) == 0.0  # type: ignore[call-overload]
    with rig.ledger() as ledger:
        assert [f.code for f in ledger.faults()] == [FaultCode.BOARD_MISMATCH]


def test_a_matching_simulator_counts_time_on_the_hosts_scale(claim_rig: ClaimRig) -> None:
    rig = claim_rig(BoardKind.simulated(10.0), None, 10.0)
    core = rig.ready()
    core.begin_session(make_profile(), "sha")
    rig.run(1.0)
    elapsed_s = core.snapshot().elapsed_s
    assert elapsed_s is not None and 9.0 <= elapsed_s <= 10.5  # host seconds x the host's 10
