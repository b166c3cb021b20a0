"""A wall clock that jumps ahead cannot shorten an interval; a caregiver can recover.

While the controller runs, time since the last session is the smaller of the wall and
the monotonic elapsed times. A jump of more than a few minutes is recorded once and
shown. A clock once set far ahead (the device then locked out by "the clock reads ...
before the last record") is recovered by a caregiver's confirmation, which never
shortens an interval: the next start waits a full interval from the confirmation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from hil.rigs.clock import VirtualClock
from hil.sim.inprocess import SimPort
from safety.core_events import SafetyWarning
from safety.errors import LedgerError
from safety.faults import Outcome, WarningCode
from safety.ledger_events import EventKind
from safety.trusted_clock import JUMP_RECORD_S, TrustedClock

from .conftest import Rig, make_profile

HOUR_S = 3600.0


class Clocks:
    """A monotonic clock and a wall clock that can also jump on its own."""

    def __init__(self) -> None:
        self.mono_s = 100.0
        self.wall = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)

    def mono(self) -> float:
        return self.mono_s

    def now(self) -> dt.datetime:
        return self.wall

    def pass_s(self, seconds: float) -> None:
        self.mono_s += seconds
        self.wall += dt.timedelta(seconds=seconds)


def test_trusted_time_never_runs_ahead_of_the_monotonic_clock() -> None:
    clocks = Clocks()
    trusted = TrustedClock(clocks.now, clocks.mono)
    start_s = trusted.now_s()
    clocks.pass_s(60.0)
    assert trusted.now_s() == start_s + 60.0 and trusted.ahead_s == 0.0
    clocks.wall += dt.timedelta(hours=20)  # the wall clock alone jumps ahead
    assert trusted.now_s() == start_s + 60.0
    assert trusted.ahead_s == 20 * HOUR_S and trusted.jumped
    assert trusted.newly_jumped() and not trusted.newly_jumped()  # recorded once
    clocks.pass_s(30.0)
    assert trusted.now_s() == start_s + 90.0


def test_a_wall_clock_that_goes_back_is_followed_at_once() -> None:
    clocks = Clocks()
    trusted = TrustedClock(clocks.now, clocks.mono)
    start_s = trusted.now_s()
    clocks.wall -= dt.timedelta(hours=3)
    assert trusted.now_s() == start_s - 3 * HOUR_S and not trusted.jumped


def test_a_small_difference_is_not_a_jump_and_a_confirmation_trusts_the_wall() -> None:
    clocks = Clocks()
    trusted = TrustedClock(clocks.now, clocks.mono)
    clocks.wall += dt.timedelta(seconds=JUMP_RECORD_S - 1)
    trusted.now_s()
    assert not trusted.jumped and not trusted.newly_jumped()
    clocks.wall += dt.timedelta(hours=5)
    trusted.now_s()
    assert trusted.jumped
    trusted.confirm()
    assert trusted.now_s() == clocks.wall.timestamp() and not trusted.jumped


# -- the safety core: the interval rule while the controller runs ---------------------


@pytest.fixture
def idle_rig(rig: Rig) -> Iterator[Rig]:
    """The rig with an uptime clock: ``idle(h)`` lets hours pass without simulating them."""
    skipped = {"s": 0.0}
    clock: VirtualClock = rig.clock
    rig.uptime_clock = lambda: clock() + skipped["s"]

    def idle(hours: float) -> None:
        skipped["s"] += hours * HOUR_S
        rig.wall.offset += dt.timedelta(hours=hours)

    rig.idle = idle  # type: ignore[attr-defined]
    yield rig


def test_a_jump_ahead_while_running_does_not_shorten_the_interval(idle_rig: Rig) -> None:
    rig = idle_rig
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)  # some light: the session counts
    core.end_session(Outcome.STOPPED)
    rig.wall.offset += dt.timedelta(hours=20)  # the wall clock alone jumps ahead
    reason = core.start_refusal(make_profile())
    assert reason is not None and "20 h after the last one" in reason
    got = rig.run(11.0)  # the tick looks at the clock every 10 s
    assert [e.code for e in got if isinstance(e, SafetyWarning)] == [WarningCode.CLOCK_JUMP]
    assert WarningCode.CLOCK_JUMP in [w.code for w in core.snapshot().warnings]
    with rig.ledger() as ledger:
        (event,) = ledger.events()
    assert event.kind == EventKind.CLOCK_JUMP and "20.00 h ahead" in event.detail
    rig.idle(20.0)  # 20 real hours pass: the recorded jump still waits for a caregiver
    reason = core.start_refusal(make_profile())
    assert reason is not None and "nirpad clock confirm" in reason
    assert core.confirm_clock("caregiver", rig.wall()) is None
    assert WarningCode.CLOCK_JUMP not in [w.code for w in core.snapshot().warnings]
    reason = core.start_refusal(make_profile())
    assert reason is not None and "20 h after the clock was confirmed" in reason
    rig.idle(20.0)
    assert core.start_refusal(make_profile()) is None


def test_a_recorded_jump_is_not_forgotten_by_a_restart(idle_rig: Rig) -> None:
    rig = idle_rig
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)
    core.end_session(Outcome.STOPPED)
    rig.wall.offset += dt.timedelta(hours=20)
    rig.run(11.0)  # recorded
    core.close()  # a power cycle: the new process trusts the wall clock it finds
    rig.core, rig.port = None, SimPort(rig.board, rig.clock)
    core = rig.ready()
    reason = core.start_refusal(make_profile())
    assert reason is not None and "nirpad clock confirm" in reason


def test_a_confirmation_must_state_the_time_the_clock_shows(rig: Rig) -> None:
    core = rig.ready()
    wrong = rig.wall() - dt.timedelta(hours=5)
    reason = core.confirm_clock("caregiver", wrong)
    assert reason is not None and "Set the clock to the right date and time first" in reason
    assert core.confirm_clock("caregiver", rig.wall() + dt.timedelta(seconds=90)) is None


def test_seven_jumps_cannot_give_seven_sessions(idle_rig: Rig) -> None:
    rig = idle_rig
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    rig.run(2.0)
    core.end_session(Outcome.STOPPED)
    for _ in range(6):
        rig.wall.offset += dt.timedelta(hours=21)
        assert core.start_refusal(make_profile()) is not None
    with rig.ledger() as ledger:
        assert len(ledger.sessions()) == 1


def test_a_clock_set_far_ahead_is_recovered_without_shortening_the_interval(
    idle_rig: Rig,
) -> None:
    rig = idle_rig
    rx = make_profile(expires=dt.date(2028, 6, 1))
    rig.wall.offset = dt.timedelta(days=365)  # the clock was set a year ahead, then used
    core = rig.ready()
    core.begin_session(rx, "ab" * 32)
    rig.run(2.0)
    core.end_session(Outcome.STOPPED)
    core.close()  # the controller restarts (a new port onto the same board)
    rig.core, rig.port = None, SimPort(rig.board, rig.clock)
    rig.wall.offset = dt.timedelta(hours=30)  # set right again, a day later: locked out
    core = rig.ready()
    assert "before the last record" in (core.start_refusal(rx) or "")
    assert core.confirm_clock("caregiver", rig.wall()) is None
    reason = core.start_refusal(rx)
    assert reason is not None and "20 h after the clock was confirmed" in reason  # a full interval
    rig.wall.offset += dt.timedelta(hours=19)  # the wall alone moving does not help
    assert core.start_refusal(rx) is not None
    rig.idle(20.0)
    assert core.start_refusal(rx) is None
    with rig.ledger() as ledger:
        kinds = [e.kind for e in ledger.events()]
    assert kinds[0] == EventKind.CLOCK_CONFIRMED


def test_the_clock_cannot_be_confirmed_during_a_session(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    assert "no session is running" in (core.confirm_clock("caregiver", rig.wall()) or "")


def test_a_lost_record_is_reset_by_a_caregiver_and_waits_a_full_interval(rig: Rig) -> None:
    core = rig.ready()
    assert "nothing to reset" in (core.reset_ledger("caregiver") or "")
    with rig.ledger() as ledger:
        ledger.record_event(EventKind.LEDGER_LOST, "test: the record was lost")
    reason = core.start_refusal(make_profile())
    assert reason is not None and "nirpad ledger reset" in reason
    assert core.reset_ledger("caregiver") is None
    reason = core.start_refusal(make_profile())
    assert reason is not None and "20 h after the record was reset" in reason


def test_the_record_cannot_be_reset_during_a_session(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(), "ab" * 32)
    assert "no session is running" in (core.reset_ledger("caregiver") or "")


def test_confirm_and_reset_say_why_when_the_record_cannot_take_them(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = rig.ready()
    rig.ledger_storage.full = True  # every write of the core's ledger fails: disk full
    assert "the disk is full" in (core.confirm_clock("caregiver", rig.wall()) or "")
    rig.ledger_storage.full = False
    with rig.ledger() as ledger:
        ledger.record_event(EventKind.LEDGER_LOST, "test")

    def full(*args: object) -> None:
        raise LedgerError("The treatment record could not save it: the disk is full.", path="")

    monkeypatch.setattr("safety.ledger_handle.reset_ledger", full)
    reason = core.reset_ledger("caregiver")
    assert reason is not None and reason.startswith("The treatment record cannot be reset")
    assert core.confirm_clock("caregiver", rig.wall()) == reason  # no record: it says so
    assert core.start_refusal(make_profile()) == reason


def test_a_damaged_record_with_no_backup_is_reset_from_the_running_controller(rig: Rig) -> None:
    rig.state_dir.mkdir(parents=True)
    (rig.state_dir / "ledger.sqlite3").write_bytes(b"garbage" * 2000)
    core = rig.ready()
    reason = core.start_refusal(make_profile())
    assert reason is not None and "nirpad ledger reset" in reason
    assert core.reset_ledger("caregiver") is None
    reason = core.start_refusal(make_profile())
    assert reason is not None and "20 h after the record was reset" in reason
    assert len(list(rig.state_dir.glob("ledger.sqlite3.damaged-*"))) == 1
