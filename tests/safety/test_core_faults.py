"""Every fault the safety core produces, made to happen on the in-process simulator.

Each test starts a real session, causes one fault the way it would happen in the field
(a simulator injection, a broken wire, a failing disk) and checks the promise of
DESIGN.md §7: the simulated board's outputs are off, the fault is latched and shown
in the snapshot, a fault row is in the ledger, the session is closed as FAULT with
that code, and no more than the plan was counted or delivered.
"""

from __future__ import annotations

import ast
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from drivers.protocol import (
    Ack,
    ChannelTelemetry,
    Event,
    EventKind,
    FrameDecoder,
    Info,
    Message,
    Telemetry,
    calibration_crc,
    encode_frame,
)
from hil.rigs.ledger_storage import LedgerStorage
from safety.core_events import ContactLost, FaultLatched, SafetyEvent
from safety.core_session import ActiveSession
from safety.fault_latch import LEDGER_RETRY_S, is_critical
from safety.faults import FaultCode, Outcome

from .conftest import BoardFramePort, Rig, make_profile


def _latched(events: list[SafetyEvent]) -> bool:
    return any(isinstance(e, FaultLatched) for e in events)


def _start(rig: Rig, seconds: float = 6.0, transport: Any = None) -> None:
    core = rig.ready(transport)
    rx = make_profile()
    core.begin_session(rx, "ab" * 32)
    rig.run(seconds)
    assert rig.board.state()["outputs_on"], "the session should be emitting before the fault"


def _assert_faulted(rig: Rig, code: FaultCode, *, rail_cut: bool | None = None) -> None:
    rig.run(0.3)  # the board has had time to obey (and a lease to run out)
    state = rig.board.state()
    assert state["outputs_on"] is False
    assert max(state["irradiance_mw_cm2"]) == 0.0  # type: ignore[call-overload]
    snap = rig.c.snapshot()
    assert snap.fault is not None and snap.fault.code is code, snap.fault
    assert not snap.session_active
    assert [e.code for e in rig.events if isinstance(e, FaultLatched)] == [code]
    expect_cut = is_critical(code) if rail_cut is None else rail_cut
    assert rig.rail.enabled is not expect_cut
    assert state["rail_enabled"] is not expect_cut
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
        assert session.outcome is Outcome.FAULT
        assert session.fault_code == code
        assert session.delivered_fluence_total_j_cm2 <= session.planned_fluence_total_j_cm2
        assert session.delivered_fluence_total_j_cm2 > 0
        assert [f.code for f in ledger.faults()] == [code]
    truth = state["delivered_fluence_j_cm2"]
    assert sum(truth) <= snap.planned_total_j_cm2 * 1.05  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("injection", "params", "code"),
    [
        ("skin_overtemp", {}, FaultCode.SKIN_OVERTEMP),
        ("board_overtemp", {}, FaultCode.BOARD_OVERTEMP),
        ("ntc_open", {"sensor": "skin_b"}, FaultCode.SENSOR_OPEN),
        ("ntc_short", {"sensor": "skin_a"}, FaultCode.SENSOR_SHORT),
        ("led_open", {"channel": 0}, FaultCode.BOARD_FAULT),  # the board flags it first
        ("led_short", {"channel": 0}, FaultCode.BOARD_FAULT),
        ("brownout", {}, FaultCode.BOARD_RESET),
        ("link_drop", {"duration_ms": 400.0}, FaultCode.TELEMETRY_STALE),
        # 45 mW/cm²: +15 % current is about 50.8 measured, over 50 + 1 %; -15 %, 13 % low
        ("current_gain", {"percent": 15.0}, FaultCode.IRRADIANCE_OVER_LIMIT),
        ("current_gain", {"percent": -15.0}, FaultCode.IRRADIANCE_MISMATCH),
    ],
)
def test_simulator_fault_ends_the_session_safely(
    rig: Rig, injection: str, params: dict[str, Any], code: FaultCode
) -> None:
    _start(rig)
    rig.board.inject(injection, **params)
    rig.run(2.0, until=_latched)
    _assert_faulted(rig, code)


