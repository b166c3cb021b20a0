"""The sensors' rounding to hundredths of a degree is exactly ``round(x, 2)``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.sim.sensors import round_centi


def _same_float(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


@pytest.mark.parametrize(
    "value",
    [0.0, -0.0, 0.005, -0.005, 0.015, 1.005, 2.675, -1.115, 0.0049999, -0.0049999, 5e-324,
     36.125, 1e10, -1e10, 1e12, 1e300, math.inf, -math.inf, math.nan],
)  # fmt: skip
def test_halves_zeros_and_extremes_round_as_round_does(value: float) -> None:
    assert _same_float(round_centi(value), round(value, 2))


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_rounds_as_round_does(value: float) -> None:
    assert _same_float(round_centi(value), round(value, 2))


@settings(max_examples=500, deadline=None)
@given(st.integers(-(10**7), 10**7), st.sampled_from([0.0, 1e-13, -1e-13, 5e-16, -5e-16]))
def test_values_next_to_a_half_hundredth_round_as_round_does(n: int, nudge: float) -> None:
    value = (n + 0.5) / 100.0 + nudge
    assert _same_float(round_centi(value), round(value, 2))
