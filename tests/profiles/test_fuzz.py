"""Fuzz: mutated built-in TOML and random bytes never raise; every outcome is readable.

Each input is either accepted within the limits (checked again independently here),
or refused with lines shaped ``field[ = value]: rule[ (line N)]``.
"""

# ruff: noqa: E501  (golden caregiver lines are kept whole, one per row)
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiles.loader import load_profile_bytes
from profiles.schema import Profile
from safety.limits import HARD_LIMITS, check_profile
from tests.profiles.conftest import BUILTIN_NAMES, builtin_text

_NAME = r'(?:[A-Za-z_]\w*|"(?:[^"\\]|\\.)*")'
LINE_SHAPE = re.compile(rf"^{_NAME}(?:\.{_NAME}|\[\d+\])*( = .+)?: \S.*?( \(line \d+\))?$")
TEXTS = [builtin_text(name) for name in BUILTIN_NAMES]
TOKENS = ["=", "[", "]", "[[", '"', "'", "\n", "nan", "inf", "-", "0", "60", "940", "1e999",
          "true", "2026-13-01", "chanels", "{", "}", ",", "#", "\\", "\x00", "é", "\ufeff"]  # fmt: skip


def _assert_readable_outcome(data: bytes) -> None:
    result = load_profile_bytes(
        data, "fuzz.toml", extra_checks=lambda p: check_profile(p, HARD_LIMITS)
    )
    if result.profile is not None:
        assert result.problems == []
        _assert_within_limits(result.profile)
        return
    assert result.problems
    for problem in result.problems:
        line = str(problem)
        assert LINE_SHAPE.match(line), line
        assert "Traceback" not in line and "Input should be" not in line
        assert "\n" not in line


def _assert_within_limits(profile: Profile) -> None:
    assert check_profile(profile, HARD_LIMITS) == []
    for channel in profile.channels:
        assert 10 <= channel.irradiance_mw_cm2 <= 45.45  # 50 less the ±10 % tolerance
    assert sum(c.irradiance_mw_cm2 for c in profile.channels) * profile.duty_fraction <= 45.45
    assert profile.duration_min <= 30
    assert profile.planned_fluence_total_j_cm2 <= 90


@st.composite
def mutated_builtin(draw: st.DrawFn) -> bytes:
    text = draw(st.sampled_from(TEXTS))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        insert = draw(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)))
        text = text[:start] + insert + text[end:]
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_builtin())
def test_mutated_builtins_never_raise(data: bytes) -> None:
    _assert_readable_outcome(data)


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data: bytes) -> None:
    _assert_readable_outcome(data)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TEXTS), st.sampled_from(["irradiance_mw_cm2 = ", "duration_min = ", "ramp_s = "]),
       st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True)))  # fmt: skip
def test_numbers_anywhere_are_accepted_only_within_limits(
    text: str, key: str, number: float
) -> None:
    literal = {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(number), repr(number))
    mutated = re.sub(re.escape(key) + r"\S+", key + literal, text, count=1)
    _assert_readable_outcome(mutated.encode())