def test_disconnected_board_latches_and_cuts_the_rail(rig: Rig) -> None:
    _start(rig)
    shown = rig.c.snapshot()
    assert shown.irradiance_mw_cm2[810] > 10 and shown.contact and shown.skin_temp_c
    rig.board.inject("disconnect")
    rig.run(1.0, until=_latched)
    _assert_faulted(rig, FaultCode.BOARD_DISCONNECTED, rail_cut=True)
    assert rig.c.wait_readable(0.1) is False  # a lost board never blocks the loop
    assert rig.c.fileno() is None
    assert "then restart nirpad" in (rig.c.fault_clear_refusal() or "")
    assert rig.c.acknowledge_fault() is not None
    gone = rig.c.snapshot()  # no light level, temperature or contact of before as now
    assert (gone.irradiance_mw_cm2, gone.skin_temp_c, gone.board_temp_c) == ({}, None, None)
    assert gone.contact is None  # not known, neither on the skin nor off it


def test_stuck_on_output_cuts_the_rail_and_the_light_stops(rig: Rig) -> None:
    _start(rig)
    rig.board.inject("stuck_on")
    rig.board.pop_events()
    rig.c.pause("patient pressed the button")
    rig.run(1.0, until=_latched)
    changes = [e for e in rig.board.pop_events() if e["event"] in ("output", "rail")]
    assert [(e["event"], e.get("on", e.get("enabled"))) for e in changes] == [
        ("rail", False),
        ("output", False),
    ]
    _assert_faulted(rig, FaultCode.STUCK_ON, rail_cut=True)


def test_stuck_on_is_found_again_by_the_self_test_after_acknowledgement(rig: Rig) -> None:
    _start(rig)
    assert rig.c.fault_clear_refusal() is None  # nothing latched
    rig.board.inject("stuck_on")
    rig.c.pause("button")
    rig.run(1.0, until=_latched)
    assert rig.c.fault_clear_refusal() == "the cause is still present: stuck_on"  # as a status
    assert rig.c.acknowledge_fault() == "the cause is still present: stuck_on"
    rig.run(0.3)
    assert rig.c.fault_clear_refusal() is None
    assert rig.c.acknowledge_fault() is None  # with the rail cut the cause is invisible...
    reason = rig.c.self_test()  # ...until the self-test powers the rail again
    assert reason is not None and "emitted light" in reason
    rig.run(0.2)
    assert rig.board.state()["outputs_on"] is False
    assert not rig.rail.enabled
    assert rig.c.snapshot().fault is not None


def test_a_stuck_driver_found_after_another_fault_is_in_the_record_too(rig: Rig) -> None:
    _start(rig)
    rig.board.inject("stuck_on")  # frozen at its setpoint: nothing to see while commanded
    rig.board.inject("ntc_open", sensor="skin_a")  # the first fault: the serial OFF suffices
    rig.run(1.0)
    assert rig.c.fault is not None and rig.c.fault.code is FaultCode.SENSOR_OPEN
    assert not rig.rail.enabled  # the driver ignored the OFF: the rail is cut
    assert rig.board.state()["outputs_on"] is False
    with rig.ledger() as ledger:
        rows = sorted(ledger.faults(), key=lambda f: f.id)
    assert [f.code for f in rows] == [FaultCode.SENSOR_OPEN, FaultCode.STUCK_ON]
    assert rows[1].session_id is None and "while sensor_open was latched" in rows[1].message


def test_output_that_stops_following_the_ramp_is_a_mismatch(rig: Rig) -> None:
    core = rig.ready()
    core.begin_session(make_profile(ramp_s=20.0), "ab" * 32)
    rig.run(2.0)
    rig.board.inject("stuck_on")  # the driver freezes at the current ramp step
    rig.run(3.0, until=_latched)
    _assert_faulted(rig, FaultCode.IRRADIANCE_MISMATCH)


