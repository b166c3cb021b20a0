"""Every injectable fault is observable from the host side of the wire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from drivers.protocol import (
    Ack,
    BoardFault,
    EventKind,
    Hello,
    Info,
    OutputOff,
    ResetReason,
)
from hil.sim.faults import FaultKind, InjectionError


def _on(host: Any, channel: int = 0) -> None:
    assert isinstance(host.set_output(300.0, channel=channel, lease_ms=500), Ack)


def check_skin_overtemp(host: Any) -> None:
    host.board.inject("skin_overtemp")
    last = host.telemetry(host.run(0.05))[-1]
    assert last.skin_a_c == pytest.approx(42.0, abs=0.1)
    assert last.skin_b_c == pytest.approx(42.0, abs=0.1)


@pytest.mark.parametrize(("kind", "reading"), [("ntc_open", -40.0), ("ntc_short", 150.0)])
def check_ntc(host: Any, kind: str = "ntc_open", reading: float = -40.0) -> None:
    host.board.inject(kind, sensor="skin_b")
    last = host.telemetry(host.run(0.05))[-1]
    assert last.skin_b_c == pytest.approx(reading, abs=0.1)
    assert BoardFault.SENSOR_FAULT in last.faults


def check_ntc_short(host: Any) -> None:
    check_ntc(host, "ntc_short", 150.0)


def check_ntc_drift(host: Any) -> None:
    host.board.inject("ntc_drift", rate=60.0)  # 1 °C per second of board time
    last = host.telemetry(host.run(2.0))[-1]
    assert last.skin_a_c - last.skin_b_c == pytest.approx(2.0, abs=0.15)


def check_led_open(host: Any) -> None:
    _on(host)
    host.board.inject("led_open", channel=0)
    last = host.telemetry(host.run(0.05))[-1]
    assert last.output_on and last.channels[0].current_ma == 0.0
    assert BoardFault.LED_OPEN in last.faults


def check_led_short(host: Any) -> None:
    _on(host, channel=1)
    host.board.inject("led_short", channel=1)
    last = host.telemetry(host.run(0.05))[-1]
    assert BoardFault.LED_SHORT in last.faults
    assert host.board.state()["irradiance_mw_cm2"][1] == 0.0


def check_current_gain(host: Any) -> None:
    _on(host)  # 300 mA
    light = host.board.state()["irradiance_mw_cm2"][0]
    host.board.inject("current_gain", percent=9.0)
    last = host.telemetry(host.run(0.05))[-1]
    assert last.channels[0].current_ma == pytest.approx(327.0)  # flows, measured, reported
    assert host.board.state()["irradiance_mw_cm2"][0] > light * 1.07  # the light follows
    assert host.board.state()["injections"] == [{"fault": "current_gain", "percent": 9.0}]


def check_stuck_on(host: Any) -> None:
    _on(host)
    host.board.inject("stuck_on")
    assert isinstance(host.request(OutputOff()), Ack)
    got = host.run(1.0)  # also past the lease
    assert all(t.output_on and t.channels[0].current_ma == 300.0 for t in host.telemetry(got))
    host.board.set_rail(False)  # the only thing that stops it
    last = host.telemetry(host.run(0.05))[-1]
    assert not last.output_on and host.board.state()["irradiance_mw_cm2"] == [0.0, 0.0]


def check_board_overtemp(host: Any) -> None:
    host.board.inject("board_overtemp")
    got = host.run(0.05)
    assert host.telemetry(got)[-1].board_c >= 70.0
    assert host.events(got, EventKind.BOARD_FAULT)


def check_contact_lost(host: Any) -> None:
    _on(host)
    host.board.inject("contact_lost")
    got = host.run(0.05)
    assert not host.telemetry(got)[-1].contact and not host.telemetry(got)[-1].output_on


def check_link_drop(host: Any) -> None:
    host.run(0.1)
    injected_s = host.clock()
    host.board.inject("link_drop", duration_ms=200)
    got = host.run(0.5)
    assert min(t for t, _ in got) >= injected_s + 0.2
    assert len(host.telemetry(got)) >= 14  # and then the link is back
    assert host.decoder.stats.sequence_gaps >= 1


def check_link_corrupt(host: Any) -> None:
    host.board.inject("link_corrupt", rate=0.05)
    host.run(1.0)
    stats = host.decoder.stats
    assert stats.crc_errors + stats.framing_errors + stats.decode_errors > 0


def check_link_delay(host: Any) -> None:
    host.board.inject("link_delay", delay_ms=100)
    sent_s = host.clock()
    assert isinstance(host.request(Hello(), timeout_s=0.5), Info)
    assert host.clock() - sent_s >= 0.2  # both ways


def check_link_duplicate(host: Any) -> None:
    host.board.inject("link_duplicate")
    host.run(0.1)
    assert host.decoder.stats.duplicates >= 4


def check_brownout(host: Any) -> None:
    _on(host)
    host.board.inject("brownout")
    got = host.run(0.05)
    assert [e.detail for e in host.events(got, EventKind.BOARD_RESET)] == [ResetReason.BROWNOUT]
    assert not host.telemetry(got)[-1].output_on


def check_disconnect(host: Any) -> None:
    host.board.inject("disconnect")
    with pytest.raises(OSError):
        host.port.read(10)
    with pytest.raises(OSError):
        host.port.write(b"\x00")
    assert host.port.wait_readable(1.0) is True  # like a hung-up fd: read() then raises
    host.board.clear_injections()
    assert host.telemetry(host.run(0.05))


def check_button_stuck(host: Any) -> None:
    host.board.inject("button_stuck")
    got = host.run(3.0)
    assert len(host.events(got, EventKind.BUTTON_DOWN)) == 1
    assert not host.events(got, EventKind.BUTTON_UP)
    assert all(t.button for t in host.telemetry(got))


def check_button_bounce(host: Any) -> None:
    host.board.inject("button_bounce")
    host.board.press("short")
    got = host.run(0.5)
    assert len(host.events(got, EventKind.BUTTON_DOWN)) >= 2
    assert len(host.events(got, EventKind.BUTTON_UP)) >= 2


CHECKS: dict[str, Callable[[Any], None]] = {
    "skin_overtemp": check_skin_overtemp,
    "ntc_open": check_ntc,
    "ntc_short": check_ntc_short,
    "ntc_drift": check_ntc_drift,
    "led_open": check_led_open,
    "led_short": check_led_short,
    "current_gain": check_current_gain,
    "stuck_on": check_stuck_on,
    "board_overtemp": check_board_overtemp,
    "contact_lost": check_contact_lost,
    "link_drop": check_link_drop,
    "link_corrupt": check_link_corrupt,
    "link_delay": check_link_delay,
    "link_duplicate": check_link_duplicate,
    "brownout": check_brownout,
    "disconnect": check_disconnect,
    "button_stuck": check_button_stuck,
    "button_bounce": check_button_bounce,
}


def test_every_fault_kind_has_a_check() -> None:
    assert set(CHECKS) == {kind.value for kind in FaultKind}


@pytest.mark.parametrize("kind", sorted(CHECKS))
def test_fault_is_observable_on_the_wire(host: Any, kind: str) -> None:
    CHECKS[kind](host)
    injected = [e for e in host.board.pop_events() if e["event"] == "injected"]
    assert [e["fault"] for e in injected] == [kind]


def test_clear_removes_every_injection(host: Any) -> None:
    for kind in ("skin_overtemp", "contact_lost", "link_duplicate", "button_stuck"):
        host.board.inject(kind)
    host.board.clear_injections()
    host.run(0.05)
    assert host.board.state()["injections"] == []
    host.decoder.stats.duplicates = 0
    last = host.telemetry(host.run(0.1))[-1]
    assert last.contact and not last.button and last.skin_a_c < 40.0
    assert host.decoder.stats.duplicates == 0


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("no_such_fault", {}),
        ("led_open", {"channel": 5}),
        ("link_corrupt", {"rate": 2}),
        ("ntc_open", {"sensor": "elbow"}),
        ("stuck_on", {"extra": 1}),
        ("current_gain", {"percent": -95.0}),
        ("current_gain", {"percent": "high"}),
    ],
)
def test_bad_injections_are_refused(host: Any, kind: str, params: dict[str, Any]) -> None:
    with pytest.raises(InjectionError):
        host.board.inject(kind, **params)
    assert host.board.state()["injections"] == []


def test_a_current_gain_below_zero_runs_the_driver_low(host: Any) -> None:
    _on(host)  # 300 mA
    host.board.inject("current_gain", percent=-12.0)
    last = host.telemetry(host.run(0.05))[-1]
    assert last.channels[0].current_ma == pytest.approx(264.0)
    host.board.clear_injections()
    assert host.telemetry(host.run(0.05))[-1].channels[0].current_ma == pytest.approx(300.0)
