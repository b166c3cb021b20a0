"""The site limits file: tighten only, refused with a readable reason otherwise."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from profiles.schema import MIN_INTERVAL_MAX_H
from safety.errors import LimitError, SiteLimitsError
from safety.limits import HARD, Limits, load_site_limits
from tests.profiles.site_file_fixture import REFUSED_KINDS, refused_site_file

INT_LIMITS = {"sessions_per_week_max", "lease_max_ms", "pulse_hz_min", "pulse_hz_max"} | {
    "duty_pct_min",
    "duty_pct_max",
}
RAISE_TO_TIGHTEN = {"irradiance_min_mw_cm2", "min_interval_h", "sensor_valid_min_c"} | {
    "pulse_hz_min",
    "duty_pct_min",
}
ALL_LIMITS = [f.name for f in dataclasses.fields(Limits)]


def tighter(name: str) -> float:
    hard: float = getattr(HARD, name)
    if name in RAISE_TO_TIGHTEN:
        return hard + 1
    return hard - 1 if name in INT_LIMITS else hard * 0.99


def looser(name: str) -> float:
    hard: float = getattr(HARD, name)
    if name in RAISE_TO_TIGHTEN:
        return hard - 1
    return hard + 1 if name in INT_LIMITS else hard * 1.1 + 0.5


def site_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_the_hard_limits() -> None:
    assert load_site_limits(None) is HARD


def test_a_file_without_a_limits_table_means_the_hard_limits(tmp_path: Path) -> None:
    path = site_file(tmp_path, '[signing]\nkeys = ["abc"]\n')
    assert load_site_limits(path) == HARD


def test_the_set_of_limits_is_the_design_table() -> None:
    assert len(ALL_LIMITS) == 22
    assert set(INT_LIMITS) == {f.name for f in dataclasses.fields(Limits) if f.type == "int"}


@pytest.mark.parametrize("name", ALL_LIMITS)
def test_each_limit_can_be_tightened(tmp_path: Path, name: str) -> None:
    value = tighter(name)
    path = site_file(tmp_path, f"[signing]\nx = 1\n\n[limits]\n{name} = {value!r}\n")
    limits = load_site_limits(path)
    assert getattr(limits, name) == value
    assert dataclasses.replace(limits, **{name: getattr(HARD, name)}) == HARD


@pytest.mark.parametrize("name", ALL_LIMITS)
def test_loosening_any_limit_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    value = looser(name)
    path = site_file(tmp_path, f"[limits]\n{name} = {value!r}\n")
    with pytest.raises(LimitError) as caught:
        load_site_limits(path)
    error = caught.value
    assert isinstance(error, SiteLimitsError)
    assert error.limit == name
    assert (error.asked, error.hard) == (value, getattr(HARD, name))
    assert name in str(error)
    assert "would loosen the hard limit" in str(error)
    assert f"{getattr(HARD, name):g}" in str(error)


def test_the_loosening_message_reads_well(tmp_path: Path) -> None:
    path = site_file(tmp_path, "[limits]\nirradiance_max_mw_cm2 = 60\n")
    with pytest.raises(SiteLimitsError) as caught:
        load_site_limits(path)
    assert str(caught.value) == (
        f"In {path}, [limits] irradiance_max_mw_cm2 = 60 mW/cm² would loosen the hard limit "
        "of 50 mW/cm². A site may only tighten it (50 mW/cm² or lower)."
    )


def test_loosening_a_minimum_says_higher(tmp_path: Path) -> None:
    path = site_file(tmp_path, "[limits]\nmin_interval_h = 12\n")
    with pytest.raises(SiteLimitsError, match=r"\(20 h or higher\)"):
        load_site_limits(path)


def test_equal_to_hard_is_allowed(tmp_path: Path) -> None:
    path = site_file(tmp_path, "[limits]\nirradiance_max_mw_cm2 = 50\nlease_max_ms = 500\n")
    assert load_site_limits(path) == HARD


@pytest.mark.parametrize(
    ("key", "hint"),
    [
        ("irradiance_max_mw_cm", " Did you mean 'irradiance_max_mw_cm2'?"),
        ("colour", ""),
    ],
)
def test_unknown_keys_are_refused_with_a_suggestion(tmp_path: Path, key: str, hint: str) -> None:
    path = site_file(tmp_path, f"[limits]\n{key} = 40\n")
    with pytest.raises(SiteLimitsError) as caught:
        load_site_limits(path)
    assert str(caught.value) == f"In {path}, [limits] has an unknown limit '{key}'.{hint}"
    assert caught.value.limit == key


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('irradiance_max_mw_cm2 = "40"', "must be a number"),
        ("irradiance_max_mw_cm2 = true", "must be a number"),
        ("irradiance_max_mw_cm2 = [40]", "must be a number"),
        ("sessions_per_week_max = 3.0", "must be a whole number"),
        ("sessions_per_week_max = false", "must be a whole number"),
        ("irradiance_max_mw_cm2 = nan", "must be a finite number"),
        ("irradiance_max_mw_cm2 = -inf", "must be a finite number"),
        ("irradiance_min_mw_cm2 = inf", "must be a finite number"),
        ("irradiance_max_mw_cm2 = 0", "must be more than 0"),
        ("telemetry_stale_s = -0.1", "must be more than 0"),
    ],
)
def test_wrong_types_and_values_are_refused(tmp_path: Path, line: str, words: str) -> None:
    path = site_file(tmp_path, f"[limits]\n{line}\n")
    with pytest.raises(SiteLimitsError, match=words) as caught:
        load_site_limits(path)
    assert caught.value.limit == line.split()[0]


@pytest.mark.parametrize(
    ("lines", "limit"),
    [
        ("skin_temp_stop_c = 39", "skin_temp_warn_c"),
        ("irradiance_min_mw_cm2 = 30\nirradiance_max_mw_cm2 = 20", "irradiance_min_mw_cm2"),
        ("pulse_hz_min = 100\npulse_hz_max = 50", "pulse_hz_min"),
    ],
)
def test_pairs_that_nothing_could_satisfy_are_refused(
    tmp_path: Path, lines: str, limit: str
) -> None:
    path = site_file(tmp_path, f"[limits]\n{lines}\n")
    with pytest.raises(SiteLimitsError, match="nothing could satisfy both") as caught:
        load_site_limits(path)
    assert caught.value.limit == limit


def test_a_minimum_above_the_prescribable_maximum_is_refused(tmp_path: Path) -> None:
    # 11 mW/cm² less the ±10 % tolerance is 10: a minimum of 10 still fits, 10.5 does not
    fits = site_file(tmp_path, "[limits]\nirradiance_max_mw_cm2 = 11\n")
    assert load_site_limits(fits).prescribable_max_mw_cm2 == 10.0
    path = site_file(
        tmp_path, "[limits]\nirradiance_max_mw_cm2 = 11\nirradiance_min_mw_cm2 = 10.5\n"
    )
    with pytest.raises(SiteLimitsError, match="nothing could satisfy both") as caught:
        load_site_limits(path)
    assert caught.value.limit == "irradiance_min_mw_cm2"
    assert "(10 mW/cm²: irradiance_max_mw_cm2 less the ±10 % output tolerance)" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"[limits\nx = 1\n", "is not valid TOML"),
        (b'[limits]\nname = "\xff"\n', "is not valid TOML"),
        (b"limits = 5\n", "'limits' must be a table"),
    ],
)
def test_a_broken_file_is_refused_not_a_traceback(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "site.toml"
    path.write_bytes(content)
    with pytest.raises(SiteLimitsError, match=words) as caught:
        load_site_limits(path)
    assert caught.value.limit == "[limits]"
    assert caught.value.path == path


@pytest.mark.parametrize(
    ("line", "limit", "words"),
    [
        (  # tomllib itself refuses it, with a bare ValueError naming no key
            f"session_max_min = {'1' * 5000}",
            "session_max_min",
            "session_max_min (line 2) is a number with far too many digits.",
        ),
        (  # read, but too large for a float: OverflowError in math.isfinite
            f"session_max_min = {'1' * 400}",
            "session_max_min",
            "[limits] session_max_min is far too large a number (400 digits).",
        ),
        (
            f"sessions_per_week_max = {'9' * 400}",
            "sessions_per_week_max",
            "[limits] sessions_per_week_max is far too large a number (400 digits).",
        ),
        (
            f"min_interval_h = {'2' * 400}",
            "min_interval_h",
            "[limits] min_interval_h is far too large a number (400 digits).",
        ),
        ("session_max_min = 1e999", "session_max_min", "session_max_min = inf: must be a finite"),
    ],
    ids=["5000-digits", "400-digits", "400-digits-whole", "400-digits-raise", "1e999"],
)
def test_overlong_numbers_are_refused_naming_the_file_and_limit(
    tmp_path: Path, line: str, limit: str, words: str
) -> None:
    path = site_file(tmp_path, f"[limits]\n{line}\n")
    with pytest.raises(SiteLimitsError) as caught:
        load_site_limits(path)
    assert str(caught.value).startswith(f"In {path}, ")
    assert words in str(caught.value)
    assert (caught.value.limit, caught.value.path) == (limit, path)


def test_an_overlong_number_in_another_table_is_refused_naming_it(tmp_path: Path) -> None:
    path = site_file(tmp_path, f"[limits]\nsession_max_min = 20\n[ledger]\nx = {'7' * 5000}\n")
    with pytest.raises(SiteLimitsError) as caught:
        load_site_limits(path)
    assert str(caught.value) == f"In {path}, x (line 4) is a number with far too many digits."
    assert caught.value.limit == "[limits]"


def test_a_site_interval_above_a_week_is_refused_as_the_schema_refuses_it(
    tmp_path: Path,
) -> None:
    """No prescription may ask for more than a week between sessions (the schema's
    bound), so a site minimum above it would refuse every prescription."""
    week = site_file(tmp_path, f"[limits]\nmin_interval_h = {MIN_INTERVAL_MAX_H}\n")
    assert load_site_limits(week).min_interval_h == MIN_INTERVAL_MAX_H == 168
    path = site_file(tmp_path, "[limits]\nmin_interval_h = 168.5\n")
    with pytest.raises(SiteLimitsError) as caught:
        load_site_limits(path)
    assert str(caught.value) == (
        f"In {path}, [limits] min_interval_h = 168.5 h: must be at most 168 h (a week), "
        "the longest interval a prescription may ask for."
    )
    assert (caught.value.limit, caught.value.asked) == ("min_interval_h", 168.5)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(SiteLimitsError, match="Cannot read the site limits file") as caught:
        load_site_limits(path)
    assert "No such file" in str(caught.value)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SiteLimitsError, match="Cannot read"):
        load_site_limits(tmp_path)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("kind", REFUSED_KINDS)
def test_the_site_file_readers_refusals_are_site_limits_errors(tmp_path: Path, kind: str) -> None:
    """A FIFO (which would hang the boot), a directory, a file over 64 KiB, or one
    others may write (and so change the limits in) is refused naming the file."""
    path, words = refused_site_file(tmp_path, kind)
    with pytest.raises(SiteLimitsError) as caught:
        load_site_limits(path)
    assert str(caught.value).startswith(f"Cannot read the site limits file {path}: {words}")
    assert (caught.value.limit, caught.value.path) == ("[limits]", path)


def test_a_group_writable_file_is_read(tmp_path: Path) -> None:
    """umask 002 makes every file 0664; only a file others may write is refused."""
    path = site_file(tmp_path, "[limits]\nsession_max_min = 20\n")
    path.chmod(0o664)
    assert load_site_limits(path).session_max_min == 20


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from([n for n in ALL_LIMITS if n not in INT_LIMITS]),
    factor=st.floats(min_value=0.01, max_value=3.0),
)
def test_any_float_value_is_accepted_exactly_when_it_is_not_looser(
    tmp_path_factory: pytest.TempPathFactory, name: str, factor: float
) -> None:
    hard = getattr(HARD, name)
    value = (hard + 1.0) * factor
    path = tmp_path_factory.mktemp("site") / "site.toml"
    path.write_text(f"[limits]\n{name} = {value!r}\n", encoding="utf-8")
    loosens = value < hard if name in RAISE_TO_TIGHTEN else value > hard
    try:
        limits = load_site_limits(path)
    except SiteLimitsError as error:
        assert loosens or "nothing could satisfy" in str(error)
    else:
        assert not loosens
        assert getattr(limits, name) == value
