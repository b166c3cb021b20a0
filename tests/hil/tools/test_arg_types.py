"""The engineer's commands refuse counts and lengths that would end in a traceback."""

from __future__ import annotations

import argparse

import pytest

from hil.tools.arg_types import at_least, positive, probability


@pytest.mark.parametrize("text", ["0", "-3", "abc", "1.5", "nan"])
def test_a_count_below_its_minimum_or_not_whole_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        at_least(1)(text)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "x"])
def test_a_length_must_be_a_finite_number_above_zero(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive(text)


@pytest.mark.parametrize("text", ["-0.1", "1.01", "nan", "x"])
def test_a_probability_is_from_zero_to_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        probability(text)


def test_good_values_pass() -> None:
    assert (at_least(2)("2"), positive("0.5"), probability("0"), probability("1")) == (
        2, 0.5, 0.0, 1.0,
    )  # fmt: skip