class _TxDroppingPort:
    """A serial port whose transmit line broke: the board still talks, never hears."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.broken = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> int:
        return len(data) if self.broken else int(self.inner.write(data))


def test_board_that_stops_answering_while_treating(rig: Rig) -> None:
    port = _TxDroppingPort(rig.port)
    core = rig.connect(port)
    assert core.self_test() is None
    core.begin_session(make_profile(), "cd" * 32)
    rig.run(6.0)
    port.broken = True
    rig.run(1.0, until=_latched)
    _assert_faulted(rig, FaultCode.BOARD_NOT_ANSWERING)


def test_acks_for_commands_never_sent_do_not_hide_a_board_that_stopped_hearing(
    rig: Rig,
) -> None:
    """A board that no longer hears the host but sends an ACK with every frame, each for
    a command the host never sent: still a board that does not answer."""
    frames = BoardFramePort(rig.port)
    port = _TxDroppingPort(frames)
    core = rig.connect(port)
    assert core.self_test() is None
    core.begin_session(make_profile(), "cd" * 32)
    rig.run(6.0)
    bogus = iter(range(40000, 50000))

    def with_a_bogus_ack(message: Message) -> Message:
        if isinstance(message, Telemetry):
            frames.send(Ack(next(bogus)))
        return message

    frames.alter = with_a_bogus_ack
    port.broken = True
    rig.run(1.0, until=_latched)
    frames.alter = lambda message: message
    _assert_faulted(rig, FaultCode.BOARD_NOT_ANSWERING)


def test_board_that_does_not_acknowledge_off_times_out(rig: Rig) -> None:
    port = _TxDroppingPort(rig.port)
    core = rig.connect(port)
    assert core.self_test() is None
    core.begin_session(make_profile(), "cd" * 32)
    rig.run(6.0)
    port.broken = True
    rig.board.set_contact(False)  # the board stops; the host pauses and sends one OFF
    rig.run(1.0, until=_latched)
    assert any(isinstance(e, ContactLost) for e in rig.events)
    _assert_faulted(rig, FaultCode.BOARD_NOT_ANSWERING)


def test_interlock_refusal_mid_session(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    _start(rig)
    monkeypatch.setattr(ActiveSession, "setpoint_mw_cm2", lambda self: {0: 60.0})  # a bug
    rig.run(0.1, until=_latched)
    _assert_faulted(rig, FaultCode.INTERLOCK_REFUSED)


def test_an_interlock_refusal_says_so_in_the_fault_and_the_record(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    _start(rig)
    monkeypatch.setattr(ActiveSession, "setpoint_mw_cm2", lambda self: {0: 60.0})  # a bug
    rig.run(0.1, until=_latched)
    fault = rig.c.fault
    assert fault is not None and "(interlock refused: channel 0: 60.000" in fault.message
    with rig.ledger() as ledger:
        (row,) = ledger.faults()
    assert row.message.startswith("interlock refused: channel 0: 60.000")


def test_ledger_write_failure_mid_session(rig: Rig) -> None:
    _start(rig, seconds=2.0)
    disk = _fill_disk(rig)  # the next checkpoint cannot be written
    rig.run(6.0, until=_latched)
    disk.full = False  # room again: the kept fault row and session end are written
    rig.run(LEDGER_RETRY_S + 0.1)
    _assert_faulted(rig, FaultCode.LEDGER_WRITE_FAILED)


def test_host_that_stops_renewing_while_treating_latches_lease_expired(rig: Rig) -> None:
    """F29 in-process: the host hangs (no poll, no tick) while the board's lease runs out."""
    _start(rig)
    rig.clock.advance(0.3)  # hung: the board turns off at its lease and says so
    rig.board.advance_to(rig.clock())
    assert rig.board.state()["outputs_on"] is False
    rig.board.pop_events()
    rig.run(0.2, until=_latched)  # awake again: the EVENT is handled before any renewal
    _assert_faulted(rig, FaultCode.LEASE_EXPIRED)  # critical: the rail is cut too
    fault = rig.c.snapshot().fault
    assert fault is not None and "stopped renewing" in fault.message
    assert not [e for e in rig.board.pop_events() if e["event"] == "output" and e["on"]]


def test_a_lease_that_runs_out_when_not_treating_is_no_fault(rig: Rig) -> None:
    port = BoardFramePort(rig.port)
    _start(rig, transport=port)
    rig.c.pause("patient pressed the button")
    port.send(Event(0, EventKind.LEASE_EXPIRED, 0))  # e.g. one in flight at the pause
    assert not _latched(rig.c.poll())
    rig.c.end_session(Outcome.STOPPED)
    port.send(Event(0, EventKind.LEASE_EXPIRED, 0))
    assert not _latched(rig.c.poll() + rig.c.tick())
    assert rig.c.snapshot().fault is None


