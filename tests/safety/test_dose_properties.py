"""Property tests of safety.dose against an independent, exact reference.

The reference works in ``fractions.Fraction``: a true output made of segments (pauses,
constant output, linear ramps from 0, CW or pulsed), with its own exact calibration
interpolation. The integrator sees only jittered telemetry frames sampled from it, as
the host does, with currents on the wire's 0.1 mA grid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.protocol.messages import (
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelTelemetry,
    Telemetry,
    TelemetryFlag,
)
from safety.calibration import Calibration
from safety.dose import DoseIntegrator

pytestmark = pytest.mark.slow

TABLES = (
    ((0, 0), (100, 12), (200, 23), (300, 33), (400, 42), (500, 50)),
    ((0, 0), (100, 11), (250, 26), (450, 44), (600, 52)),
)
CAL = Calibration(
    tuple(
        ChannelCalibration(nm, 600.0, tuple(CalibrationPoint(c, i) for c, i in table))
        for nm, table in zip((810, 850), TABLES, strict=True)
    )
)
TICKS_PER_S = 10_000
"""Reference time is kept in integer ticks of 0.1 ms, so it is exact and fast."""
FRAME_TICKS = 200
MAX_FRAME_TICKS = 250
FRAME_S = FRAME_TICKS / TICKS_PER_S
MAX_FRAME_S = MAX_FRAME_TICKS / TICKS_PER_S


def board_current_ma(channel: int, irradiance_mw_cm2: float) -> float:
    """The simulated board's drive current for an irradiance (the test's own inverse)."""
    for (c0, i0), (c1, i1) in pairwise(TABLES[channel]):
        if i0 <= irradiance_mw_cm2 <= i1:
            return c0 + (c1 - c0) * (irradiance_mw_cm2 - i0) / (i1 - i0)
    raise AssertionError(f"{irradiance_mw_cm2} outside the table")


@dataclass(frozen=True)
class Segment:
    """A stretch of true output. All peaks 0 = paused (output off)."""

    ticks: int
    peak_mw_cm2: tuple[Fraction, Fraction]
    ramp: bool  # linear from 0 to the peak over the segment
    pulse_hz: int
    duty_pct: int

    @property
    def on(self) -> bool:
        return any(self.peak_mw_cm2)

    def exact_fluence_mw_s(self, channel: int) -> Fraction:
        duty = Fraction(self.duty_pct, 100) if self.pulse_hz else Fraction(1)
        area = self.peak_mw_cm2[channel] * Fraction(self.ticks, TICKS_PER_S) * duty
        return area / 2 if self.ramp else area

    def frame(self, into_ticks: int) -> Telemetry:
        """What the board reports ``into_ticks`` into this segment (0.1 mA resolution)."""
        ramp = into_ticks / self.ticks if self.ramp else 1.0
        channels = tuple(
            ChannelTelemetry(
                round(board_current_ma(ch, float(peak) * ramp), 1), self.pulse_hz, self.duty_pct
            )
            for ch, peak in enumerate(self.peak_mw_cm2)
        )
        flags = TelemetryFlag.CONTACT | (TelemetryFlag.OUTPUT_ON if self.on else TelemetryFlag.NONE)
        return Telemetry(0, flags, BoardFault.NONE, 33.0, 33.0, 30.0, 12000, 300, channels)


irradiance = st.fractions(min_value=10, max_value=50, max_denominator=100)
segments = st.builds(
    Segment,
    ticks=st.integers(20 * TICKS_PER_S, 40 * TICKS_PER_S),
    peak_mw_cm2=st.one_of(
        st.just((Fraction(0), Fraction(0))),
        st.tuples(irradiance, irradiance),
        st.tuples(irradiance, st.just(Fraction(0))),
    ),
    ramp=st.booleans(),
    pulse_hz=st.one_of(st.just(0), st.integers(1, 300)),
    duty_pct=st.integers(10, 100),
)


def replay(trace: list[Segment], seed: int, time_scale: int) -> DoseIntegrator:
    """Feed the integrator frames sampled from ``trace`` every 20 ms ± 25 % (jitter)."""
    dose = DoseIntegrator(CAL, {0: 1000.0, 1: 1000.0}, 1e9)
    rng = random.Random(seed)
    end_ticks = sum(seg.ticks for seg in trace)
    index, start, now = 0, 0, 0
    while True:
        dt = rng.randint(FRAME_TICKS * 3 // 4, MAX_FRAME_TICKS)
        if now + dt > end_ticks:
            break
        now += dt
        while now > start + trace[index].ticks:  # the frame falls in a later segment
            start += trace[index].ticks
            index += 1
        frame = trace[index].frame(now - start)
        dose.add_frame(frame, dt / TICKS_PER_S, float(time_scale))
    return dose


@settings(max_examples=100, deadline=None)
@given(
    trace=st.lists(segments, min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
    time_scale=st.sampled_from([1, 2, 5]),
)
def test_delivered_matches_the_exact_integral(
    trace: list[Segment], seed: int, time_scale: int
) -> None:
    dose = replay(trace, seed, time_scale)
    for ch in (0, 1):
        exact_j = sum((s.exact_fluence_mw_s(ch) for s in trace), Fraction(0)) * time_scale / 1000
        error_j = abs(Fraction(dose.delivered_j_cm2[ch]) - exact_j)
        assert error_j <= exact_j / 200, f"channel {ch}: {float(error_j)} J/cm² off {exact_j}"
    on_ticks = sum(s.ticks for s in trace if s.on)
    elapsed_error_ticks = abs(dose.elapsed_s / time_scale * TICKS_PER_S - on_ticks)
    assert elapsed_error_ticks <= (len(trace) + 1) * MAX_FRAME_TICKS


@dataclass(frozen=True)
class Plan:
    peak_mw_cm2: tuple[float, float]  # ≤ 48: the 3 % board error stays inside the table
    duty_pct: int
    duration_s: float
    fluence_factor: float  # planned fluence / (average irradiance × duration)
    ramp_s: float

    @property
    def avg_mw_cm2(self) -> tuple[float, ...]:
        return tuple(p * self.duty_pct / 100 for p in self.peak_mw_cm2)


plans = st.builds(
    Plan,
    peak_mw_cm2=st.tuples(st.floats(10, 48), st.one_of(st.just(0.0), st.floats(10, 48))),
    duty_pct=st.sampled_from([100, 50, 10]),
    duration_s=st.floats(10, 90),
    fluence_factor=st.floats(0.3, 1.3),
    ramp_s=st.sampled_from([0.0, 5.0]),
)


@settings(max_examples=100, deadline=None)
@given(plan=plans, seed=st.integers(0, 2**32), use_cap=st.booleans(), scale=st.sampled_from([1, 3]))
def test_session_never_exceeds_the_plan_by_more_than_one_period(
    plan: Plan, seed: int, use_cap: bool, scale: int
) -> None:
    rng = random.Random(seed)
    duty = plan.duty_pct / 100
    planned = {
        ch: avg * plan.duration_s * plan.fluence_factor * scale / 1000
        for ch, avg in enumerate(plan.avg_mw_cm2)
    }
    dose = DoseIntegrator(CAL, planned, plan.duration_s)
    true_j = [0.0, 0.0]
    while not dose.done():
        caps = dose.clamp_next(FRAME_S, scale) if use_cap else {0: 1e9, 1: 1e9}
        ramp = min(1.0, dose.elapsed_s / plan.ramp_s) if plan.ramp_s else 1.0
        dt_s = FRAME_S * rng.uniform(0.75, 1.25)
        channels = []
        for ch, avg in enumerate(plan.avg_mw_cm2):
            peak = min(avg * ramp, caps[ch]) / duty * rng.uniform(0.97, 1.03)  # board error
            true_j[ch] += peak * duty * dt_s * scale / 1000
            current = CAL.current_ma(ch, peak)
            channels.append(ChannelTelemetry(current, 0 if duty == 1 else 100, plan.duty_pct))
        flags = TelemetryFlag.OUTPUT_ON | TelemetryFlag.CONTACT
        frame = Telemetry(0, flags, BoardFault.NONE, 33.0, 33.0, 30.0, 12000, 300, tuple(channels))
        dose.add_frame(frame, dt_s, scale)
    one_period_j = 1.03 * sum(plan.avg_mw_cm2) * MAX_FRAME_S * scale / 1000
    total_plan = sum(planned.values())
    assert dose.delivered_total_j_cm2 <= total_plan + one_period_j
    assert sum(true_j) <= total_plan + one_period_j
    assert dose.elapsed_s <= plan.duration_s + MAX_FRAME_S * scale
    if use_cap:
        for ch in (0, 1):
            ch_period = 1.03 * plan.avg_mw_cm2[ch] * MAX_FRAME_S * scale / 1000
            assert dose.delivered_j_cm2[ch] <= planned[ch] + ch_period + 1e-12
