"""The shipped built-in prescriptions (``profiles.shipped``): read by id, and dated from a
given day for what runs on any date (the demo, child processes in the tests)."""

from __future__ import annotations

import datetime as dt

import pytest

from hil.rigs.clock import WALL_START
from profiles.loader import load_profile_bytes
from profiles.shipped import BUILTIN_IDS, DATED_VALID_DAYS, builtin_text, dated_from

AFTER_EXPIRY = dt.date(2028, 2, 1)  # after every shipped built-in's expiry


@pytest.mark.parametrize("profile_id", BUILTIN_IDS)
def test_the_tests_day_for_the_builtins_is_inside_each_ones_dates(profile_id: str) -> None:
    """The in-process rigs, and ``builtin_wall_clock``, start on this day: a re-issued
    built-in must cover it."""
    result = load_profile_bytes(builtin_text(profile_id).encode(), f"{profile_id}.toml")
    assert result.ok and result.profile is not None, result.problems
    assert result.profile.is_valid_on(WALL_START.date())
    assert result.profile.id == profile_id


def test_an_unknown_builtin_is_named_with_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match="no built-in profile 'rls-905'; there are rls-810"):
        builtin_text("rls-905")


@pytest.mark.parametrize("profile_id", BUILTIN_IDS)
def test_a_dated_copy_is_valid_on_its_day_even_after_the_shipped_expiry(profile_id: str) -> None:
    shipped = load_profile_bytes(builtin_text(profile_id).encode(), "shipped.toml").profile
    assert shipped is not None and not shipped.is_valid_on(AFTER_EXPIRY)
    text = dated_from(builtin_text(profile_id), AFTER_EXPIRY)
    result = load_profile_bytes(text.encode(), f"{profile_id}.toml")
    assert result.ok and result.profile is not None, result.problems
    rx = result.profile
    assert rx.is_valid_on(AFTER_EXPIRY)
    assert rx.issued == dt.date(2028, 1, 31)
    assert rx.expires == rx.issued + dt.timedelta(days=DATED_VALID_DAYS)
    assert rx.model_dump(exclude={"issued", "expires"}) == shipped.model_dump(
        exclude={"issued", "expires"}
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("issued = 2026-01-01\n", ""), "expected one 'issued = YYYY-MM-DD' line, found 0"),
        (("expires = 2028-01-01", "expires = 2028-01-01\nexpires = 2028-01-01"), "found 2"),
    ],
)
def test_a_text_without_one_plain_date_line_is_not_dated(
    edit: tuple[str, str], message: str
) -> None:
    text = builtin_text("rls-810-standard")
    assert edit[0] in text
    with pytest.raises(ValueError, match=message):
        dated_from(text.replace(*edit), AFTER_EXPIRY)