def test_the_controllers_own_fault_takes_the_same_path(rig: Rig) -> None:
    _start(rig)
    rig.c.latch_fault(FaultCode.CONTROLLER_ERROR, "a bug in the state machine")
    rig.events += rig.c.poll()
    _assert_faulted(rig, FaultCode.CONTROLLER_ERROR)


def _fill_disk(rig: Rig) -> LedgerStorage:
    """The disk under the core's ledger is full (``full = False`` gives it room again)."""
    rig.ledger_storage.full = True
    return rig.ledger_storage


def test_a_fault_on_a_full_disk_reaches_the_ledger_once_it_has_room(rig: Rig) -> None:
    """F31: the fault row and the session's end wait in memory (the dose counted at the
    fault, never less); the fault cannot be acknowledged until they are written."""
    _start(rig, seconds=2.0)
    disk = _fill_disk(rig)
    rig.board.inject("skin_overtemp")
    rig.run(1.0, until=_latched)
    counted = rig.c.snapshot().delivered_total_j_cm2
    rig.board.clear_injections()
    rig.run(2.5)  # ticks try again (every LEDGER_RETRY_S): still full
    shown = rig.c.fault_clear_refusal()
    assert shown is not None and "2 record(s) are not written yet" in shown
    reason = rig.c.acknowledge_fault()
    assert reason is not None and "cannot be cleared until the treatment record" in reason
    assert "disk is full" in reason
    assert rig.c.self_test() is not None  # a fault is latched: no self-test either
    with rig.ledger() as ledger:
        (open_session,) = ledger.sessions()
        assert open_session.outcome is None and ledger.faults() == []
    disk.full = False
    assert rig.c.fault_clear_refusal() == shown  # a status only reads: nothing written
    with rig.ledger() as ledger:
        assert ledger.faults() == []
    rig.run(LEDGER_RETRY_S + 0.1)  # the next retry on a tick writes them
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
        (fault,) = ledger.faults()
    assert session.outcome is Outcome.FAULT and session.fault_code == FaultCode.SKIN_OVERTEMP
    assert session.delivered_fluence_total_j_cm2 == pytest.approx(counted)
    assert fault.code == FaultCode.SKIN_OVERTEMP and "recorded late" in fault.message
    assert fault.session_id == session.id
    assert rig.c.acknowledge_fault() is None
    assert rig.board.state()["outputs_on"] is False


def test_an_end_kept_on_a_full_disk_is_recorded_at_the_time_the_light_went_off(
    rig: Rig,
) -> None:
    """The session's end and its fault row, written once the disk has room, carry the
    wall-clock time of the fault (when the light went off), not that of the write."""
    _start(rig, seconds=2.0)
    disk = _fill_disk(rig)
    rig.run(6.0, until=_latched)  # the checkpoint at 5 s fails: fault, light off
    light_off_at = rig.wall()
    rig.run(30.0)  # full for a while: every retry refused
    disk.full = False
    rig.run(LEDGER_RETRY_S + 0.1)
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
        (fault,) = ledger.faults()
    assert session.outcome is Outcome.FAULT
    assert session.ended_at == light_off_at  # not 30 s later, when it was written
    assert fault.at == light_off_at and "recorded late" in fault.message


@pytest.mark.parametrize("jump_h", [-1.0, 3.0], ids=["set-back", "jumped-ahead"])
def test_an_end_kept_on_a_full_disk_keeps_its_time_when_the_clock_moves(
    rig: Rig, jump_h: float
) -> None:
    """The wall clock set back or jumped ahead while the end waits for room: the end is
    still the time the light went off (read when the end was decided), never before
    the session's start."""
    _start(rig, seconds=2.0)
    disk = _fill_disk(rig)
    rig.run(6.0, until=_latched)
    light_off_at = rig.wall()
    rig.wall.offset = timedelta(hours=jump_h)
    rig.run(2.0)
    disk.full = False
    rig.run(LEDGER_RETRY_S + 0.1)
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
    assert session.ended_at == light_off_at
    assert session.ended_at > session.started_at


