"""Physics tuning of the simulated pad: optics, unit error, heat, fluence truth."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocol import Ack
from hil.sim.physics import (
    CALIBRATION,
    UNIT_ERROR_FRACTION,
    UNIT_SPREAD_FRACTION,
    ThermalModel,
    interpolate_irradiance,
)
from safety.limits import CALIBRATION_UNCERTAINTY_FRACTION

SESSION_S = 30 * 60.0
SCALE = 100.0  # 30 minutes of board time in 18 s of virtual protocol time


def _current_for(irradiance_mw_cm2: float, channel: int = 0) -> float:
    """What a host computes from INFO's calibration (inverse piecewise-linear)."""
    points = CALIBRATION[channel].points
    for low, high in itertools.pairwise(points):
        if irradiance_mw_cm2 <= high.irradiance_mw_cm2:
            frac = (irradiance_mw_cm2 - low.irradiance_mw_cm2) / (
                high.irradiance_mw_cm2 - low.irradiance_mw_cm2
            )
            return low.current_ma + frac * (high.current_ma - low.current_ma)
    raise ValueError(irradiance_mw_cm2)


def _session_skin_c(host: Any, minutes: float = 30.0) -> list[float]:
    got = host.hold(minutes * 60.0 / SCALE, _current_for(50.0), lease_ms=500, every_s=0.4)
    return [max(t.skin_a_c, t.skin_b_c) for t in host.telemetry(got)]


def test_session_in_a_22_c_room_stays_below_40_c(host_factory: Any) -> None:
    host = host_factory(time_scale=SCALE, ambient_c=22.0)
    skin = _session_skin_c(host)
    assert max(skin) < 40.0
    assert skin[-1] > skin[0] + 3.0  # it did heat up


@pytest.mark.parametrize(("ambient_c", "blanket"), [(32.0, False), (22.0, True)])
def test_warm_room_or_blanket_crosses_41_c(
    host_factory: Any, ambient_c: float, blanket: bool
) -> None:
    host = host_factory(time_scale=SCALE, ambient_c=ambient_c)
    host.board.set_blanket(blanket)
    skin = _session_skin_c(host)
    assert max(skin) >= 41.0


def test_skin_rise_rate_in_a_normal_session_is_below_1_c_per_min() -> None:
    model = ThermalModel(22.0)
    previous = model.skin_c
    for _ in range(30):
        model.step(60.0, 8.9, 4.0)  # about 50 mW/cm² on 100 cm²
        assert model.skin_c - previous < 1.0
        previous = model.skin_c


def test_unit_spread_is_in_info_and_only_a_small_residual_is_hidden(host_factory: Any) -> None:
    """Each unit reports its own factory calibration; what it hides is within the bound."""
    spreads, residuals = {}, {}
    for seed in range(20):
        host = host_factory(seed=seed)
        assert isinstance(host.set_output(500.0), Ack)
        emitted = host.board.state()["irradiance_mw_cm2"][0]
        reported = interpolate_irradiance(host.board.optics.calibration[0].points, 500.0)
        spreads[seed] = reported / 44.0  # 44 mW/cm² is the nominal table at 500 mA
        residuals[seed] = emitted / reported
    assert all(abs(f - 1.0) <= UNIT_SPREAD_FRACTION + 1e-3 for f in spreads.values())
    assert all(abs(f - 1.0) <= UNIT_ERROR_FRACTION + 1e-9 for f in residuals.values())
    assert UNIT_ERROR_FRACTION <= CALIBRATION_UNCERTAINTY_FRACTION  # the host's bound covers it
    assert len(set(spreads.values())) >= 15 and len(set(residuals.values())) == 20  # seeded
    again = host_factory(seed=7)
    assert isinstance(again.set_output(500.0), Ack)
    assert again.board.state()["irradiance_mw_cm2"][0] / 44.0 == spreads[7] * residuals[7]


def test_delivered_fluence_truth(host_factory: Any) -> None:
    host = host_factory(time_scale=SCALE)
    host.hold(SESSION_S / SCALE, _current_for(50.0), lease_ms=500, every_s=0.4)
    host.run(1.0)  # lease runs out: no more fluence
    outputs = [e for e in host.board.pop_events() if e["event"] == "output"]
    assert [e["on"] for e in outputs] == [True, False]
    on_s = (outputs[1]["t"] - outputs[0]["t"]) * SCALE
    assert SESSION_S <= on_s <= SESSION_S + 0.5 * SCALE  # plus the last lease
    irradiance = outputs[0]["irradiance_mw_cm2"][0]
    fluence = host.board.state()["delivered_fluence_j_cm2"]
    assert fluence[1] == 0.0
    assert fluence[0] == pytest.approx(irradiance * on_s / 1000.0, rel=1e-3)


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0.0, max_value=700.0), st.sampled_from([0, 1]))
def test_calibration_interpolation_is_monotonic_and_bounded(current_ma: float, ch: int) -> None:
    points = CALIBRATION[ch].points
    value = interpolate_irradiance(points, current_ma)
    assert value <= interpolate_irradiance(points, min(700.0, current_ma + 1.0))
    assert 0.0 <= value <= points[-1].irradiance_mw_cm2
    assert interpolate_irradiance(points, 500.0) == points[5].irradiance_mw_cm2
