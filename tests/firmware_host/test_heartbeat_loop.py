"""The event loop's tick sends the rail's heartbeat in every state; a loop that stops
ticking stops it, and the HAT's hold circuit (simulated) drops the rail."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_host.machine import State
from hil.rigs.harness import InProcessRig
from hil.sim.board import RAIL_HOLD_S


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Callable[..., InProcessRig]]:
    rigs: list[InProcessRig] = []

    def make(**kwargs: object) -> InProcessRig:
        rig = InProcessRig.build(tmp_path / f"state{len(rigs)}", time_scale=60.0, **kwargs)  # type: ignore[arg-type]
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


def _count_calls(rig: InProcessRig) -> list[int]:
    """Count the core's heartbeat calls (the tick's) on the rail the rig gave it, toggled
    line or not (a cut rail is asked, and toggles nothing)."""
    rail = rig.rail
    calls = [0]
    send = rail.heartbeat

    def counted() -> None:
        calls[0] += 1
        send()

    rail.heartbeat = counted  # type: ignore[method-assign]
    return calls


def _per_tick(rig: InProcessRig, calls: list[int], seconds: float = 1.0) -> tuple[int, int, int]:
    """(ticks, heartbeat calls, toggles the board's HAT saw) over ``seconds`` of the loop."""
    ticks_before, calls_before = len(rig.loop.tick_jitter_s), calls[0]
    beats_before = int(rig.board.state()["heartbeats"])  # type: ignore[call-overload]
    rig.run(seconds)
    beats = int(rig.board.state()["heartbeats"]) - beats_before  # type: ignore[call-overload]
    return len(rig.loop.tick_jitter_s) - ticks_before, calls[0] - calls_before, beats


@pytest.mark.slow
def test_the_tick_heartbeats_in_every_state(build: Callable[..., InProcessRig]) -> None:
    idle = build(profile_id=None)
    idle.boot(expect=State.IDLE)
    rig = build()
    rig.boot()
    seen = {State.IDLE: _per_tick(idle, _count_calls(idle))}
    calls = _count_calls(rig)
    seen[State.READY] = _per_tick(rig, calls)
    rig.start()
    seen[State.TREATING] = _per_tick(rig, calls)
    assert rig.command("pause").ok
    seen[State.PAUSED] = _per_tick(rig, calls)
    assert rig.command("resume").ok
    rig.run_until(lambda: rig.state is State.COMPLETE, 60.0)
    seen[State.COMPLETE] = _per_tick(rig, calls)
    for state, (ticks, sent, toggled) in seen.items():
        assert ticks >= 49 and sent == ticks and toggled == ticks, (state, ticks, sent, toggled)
    assert rig.board.rail_enabled
    rig.inject("ntc_drift", sensor="skin_b", rate_c_per_min=60.0)  # sensors disagree
    rig.run_until(lambda: rig.state is State.FAULT, 30.0)
    ticks, sent, toggled = _per_tick(rig, calls)
    # fault: the tick still sends, but the rail is cut and a cut rail does not toggle
    assert ticks >= 49 and sent == ticks and toggled == 0
    assert not rig.rail.enabled and not rig.board.rail_enabled


def test_a_loop_that_stops_ticking_stops_the_heartbeat(build: Callable[..., InProcessRig]) -> None:
    rig = build()
    rig.boot()
    beats = rig.board.state()["heartbeats"]
    rig.collect()
    mark = len(rig.events)
    rig.advance_board(1.0)  # the host hangs; the board and the HAT run on
    assert rig.board.state()["heartbeats"] == beats
    (drop,) = [e for e in rig.events[mark:] if e["event"] == "rail"]
    assert drop["enabled"] is False and drop["cause"] == "heartbeat_lost"
    assert float(drop["t"]) - (rig.clock() - 1.0) <= RAIL_HOLD_S
    rig.run(0.1)  # it ticks again: the rail comes back by itself, nothing latched
    assert rig.board.rail_enabled and rig.state is State.READY
    assert rig.status()["fault"] is None
    rig.start()  # and a session starts as before