def test_light_after_the_close_waits_for_room_and_then_raises_the_closed_row(
    rig: Rig,
) -> None:
    """A driver that ignores the OFF at a stop, on a full disk: the rail is cut first
    (``stuck_on``, the fault of that session), and the light until the cut waits in
    memory with the fault row, and raises the closed row once there is room."""
    _start(rig, seconds=2.0)
    rig.board.inject("stuck_on")
    rig.run(0.05)
    rig.c.end_session(Outcome.STOPPED)  # the row closes: the disk still had room
    with rig.ledger() as ledger:
        closed_j_cm2 = ledger.sessions()[0].delivered_fluence_total_j_cm2
    disk = _fill_disk(rig)
    rig.run(0.5)
    fault = rig.c.fault
    assert fault is not None and fault.code is FaultCode.STUCK_ON
    assert rig.rail.enabled is False and rig.board.state()["outputs_on"] is False
    counted = rig.c.snapshot().delivered_total_j_cm2
    assert counted > closed_j_cm2
    disk.full = False
    rig.run(LEDGER_RETRY_S + 0.1)
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
        (fault_row,) = ledger.faults()
    assert session.outcome is Outcome.STOPPED
    assert session.delivered_fluence_total_j_cm2 >= counted  # with the reserve for a crash
    assert (fault_row.code, fault_row.session_id) == (FaultCode.STUCK_ON, session.id)


def test_closing_with_the_disk_still_full_says_what_was_lost(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    _start(rig, seconds=2.0)
    _fill_disk(rig)
    rig.board.inject("ntc_open", sensor="skin_a")
    rig.run(1.0, until=_latched)
    core, rig.core = rig.c, None
    core.close()
    assert "closing with 2 record(s) unwritten" in caplog.text
    assert rig.board.state()["outputs_on"] is False
    with rig.ledger() as ledger:  # the next start closes it as power-lost, counted high
        assert ledger.reconcile_after_crash() == [1]


def test_ledger_gone_mid_session_still_ends_with_outputs_off(rig: Rig) -> None:
    _start(rig, seconds=2.0)
    rig.ledger_storage.drop_connections()  # the database went away under us
    rig.run(6.0, until=_latched)
    rig.run(0.3)
    assert rig.board.state()["outputs_on"] is False
    snap = rig.c.snapshot()
    assert snap.fault is not None and snap.fault.code is FaultCode.LEDGER_WRITE_FAILED
    assert not snap.session_active
    with rig.ledger() as reopened:  # the next start reconciles: counted high, never low
        assert reopened.reconcile_after_crash() == [1]
        (session,) = reopened.sessions()
        assert session.outcome is Outcome.POWER_LOST
        assert session.delivered_fluence_total_j_cm2 >= snap.delivered_total_j_cm2


class _InfoRewritingPort:
    """Rewrites the board's INFO frame, for boards with another protocol or a bad table."""

    def __init__(self, inner: Any, rewrite: Any) -> None:
        self.inner, self.rewrite = inner, rewrite
        self._decoder = FrameDecoder()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self, size: int = 1) -> bytes:
        out = b""
        for frame in self._decoder.feed(self.inner.read(size)):
            msg = frame.message
            if isinstance(msg, Info):
                msg = self.rewrite(msg)
            out += encode_frame(msg, frame.seq)
        return out


@pytest.mark.parametrize(
    ("rewrite", "code"),
    [
        (lambda i: Info(**{**_fields(i), "protocol_version": 2}), FaultCode.PROTOCOL_VERSION),
        (lambda i: Info(**{**_fields(i), "calibration_crc": 0x1234}), FaultCode.CALIBRATION_CRC),
    ],
)
def test_handshake_failures_latch_instead_of_crashing(
    rig: Rig, rewrite: Any, code: FaultCode
) -> None:
    core = rig.connect(_InfoRewritingPort(rig.port, rewrite))
    events = core.poll()
    assert [e.code for e in events if isinstance(e, FaultLatched)] == [code]
    assert core.snapshot().fault is not None
    assert not rig.rail.enabled
    assert core.self_test() is not None
    assert core.start_refusal(make_profile()) is not None
    assert core.acknowledge_fault() is not None  # needs a restart, never just an ack
    with rig.ledger() as ledger:
        assert [f.code for f in ledger.faults()] == [code]


def _fields(info: Info) -> dict[str, Any]:
    return {name: getattr(info, name) for name in Info.__dataclass_fields__}


def test_calibration_crc_helper_matches_the_board(rig: Rig) -> None:
    core = rig.ready()
    assert core.info is not None
    assert calibration_crc(core.info.calibration) == core.info.calibration_crc


