"""Connecting, the self-test, every start guard and the fault acknowledgement."""

from __future__ import annotations

import datetime as dt
import sqlite3
from contextlib import closing
from typing import Any

import pytest

from drivers.protocol import ChannelCalibration, Info, calibration_crc
from hil.rigs.clock import VirtualClock
from profiles.schema import Mode
from safety.board_kind import REAL_BOARD
from safety.core import BoardConnectError, SafetyCore
from safety.core_events import FaultLatched
from safety.errors import LedgerError, StartRefusedError
from safety.faults import FaultCode
from safety.ledger import LEDGER_FILENAME, Ledger
from safety.limits import HARD_LIMITS, Limits

from .conftest import Rig, make_profile
from .test_core_faults import _fields, _InfoRewritingPort, _TxDroppingPort


def _complete_one(rig: Rig) -> None:
    rig.c.begin_session(make_profile(), "ab" * 32)
    rig.run(200.0, until=lambda evs: any(type(e).__name__ == "SessionFinished" for e in evs))


def test_each_start_guard_gives_its_reason(rig: Rig) -> None:
    core = rig.connect()
    rx = make_profile()
    assert core.start_refusal(rx) == "The pad has not passed its self-test yet."
    assert core.self_test() is None
    assert core.start_refusal(rx) is None
    expired = make_profile(issued=dt.date(2026, 1, 1), expires=dt.date(2026, 11, 1))
    assert "expired on 2026-11-01" in (core.start_refusal(expired) or "")
    future = make_profile(issued=dt.date(2026, 12, 1), expires=dt.date(2027, 2, 1))
    assert "not valid before 2026-12-01" in (core.start_refusal(future) or "")
    too_strong = make_profile(
        channels=(
            {"wavelength_nm": 810, "irradiance_mw_cm2": 40.0},
            {"wavelength_nm": 850, "irradiance_mw_cm2": 40.0},
        )
    )
    assert "outside the pad's limits" in (core.start_refusal(too_strong) or "")
    # The schema refuses these two; the core refuses them too (built without the schema).
    odd_mode = Mode.model_construct(kind="pulsed", pulse_hz=10.5, duty_pct=50.0)
    odd_pulse = make_profile().model_copy(update={"mode": odd_mode})
    assert "whole numbers" in (core.start_refusal(odd_pulse) or "")
    warm = make_profile().model_copy(update={"skin_temp_stop_c": 31.0})  # sim skin ≈ 30.7 °C
    assert "too warm" in (core.start_refusal(warm) or "")
    rig.board.set_contact(False)
    rig.run(0.1)
    assert "no skin contact" in (core.start_refusal(rx) or "")
    with pytest.raises(StartRefusedError, match="no skin contact"):
        core.begin_session(rx, "ab" * 32)
    rig.board.set_contact(True)
    rig.run(0.1)
    core.begin_session(rx, "ab" * 32)
    assert core.start_refusal(rx) == "A session is already running."


@pytest.mark.slow
def test_schedule_and_clock_come_from_the_ledger(rig: Rig) -> None:
    core = rig.ready()
    rx = make_profile()
    assert core.next_start_allowed_at(rx) is None
    _complete_one(rig)
    reason = core.start_refusal(rx)
    assert reason is not None and "20 h after the last one" in reason
    allowed = core.next_start_allowed_at(rx)
    assert allowed is not None
    assert allowed - rig.wall() == pytest.approx(
        dt.timedelta(hours=20), abs=dt.timedelta(seconds=1)
    )
    rig.wall.offset = dt.timedelta(days=-1)  # the RTC-less clock went back
    assert "Set the date and time" in (core.start_refusal(rx) or "")
    rig.wall.offset = dt.timedelta(days=1)  # ahead again, but the monotonic clock knows
    reason = core.start_refusal(rx)
    assert reason is not None and "20 h after the last one" in reason


