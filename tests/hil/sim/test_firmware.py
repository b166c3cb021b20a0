"""Board firmware behaviour, seen from the host side of the wire."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.protocol import (
    MAX_LEASE_MS,
    Ack,
    BoardFault,
    ChannelSetpoint,
    ClearFaults,
    EventKind,
    Hello,
    Info,
    Nak,
    NakCode,
    OutputOff,
    ResetReason,
    SetOutput,
    calibration_crc,
)
from hil.sim.firmware import MAX_ON_TIME_S


def test_hello_is_answered_with_info(host: Any) -> None:
    reply = host.request(Hello())
    assert isinstance(reply, Info)
    assert reply.echo_seq == host.seq
    assert reply.protocol_version == 1
    assert reply.simulator is True
    assert reply.time_scale == 1.0
    assert reply.serial == "SIM-0000001"
    assert [cal.wavelength_nm for cal in reply.calibration] == [810, 850]
    assert reply.calibration_crc == calibration_crc(reply.calibration)


def test_info_reports_time_scale(host_factory: Any) -> None:
    host = host_factory(time_scale=60.0)
    reply = host.request(Hello())
    assert isinstance(reply, Info) and reply.time_scale == 60.0


@pytest.mark.parametrize("claim", [(False, 1.0), (True, 0.01), (False, 0.0), (True, 601.0)])
def test_info_can_be_made_to_claim_what_the_board_is_not(
    host_factory: Any, claim: tuple[bool, float]
) -> None:
    host = host_factory(time_scale=60.0, info_claim=claim)
    reply = host.request(Hello())
    assert isinstance(reply, Info) and (reply.simulator, reply.time_scale) == claim
    assert host.board.time_scale == 60.0  # the physics still runs at its own scale


@pytest.mark.parametrize("scale", [0.0, 0.01, 0.99, 600.5, 655.35])
def test_the_simulator_runs_only_between_1_and_600(host_factory: Any, scale: float) -> None:
    with pytest.raises(ValueError, match="between 1 and 600"):
        host_factory(time_scale=scale)


def test_power_up_announces_reset_and_outputs_are_off(host_factory: Any) -> None:
    host = host_factory()
    got = host.run(0.105)  # the frame sent at 100 ms takes about 3 ms on the wire
    first = got[0][1]
    assert host.events(got[:1], EventKind.BOARD_RESET)
    assert first.detail == ResetReason.POWER_ON
    tele = host.telemetry(got)
    assert len(tele) == 5  # 50 Hz
    assert all(not t.output_on and t.channels[0].current_ma == 0 for t in tele)


def test_set_output_acks_and_drives_the_current(host: Any) -> None:
    assert isinstance(host.set_output(400.0, channel=1), Ack)
    last = host.telemetry(host.run(0.05))[-1]
    assert last.output_on
    assert last.channels[1].current_ma == 400.0
    assert last.channels[0].current_ma == 0.0
    assert 0 < last.lease_remaining_ms <= 300


def _setpoint(**kw: Any) -> SetOutput:
    return SetOutput(
        kw.pop("lease_ms", 300), (ChannelSetpoint(**{"channel": 0, "current_ma": 300.0, **kw}),)
    )


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (_setpoint(lease_ms=MAX_LEASE_MS + 1), NakCode.LEASE_TOO_LONG),
        (_setpoint(current_ma=700.1), NakCode.OVER_LIMIT),
        (_setpoint(channel=2), NakCode.BAD_CHANNEL),
        (_setpoint(pulse_hz=10, duty_pct=0), NakCode.BAD_PAYLOAD),
        (_setpoint(lease_ms=0), NakCode.BAD_PAYLOAD),
        (Hello(protocol_version=2), NakCode.BAD_VERSION),
    ],
)
def test_bad_commands_are_refused(host: Any, message: Any, code: NakCode) -> None:
    reply = host.request(message)
    assert reply == Nak(host.seq, code)
    assert not host.board.state()["outputs_on"]


def test_lease_of_exactly_500_ms_is_accepted(host: Any) -> None:
    assert isinstance(host.request(_setpoint(lease_ms=MAX_LEASE_MS)), Ack)


def test_no_contact_is_refused(host: Any) -> None:
    host.board.set_contact(False)
    assert host.set_output(300.0) == Nak(host.seq, NakCode.NO_CONTACT)


def test_rail_off_is_refused_and_cuts_emission(host: Any) -> None:
    assert isinstance(host.set_output(300.0), Ack)
    host.board.set_rail(False)
    last = host.telemetry(host.run(0.05))[-1]
    assert not last.output_on and not last.rail_enabled and last.channels[0].current_ma == 0
    assert host.set_output(300.0) == Nak(host.seq, NakCode.RAIL_OFF)


def test_latched_fault_refuses_until_cleared(host: Any) -> None:
    host.board.inject("board_overtemp")
    host.run(0.05)
    assert host.set_output(300.0) == Nak(host.seq, NakCode.FAULT_ACTIVE)
    assert host.request(ClearFaults()) == Nak(host.seq, NakCode.FAULT_ACTIVE)  # cause persists
    host.board.clear_injections()
    host.run(0.05)
    assert isinstance(host.request(ClearFaults()), Ack)
    assert isinstance(host.set_output(300.0), Ack)


def test_output_off_and_clear_faults_ack(host: Any) -> None:
    assert isinstance(host.set_output(300.0), Ack)
    assert isinstance(host.request(OutputOff()), Ack)
    assert not host.telemetry(host.run(0.05))[-1].output_on
    assert isinstance(host.request(ClearFaults()), Ack)


def test_retransmitted_command_is_applied_again_and_re_acked(host: Any) -> None:
    message = _setpoint(current_ma=250.0)
    host.send(message, seq=77)
    host.send(message, seq=77)
    got = host.run(0.05)
    acks = [m for _, m in got if isinstance(m, Ack)]
    assert acks == [Ack(77), Ack(77)]
    assert host.telemetry(got)[-1].channels[0].current_ma == 250.0


@pytest.mark.parametrize("lease_ms", [100, 300, 500])
def test_lease_expiry_turns_output_off_within_25_ms(host: Any, lease_ms: int) -> None:
    host.hold(1.0, 300.0, lease_ms=lease_ms, every_s=0.05)
    renewed_s = host.clock()
    host.send(_setpoint(lease_ms=lease_ms))  # the last renewal
    got = host.run(lease_ms / 1000.0 + 0.1)
    expired = [t for t, m in got if m in host.events(got, EventKind.LEASE_EXPIRED)]
    first_off_s = next(t for t, m in got if m in host.telemetry(got) and not m.output_on)
    assert len(expired) == 1
    assert first_off_s <= renewed_s + lease_ms / 1000.0 + 0.025
    on_before = [
        m for t, m in got if m in host.telemetry(got) and t < renewed_s + lease_ms / 1000.0
    ]
    assert all(m.output_on for m in on_before[1:])  # nothing went off before the lease ran out


def test_renewed_lease_keeps_output_on(host: Any) -> None:
    got = host.hold(2.0, 300.0, lease_ms=200, every_s=0.1)
    assert not host.events(got, EventKind.LEASE_EXPIRED)
    assert all(t.output_on for t in host.telemetry(got)[2:])


def test_reset_turns_outputs_off_and_restarts_uptime(host: Any) -> None:
    host.hold(1.0, 300.0)
    host.board.reset("brownout")
    got = host.run(0.1)
    resets = host.events(got, EventKind.BOARD_RESET)
    assert [e.detail for e in resets] == [ResetReason.BROWNOUT]
    tele = host.telemetry(got)
    assert all(not t.output_on for t in tele)
    assert tele[0].uptime_ms <= 25


def test_contact_loss_turns_output_off_at_once(host: Any) -> None:
    assert isinstance(host.set_output(300.0, lease_ms=500), Ack)
    host.run(0.05)
    host.board.set_contact(False)
    lost_ms = host.board.state()["uptime_ms"]
    assert host.board.state()["irradiance_mw_cm2"] == [0.0, 0.0]
    tele = [t for t in host.telemetry(host.run(0.03)) if t.uptime_ms > lost_ms]
    assert tele and not tele[0].contact and not tele[0].output_on


def test_maximum_continuous_on_time(host_factory: Any) -> None:
    scale = 100.0
    host = host_factory(time_scale=scale)
    limit_s = MAX_ON_TIME_S / scale
    got = host.hold(limit_s - 0.5, 300.0, lease_ms=500, every_s=0.4)
    assert not host.events(got, EventKind.MAX_ON_TIME)
    got = host.hold(1.0, 300.0, lease_ms=500, every_s=0.4)
    assert len(host.events(got, EventKind.MAX_ON_TIME)) == 1
    last = host.telemetry(got)[-1]
    assert not last.output_on and BoardFault.MAX_ON_TIME in last.faults
    assert isinstance(host.request(ClearFaults()), Ack)
    assert isinstance(host.set_output(300.0), Ack)


def test_board_overtemp_latches_and_reports(host: Any) -> None:
    assert isinstance(host.set_output(300.0, lease_ms=500), Ack)
    host.board.inject("board_overtemp")
    got = host.run(0.05)
    faults = host.events(got, EventKind.BOARD_FAULT)
    assert len(faults) == 1 and faults[0].detail & BoardFault.BOARD_OVERTEMP
    assert all(not t.output_on for t in host.telemetry(got))


def test_skin_at_42_is_left_to_the_host(host: Any) -> None:
    assert isinstance(host.set_output(300.0, lease_ms=500), Ack)
    host.board.inject("skin_overtemp")
    got = host.run(0.1)
    assert not host.events(got, EventKind.BOARD_FAULT)
    assert host.telemetry(got)[-1].output_on


def test_skin_cutoff_at_43_from_heat(host_factory: Any) -> None:
    host = host_factory(time_scale=200.0, ambient_c=32.0)
    host.board.set_blanket(True)
    got = host.hold(15.0, 650.0, lease_ms=500, every_s=0.4)  # 50 min of board time
    faults = host.events(got, EventKind.BOARD_FAULT)
    assert faults and faults[0].detail & BoardFault.SKIN_OVERTEMP
    tele = host.telemetry(got)
    peak = max(max(t.skin_a_c, t.skin_b_c) for t in tele)
    assert 43.0 <= peak < 43.5
    assert not tele[-1].output_on and BoardFault.SKIN_OVERTEMP in tele[-1].faults


def test_button_press_edges(host: Any) -> None:
    host.board.press("short")
    got = host.run(0.5)
    kinds = [
        e.kind for e in host.events(got) if e.kind in (EventKind.BUTTON_DOWN, EventKind.BUTTON_UP)
    ]
    assert kinds == [EventKind.BUTTON_DOWN, EventKind.BUTTON_UP]
    assert any(t.button for t in host.telemetry(got))
    host.board.press("long")
    got = host.run(2.4)
    assert all(t.button for t in host.telemetry(got))
    assert host.events(host.run(0.2), EventKind.BUTTON_UP)


def test_pulsed_output_delivers_peak_times_duty(host_factory: Any) -> None:
    cw, pulsed = host_factory(seed=3), host_factory(seed=3)
    assert isinstance(cw.set_output(500.0), Ack)
    assert isinstance(pulsed.set_output(500.0, pulse_hz=10, duty_pct=40), Ack)
    irr_cw = cw.board.state()["irradiance_mw_cm2"][0]
    irr_pulsed = pulsed.board.state()["irradiance_mw_cm2"][0]
    assert irr_pulsed == pytest.approx(irr_cw * 0.4)
    tele = pulsed.telemetry(pulsed.run(0.05))[-1].channels[0]
    assert (tele.current_ma, tele.pulse_hz, tele.duty_pct) == (500.0, 10, 40)


@pytest.mark.parametrize(
    ("setpoints", "lease_ms", "code"),
    [
        # docs/protocol.md §4.3: the first failing step wins, over the whole command
        ([(0, 300.0, 0, 100)], 501, NakCode.LEASE_TOO_LONG),
        ([(0, 300.0, 0, 100), (5, 300.0, 0, 100)], 0, NakCode.BAD_PAYLOAD),
        ([(0, 300.0, 0, 50), (5, 300.0, 0, 100)], 300, NakCode.BAD_CHANNEL),
        ([(0, 700.1, 0, 100), (1, 300.0, 10, 0)], 300, NakCode.BAD_PAYLOAD),
        ([(0, 700.1, 0, 100), (0, 300.0, 0, 100)], 300, NakCode.BAD_PAYLOAD),
        ([(0, 300.0, 0, 100), (1, 700.1, 0, 100)], 300, NakCode.OVER_LIMIT),
    ],
)
def test_set_output_checks_in_the_documented_order(
    host: Any, setpoints: list[tuple[int, float, int, int]], lease_ms: int, code: NakCode
) -> None:
    message = SetOutput(lease_ms, tuple(ChannelSetpoint(*sp) for sp in setpoints))
    assert host.request(message) == Nak(host.seq, code)


def test_a_refusal_for_the_board_state_ranks_fault_then_rail_then_contact(host: Any) -> None:
    host.board.set_contact(False)
    host.board.set_rail(False)
    assert host.set_output(300.0) == Nak(host.seq, NakCode.RAIL_OFF)
    host.board.inject("board_overtemp")
    host.run(0.05)
    assert host.set_output(300.0) == Nak(host.seq, NakCode.FAULT_ACTIVE)


@pytest.mark.parametrize("cut", ["rail", "contact"])
def test_rail_or_contact_loss_ends_the_lease_without_an_event(host: Any, cut: str) -> None:
    assert isinstance(host.set_output(300.0, lease_ms=500), Ack)
    host.run(0.05)
    if cut == "rail":
        host.board.set_rail(False)
    else:
        host.board.set_contact(False)
    cut_ms = host.board.state()["uptime_ms"]
    got = host.run(0.6)  # past the lease: it was cancelled, so it never expires
    assert not host.events(got)
    after = [t for t in host.telemetry(got) if t.uptime_ms > cut_ms]
    assert after and all(not t.output_on and t.lease_remaining_ms == 0 for t in after)


def test_off_channels_report_no_pulsing_and_zero_duty(host: Any) -> None:
    assert isinstance(host.set_output(300.0, channel=1, lease_ms=500), Ack)
    last = host.telemetry(host.run(0.05))[-1]
    assert (last.channels[0].current_ma, last.channels[0].pulse_hz) == (0.0, 0)
    assert last.channels[0].duty_pct == 0
    assert last.channels[1].duty_pct == 100