def test_self_test_fails_when_the_rail_line_does_not_reach_the_board(rig: Rig) -> None:
    rig.rewire(lambda enabled: None)  # the rail wire is not connected to the board
    core = rig.connect()
    reason = core.self_test()
    assert reason is not None and "rail line check" in reason
    events = core.poll()
    assert [e.code for e in events if isinstance(e, FaultLatched)] == [FaultCode.SELF_TEST_FAILED]
    assert not rig.rail.enabled
    assert core.start_refusal(make_profile()) is not None
    with rig.ledger() as ledger:
        assert [f.code for f in ledger.faults()] == [FaultCode.SELF_TEST_FAILED]


REPO = Path(__file__).resolve().parents[2]


def _codes_in(node: ast.AST) -> set[str]:
    return {
        n.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id == "FaultCode"
    }


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def codes_a_test_checks(source: str) -> set[str]:
    """The ``FaultCode`` members a test module checks for: named inside an ``assert``,
    given to an ``assert_*`` helper, among a ``parametrize`` decorator's cases, or in a
    module-level table that a ``parametrize`` takes by name (the fault matrix's rows).
    A code named anywhere else (say, written into a ledger to set a test up) is not."""
    tree = ast.parse(source)
    found: set[str] = set()
    tables: set[str] = set()
    for node in ast.walk(tree):
        is_call = isinstance(node, ast.Call)
        if isinstance(node, ast.Assert) or (is_call and _called(node).startswith("assert_")):
            found |= _codes_in(node)
        elif is_call and _called(node) == "parametrize":
            found |= _codes_in(node)
            tables |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id in tables for target in stmt.targets
        ):
            found |= _codes_in(stmt.value)
    return found


def test_every_fault_code_is_made_to_happen_and_checked_by_some_test() -> None:
    """A new ``FaultCode`` fails here until a test (tests/, or the HIL suite's fault
    matrix) makes it happen and asserts it."""
    sources = [*(REPO / "tests").rglob("test_*.py"), *(REPO / "hil" / "suite").glob("test_*.py")]
    checked: set[str] = set()
    for path in sources:
        source = path.read_text(encoding="utf-8")
        if "FaultCode." in source:  # parse only the modules that name a code
            checked |= codes_a_test_checks(source)
    untested = [code.name for code in FaultCode if code.name not in checked]
    assert untested == [], f"no test makes these fault codes happen and checks them: {untested}"


def test_a_code_only_used_to_set_a_test_up_does_not_count() -> None:
    source = """
LATCHING = [Row("F01", FaultCode.SKIN_OVERTEMP)]
OTHER = [FaultCode.SENSOR_OPEN]

@pytest.mark.parametrize("row", LATCHING)
@pytest.mark.parametrize("code", [FaultCode.STUCK_ON])
def test_x(row, code):
    ledger.record_fault(FaultCode.BOARD_RESET)
    assert_latched(rig, FaultCode.RAIL_LOST)
    assert snapshot.fault is FaultCode.LEASE_EXPIRED
"""
    assert codes_a_test_checks(source) == {
        "SKIN_OVERTEMP", "STUCK_ON", "RAIL_LOST", "LEASE_EXPIRED"
    }  # fmt: skip


@pytest.mark.parametrize("later", ["disconnect", "link_drop"])
def test_a_later_critical_finding_still_cuts_the_rail(rig: Rig, later: str) -> None:
    _start(rig)
    rig.board.inject("ntc_open", sensor="skin_a")
    rig.run(0.5, until=_latched)
    assert rig.rail.enabled  # a sensor fault alone: OFF suffices
    rig.board.inject(later)
    rig.run(0.5)
    assert not rig.rail.enabled
    fault = rig.c.snapshot().fault
    assert fault is not None and fault.code is FaultCode.SENSOR_OPEN  # the first stays


def test_a_board_fault_nobody_names_is_latched_as_board_fault(rig: Rig) -> None:
    port = BoardFramePort(rig.port)
    _start(rig, transport=port)
    core = rig.c
    port.send(
        Event(0, EventKind.BOARD_FAULT, 0x80),
        Event(0, EventKind.MAX_ON_TIME, 0x08),  # a second one keeps the first
    )
    assert core.poll() == []
    assert core.tick() == []  # held: outputs off, waiting for a frame to name the cause
    rig.clock.advance(0.05)
    (event,) = core.tick()
    assert isinstance(event, FaultLatched) and event.code is FaultCode.BOARD_FAULT
    assert "0x0080" in event.message