def test_a_ledger_that_cannot_be_written_refuses_start(rig: Rig) -> None:
    core = rig.ready()
    rig.ledger_storage.full = True  # every write of the core's ledger fails: disk full
    reason = core.start_refusal(make_profile())
    assert reason is not None and reason.startswith("The treatment record cannot be saved")
    assert "the disk is full" in reason
    rig.ledger_storage.full = False
    assert core.start_refusal(make_profile()) is None
    # the write probe passes, but the session's own row cannot be written
    with closing(sqlite3.connect(rig.state_dir / LEDGER_FILENAME)) as conn:
        conn.execute(
            "CREATE TRIGGER no_session BEFORE INSERT ON sessions "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )
    with pytest.raises(StartRefusedError, match="could not save the session start"):
        core.begin_session(make_profile(), "ab" * 32)
    assert core.snapshot().fault is None and not core.snapshot().session_active
    # the storage went away under the running core: its ledger cannot be read either
    rig.ledger_storage.drop_connections()
    reason = core.start_refusal(make_profile())
    assert reason is not None and reason.startswith("The treatment record could not read")
    assert core.next_start_allowed_at(make_profile()) is None


def test_a_disk_below_the_free_space_floor_refuses_start_naming_the_floor(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4 MB card with 3.9 MB free is not full: ``start`` says the floor and what is free."""
    core = rig.ready()
    usage = type("Usage", (), {"free": 3_900_000})()
    monkeypatch.setattr("safety.ledger.shutil.disk_usage", lambda _path: usage)
    reason = core.start_refusal(make_profile())
    assert reason is not None and reason.startswith(
        "The treatment record cannot be saved: less than 4 MiB is free on its disk (3808 KiB); "
        "free some space"
    )
    assert "full" not in reason


def test_a_corrupt_ledger_refuses_start_without_crashing(rig: Rig) -> None:
    rig.state_dir.mkdir(parents=True)
    (rig.state_dir / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    core = rig.connect()
    assert core.self_test() is None
    reason = core.start_refusal(make_profile())
    assert reason is not None and reason.startswith("The treatment record cannot be opened")
    assert core.next_start_allowed_at(make_profile()) is None
    rig.board.inject("skin_overtemp")  # a fault with no ledger is still latched and shown
    rig.run(0.2)
    assert core.snapshot().fault is not None


def test_a_ledger_that_cannot_be_reconciled_refuses_start(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Ledger, checkpoint_interval_s: float = 5.0) -> list[int]:
        raise LedgerError("disk I/O error", path="x")

    monkeypatch.setattr(Ledger, "reconcile_after_crash", broken)
    core = rig.ready()
    assert "cannot be repaired" in (core.start_refusal(make_profile()) or "")


def test_connect_without_a_port_or_with_a_bad_url(rig: Rig, tmp_path: Any) -> None:
    kwargs: dict[str, Any] = {
        "state_dir": tmp_path / "s",
        "clock": VirtualClock(),
        "wall_clock": rig.wall,
        "limits": HARD_LIMITS,
        "rail": rig.rail,
        "board": REAL_BOARD,
    }
    with pytest.raises(BoardConnectError, match="no board"):
        SafetyCore.connect(**kwargs)
    with pytest.raises(BoardConnectError) as info:
        SafetyCore.connect("nosuchscheme://x", **kwargs)
    assert info.value.port == "nosuchscheme://x"
    with pytest.raises(BoardConnectError):
        SafetyCore.connect(str(tmp_path / "no-such-tty"), **kwargs)


def test_board_that_never_answers_the_handshake(rig: Rig) -> None:
    port = _TxDroppingPort(rig.port)
    port.broken = True
    core = rig.connect(port)
    assert [e.code for e in core.poll() if isinstance(e, FaultLatched)] == [
        FaultCode.BOARD_NOT_ANSWERING
    ]


def test_a_board_that_answers_only_after_the_handshake_needs_a_restart(rig: Rig) -> None:
    """No INFO at the handshake: the board's calibration was never read, so no self-test
    can pass in this process, even once the board hears again. Acknowledging must say
    so (restart nirpad), not clear the fault into a self-test that blames the pad's
    calibration."""
    port = _TxDroppingPort(rig.port)
    port.broken = True
    core = rig.connect(port)
    port.broken = False  # the board hears again (it was still booting, say)
    rig.run(0.5)
    assert core.needs_restart
    reason = core.acknowledge_fault()
    assert reason is not None and "restart nirpad" in reason
    fault = core.fault
    assert fault is not None and fault.code is FaultCode.BOARD_NOT_ANSWERING


def test_only_a_fault_no_acknowledgement_clears_needs_a_restart(rig: Rig) -> None:
    core = rig.connect()
    assert not core.needs_restart  # no fault at all
    core.latch_fault(FaultCode.BOARD_NOT_ANSWERING, "one command unanswered")
    assert not core.needs_restart  # the handshake's INFO is there: acknowledging clears it
    rig.board.inject("disconnect")
    rig.run(0.5)
    assert core.needs_restart
    assert "restart nirpad" in (core.acknowledge_fault() or "")


def test_board_disconnected_at_the_handshake(rig: Rig) -> None:
    rig.board.inject("disconnect")
    core = rig.connect()
    assert [e.code for e in core.poll() if isinstance(e, FaultLatched)] == [
        FaultCode.BOARD_DISCONNECTED
    ]
    assert core.tick() == []
    assert core.fileno() is None


def test_self_test_rejects_an_insane_calibration(rig: Rig) -> None:
    def only_810(info: Info) -> Info:
        cal: tuple[ChannelCalibration, ...] = info.calibration[:1]
        return Info(
            **{**_fields(info), "calibration": cal, "calibration_crc": calibration_crc(cal)}
        )

    core = rig.connect(_InfoRewritingPort(rig.port, only_810))
    reason = core.self_test()
    assert reason is not None and "850 nm" in reason
    assert [e.code for e in core.poll() if isinstance(e, FaultLatched)] == [
        FaultCode.SELF_TEST_FAILED
    ]
    rig.run(0.1)
    assert core.snapshot().irradiance_mw_cm2 == {810: 0.0}


def test_self_test_steps_that_fail(rig: Rig) -> None:
    core = rig.connect()
    rig.board.inject("link_drop", duration_ms=2000.0)
    assert core.self_test() == "The pad sends no telemetry."


def test_self_test_needs_outputs_confirmed_off(rig: Rig) -> None:
    port = _TxDroppingPort(rig.port)
    core = rig.connect(port)
    port.broken = True
    reason = core.self_test()
    assert reason is not None and reason.startswith("The pad did not confirm")


def test_self_test_rail_enable_must_reach_the_board(rig: Rig) -> None:
    rig.rewire(lambda enabled: rig.board.set_rail(False))  # stuck low
    core = rig.connect()
    reason = core.self_test()
    assert reason is not None and reason.startswith("Enabling the LED power line")
    assert not rig.rail.enabled


def test_self_test_rail_that_cannot_be_switched(rig: Rig) -> None:
    def refuse(enabled: bool) -> None:
        if enabled:
            raise OSError("read-only file system")

    rig.rail.add_listener(refuse)
    core = rig.connect()
    reason = core.self_test()
    assert reason is not None and "cannot be switched" in reason


def test_self_test_refused_during_a_session_or_with_a_fault(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    assert core.self_test() == "A session is running; the self-test runs only between sessions."
    assert core.snapshot().fault is not None  # refusing the self-test latched it
    assert "Acknowledge the fault first" in (core.self_test() or "")


def test_disconnect_during_the_self_test(rig: Rig) -> None:
    core = rig.connect()
    rig.board.inject("disconnect")
    assert core.self_test() is not None
    fault = core.snapshot().fault
    assert fault is not None and fault.code is FaultCode.BOARD_DISCONNECTED


def test_acknowledge_clears_only_when_the_cause_is_gone(rig: Rig) -> None:
    port = _TxDroppingPort(rig.port)  # a transmit line that will break for a while
    core = rig.connect(port)
    assert core.self_test() is None
    rig.events += core.poll()
    assert core.acknowledge_fault() is None  # nothing latched
    rig.board.inject("skin_overtemp")
    rig.run(0.2)
    assert core.acknowledge_fault() == "the cause is still present: skin_overtemp"
    rig.board.clear_injections()
    rig.run(0.2)
    port.broken = True  # the board does not hear CLEAR_FAULTS
    reason = core.acknowledge_fault()
    assert reason is not None and reason.startswith("The pad did not accept the reset")
    port.broken = False
    rig.run(0.1)
    assert core.acknowledge_fault() is None
    assert core.snapshot().fault is None
    assert core.start_refusal(make_profile()) == "The pad has not passed its self-test yet."
    assert core.self_test() is None
    assert core.start_refusal(make_profile()) is None


def test_acknowledge_with_the_board_gone(rig: Rig) -> None:
    core = rig.ready()
    rig.board.inject("skin_overtemp")
    rig.run(0.2)
    rig.board.clear_injections()
    rig.run(0.2)
    rig.board.inject("disconnect")
    reason = core.acknowledge_fault()
    assert reason is not None and "disconnected" in reason


def test_site_limits_are_used(rig: Rig) -> None:
    rig.limits = Limits(irradiance_max_mw_cm2=40.0)
    core = rig.ready()
    assert "outside the pad's limits" in (core.start_refusal(make_profile()) or "")


def test_bad_url_with_a_corrupt_ledger_still_raises_cleanly(rig: Rig) -> None:
    rig.state_dir.mkdir(parents=True)
    (rig.state_dir / "ledger.sqlite3").write_bytes(b"garbage" * 200)
    with pytest.raises(BoardConnectError):
        SafetyCore.connect(
            "nosuchscheme://x",
            state_dir=rig.state_dir,
            clock=rig.clock,
            wall_clock=rig.wall,
            limits=HARD_LIMITS,
            rail=rig.rail,
            board=REAL_BOARD,
        )


class _FailingPort:
    """A port that dies: writes and/or waits raise OSError once ``dead`` is set."""

    def __init__(self, inner: Any, *, writes: bool, waits: bool) -> None:
        self.inner, self.writes, self.waits, self.dead = inner, writes, waits, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> int:
        if self.dead and self.writes:
            raise OSError(5, "Input/output error")
        return int(self.inner.write(data))

    def wait_readable(self, timeout_s: float) -> bool:
        if self.dead and self.waits:
            raise OSError(5, "Input/output error")
        return bool(self.inner.wait_readable(timeout_s))


def test_a_port_that_fails_while_waiting_is_a_disconnect(rig: Rig) -> None:
    port = _FailingPort(rig.port, writes=False, waits=True)
    core = rig.connect(port)
    core.poll()  # the handshake's backlog
    port.dead = True
    assert core.wait_readable(0.02) is False
    fault = core.snapshot().fault
    assert fault is not None and fault.code is FaultCode.BOARD_DISCONNECTED
    assert not rig.rail.enabled


def test_a_port_that_fails_on_the_self_tests_off_command(rig: Rig) -> None:
    port = _FailingPort(rig.port, writes=True, waits=False)
    core = rig.connect(port)
    port.dead = True
    reason = core.self_test()
    assert reason is not None and "disconnected" in reason
    fault = core.snapshot().fault
    assert fault is not None and fault.code is FaultCode.BOARD_DISCONNECTED


def test_self_test_rail_cut_must_reach_the_board(rig: Rig) -> None:
    rig.rewire(lambda enabled: rig.board.set_rail(True))  # shorted high
    core = rig.connect()
    reason = core.self_test()
    assert reason is not None and reason.startswith("Cutting the LED power line")


def test_the_interlock_still_refuses_what_the_start_guard_missed(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safety.start_guards

    rig.limits = Limits(irradiance_max_mw_cm2=40.0)
    core = rig.ready()
    monkeypatch.setattr(safety.start_guards, "check_profile", lambda rx, limits: [])
    with pytest.raises(StartRefusedError, match="refused this prescription"):
        core.begin_session(make_profile(), "ab" * 32)
    fault = core.snapshot().fault
    assert fault is not None and fault.code is FaultCode.INTERLOCK_REFUSED
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
    assert session.fault_code == FaultCode.INTERLOCK_REFUSED


def test_a_prescription_for_a_channel_the_board_lacks() -> None:
    from hil.sim.physics import CALIBRATION
    from safety.calibration import Calibration
    from safety.plan import plan_from_profile

    rx = make_profile(channels=({"wavelength_nm": 850, "irradiance_mw_cm2": 30.0},))
    assert plan_from_profile(rx, Calibration(CALIBRATION)).channels[0].channel == 1
    with pytest.raises(StartRefusedError, match="no 850 nm channel"):
        plan_from_profile(rx, Calibration(CALIBRATION[:1]))


def test_snapshot_with_an_unusable_table_shows_unknown_irradiance(rig: Rig) -> None:
    def one_point(info: Info) -> Info:
        bad = ChannelCalibration(850, 700.0, info.calibration[1].points[:1])
        cal = (info.calibration[0], bad)
        return Info(
            **{**_fields(info), "calibration": cal, "calibration_crc": calibration_crc(cal)}
        )

    core = rig.connect(_InfoRewritingPort(rig.port, one_point))
    assert core.self_test() is not None
    rig.run(0.1)
    assert core.snapshot().irradiance_mw_cm2 == {810: 0.0, 850: float("inf")}
