"""The board watch: stale telemetry with one tick's grace after a host stall, the rail
reported off while enabled, a board fault held for the next frame to name."""

from __future__ import annotations

from safety.board_watch import (
    BOARD_FAULT_NAMING_S,
    HOST_STALL_S,
    RAIL_LOST_S,
    BoardWatch,
    Staleness,
)

STALE_S = 0.1


def test_stale_after_the_limit_never_once_lost() -> None:
    watch = BoardWatch(1000.0, STALE_S)
    assert not watch.is_stale(1000.099)
    assert watch.is_stale(1000.11)
    assert round(watch.age_s(1000.11) * 1000) == 110
    watch.lost = True
    assert not watch.is_stale(1010.0)


def test_the_last_frame_is_current_only_while_fresh_and_the_board_is_there() -> None:
    watch = BoardWatch(1000.0, STALE_S)
    assert watch.current_telemetry(1000.0) is None  # no frame yet
    frame = object()
    watch.on_frame(frame, 1000.0)  # type: ignore[arg-type]  # only kept and handed back
    assert watch.current_telemetry(1000.099) is frame
    assert watch.current_telemetry(1000.11) is None  # silent past the limit: not "now"
    watch.on_frame(frame, 1000.2)  # type: ignore[arg-type]
    watch.lost = True
    assert watch.current_telemetry(1000.2) is None
    assert watch.last_telemetry is frame  # kept for what is judged from it


def test_a_stall_of_this_host_defers_the_verdict_one_tick_only() -> None:
    watch = BoardWatch(1000.0, STALE_S)
    watch.last_tick_s = 1000.0
    now_s = 1000.0 + HOST_STALL_S + 0.2  # this host stood still
    assert watch.staleness(now_s, may_defer=True) is Staleness.HOLD
    assert watch.staleness(now_s + 0.02, may_defer=True) is Staleness.STALE  # never twice


def test_no_deferral_once_a_fault_is_latched_or_without_a_stall() -> None:
    watch = BoardWatch(1000.0, STALE_S)
    watch.last_tick_s = 1000.0
    assert watch.staleness(1000.5, may_defer=False) is Staleness.STALE
    watch = BoardWatch(1000.0, STALE_S)
    watch.last_tick_s = 1000.2  # ticking normally, the frames stopped
    assert watch.staleness(1000.21, may_defer=True) is Staleness.STALE


def test_frames_coming_back_make_it_fresh_and_rearm_the_grace() -> None:
    watch = BoardWatch(1000.0, STALE_S)
    watch.last_tick_s = 999.0
    assert watch.staleness(1000.5, may_defer=True) is Staleness.HOLD
    watch.on_frame(object(), 1000.52)  # type: ignore[arg-type]  # only the time is read
    assert watch.frames_seen == 1
    assert watch.staleness(1000.53, may_defer=True) is Staleness.FRESH
    assert watch.staleness(1001.6, may_defer=True) is Staleness.HOLD


def test_rail_lost_only_after_the_hold_while_enabled() -> None:
    watch = BoardWatch(0.0, STALE_S)
    assert not watch.rail_lost(False, True, 10.0)
    assert not watch.rail_lost(False, True, 10.0 + RAIL_LOST_S)
    assert watch.rail_lost(False, True, 10.01 + RAIL_LOST_S)
    assert not watch.rail_lost(False, False, 20.0)  # cut by the host: not lost
    assert not watch.rail_lost(True, True, 30.0)


def test_a_board_fault_waits_for_the_next_frame_to_name_it() -> None:
    watch = BoardWatch(0.0, STALE_S)
    watch.hold_board_fault(5.0, "board event BOARD_FAULT (0x0080)")
    watch.hold_board_fault(5.01, "board event MAX_ON_TIME (0x0008)")  # the first is kept
    assert watch.board_fault_held
    assert watch.unnamed_board_fault(5.0 + BOARD_FAULT_NAMING_S - 0.01) is None
    assert watch.unnamed_board_fault(5.05) == "board event BOARD_FAULT (0x0080)"
    watch.clear_board_fault()
    assert not watch.board_fault_held and watch.unnamed_board_fault(9.0) is None