class _TxRaisingPort:
    """A serial port whose ``write`` raises ``error`` (once set): not a disconnect the
    driver knows, so it comes out of the interlock's OFF as it is."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.error: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def write(self, data: bytes) -> int:
        if self.error is not None:
            raise self.error
        return int(self.inner.write(data))


def test_all_off_survives_every_part_failing(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    port = _TxRaisingPort(rig.port)
    _start(rig, transport=port)
    port.error = RuntimeError("driver bug")
    rig.c.all_off()
    failed = [r for r in caplog.records if r.getMessage().startswith("all_off: ")]
    assert failed and failed[0].exc_info is not None  # the OFF itself raised
    assert failed[0].exc_info[1] is port.error
    assert not rig.rail.enabled
    with rig.ledger() as ledger:
        (session,) = ledger.sessions()
    assert session.outcome is Outcome.STOPPED


def test_a_stall_past_the_lease_latches_even_when_the_boards_event_is_lost(rig: Rig) -> None:
    """The host knows from its own clock that the lease lapsed: a LEASE_EXPIRED frame
    lost in an overrun (a long hang fills the UART buffer) does not let it carry on."""
    port = BoardFramePort(rig.port)
    _start(rig, transport=port)
    port.lose = lambda msg: isinstance(msg, Event) and msg.kind is EventKind.LEASE_EXPIRED
    rig.clock.advance(0.3)  # hung past the 200 ms lease
    rig.board.advance_to(rig.clock())
    assert rig.board.state()["outputs_on"] is False
    rig.board.pop_events()
    rig.run(0.2, until=_latched)
    _assert_faulted(rig, FaultCode.LEASE_EXPIRED)
    assert not [e for e in rig.board.pop_events() if e["event"] == "output" and e["on"]]


def test_acknowledgement_waits_for_telemetry_to_come_back(rig: Rig) -> None:
    """A stale latch is not cleared while the pad is silent; once frames come back it is."""
    _start(rig)
    rig.board.inject("link_drop", duration_ms=1000.0)
    rig.run(0.5, until=_latched)
    _assert_faulted(rig, FaultCode.TELEMETRY_STALE)
    assert rig.c.fault_clear_refusal() == "the pad is not reporting its state; check the cable"
    assert rig.c.acknowledge_fault() == "the pad is not reporting its state; check the cable"
    rig.run(1.0)
    assert rig.c.acknowledge_fault() is None
    assert rig.c.fault is None and rig.c.snapshot().fault is None


def test_a_later_critical_reading_cuts_the_rail_after_a_lesser_first_fault(rig: Rig) -> None:
    """The supervisor's finding in a later frame reaches the latch too: a critical one cuts
    the rail although a non-critical fault was latched first (and stays the fault)."""
    _start(rig)
    rig.c.latch_fault(FaultCode.LEDGER_WRITE_FAILED, "the disk is full")
    assert rig.rail.enabled  # not critical: OFF suffices
    rig.board.inject("skin_overtemp")
    rig.run(3.0)
    assert not rig.rail.enabled
    snap = rig.c.snapshot()
    assert snap.fault is not None and snap.fault.code is FaultCode.LEDGER_WRITE_FAILED
    assert snap.fault_also_seen.get(FaultCode.SKIN_OVERTEMP, 0) > 0


def test_light_on_a_channel_the_board_never_declared_faults_and_closes_the_record(
    rig: Rig,
) -> None:
    """Telemetry that grows a third channel (INFO declared two) with current on it: the
    host neither crashes nor keeps treating; the fault closes the session's row."""
    port = BoardFramePort(rig.port)
    _start(rig, transport=port)

    def extra_channel(message: Message) -> Message:
        if isinstance(message, Telemetry):
            lit = ChannelTelemetry(100.0, 0, 100)
            return dataclasses.replace(message, channels=(*message.channels, lit))
        return message

    port.alter = extra_channel
    rig.run(1.0, until=_latched)
    port.alter = lambda message: message
    _assert_faulted(rig, FaultCode.IRRADIANCE_OVER_LIMIT)
