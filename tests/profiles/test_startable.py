"""What installs can start: every number bounded, whole numbers where the board needs them,
free text that prints as written, and ``profile check``/``show`` judging as the controller.
"""

# ruff: noqa: E501  (golden caregiver lines are kept whole, one per row)
from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware_host.profile_commands import NominalPad, start_rules, validate_and_install
from profiles.loader import load_profile_bytes
from profiles.signing import sign_profile
from profiles.store import install_atomic
from profiles.summary import NOT_CHECKED
from safety.calibration import CalibrationError
from safety.faults import Outcome
from safety.ledger import Ledger
from safety.ledger_events import EventKind
from safety.limits import HARD_LIMITS
from tests.profiles.conftest import public_b64, run_cli

# The shipped built-ins carry fixed dates: read them on a day they are valid.
pytestmark = pytest.mark.usefixtures("builtin_wall_clock")

DOCS = Path(__file__).resolve().parents[2] / "docs" / "profiles.md"
PULSED = 'kind = "pulsed"\npulse_hz = 10\nduty_pct = 50'

BOUNDS = {
    "interval 1e308": ("min_interval_h = 20", "min_interval_h = 1e308", "min_interval_h = 1e+308: must be at most 168 h (line 23)"),
    "interval 1e14": ("min_interval_h = 20", "min_interval_h = 1e14", "min_interval_h = 100000000000000.0: must be at most 168 h (line 23)"),
    "interval over a week": ("min_interval_h = 20", "min_interval_h = 169", "min_interval_h = 169: must be at most 168 h (line 23)"),
    "course over a year": ("course_weeks = 4", "course_weeks = 53", "course_weeks = 53: must be at most 52 weeks (line 24)"),
    "expiry over two years": ("expires = 2028-01-01", "expires = 2028-01-02", "expires = 2028-01-02: must be at most 2 years after issued (2028-01-01) (line 18)"),
    "duration over two hours": ("duration_min = 30", "duration_min = 121", "duration_min = 121: must be at most 120 min (line 20)"),
    "duration huge": ("duration_min = 30", "duration_min = 1" + "0" * 30, "duration_min = 1" + "0" * 30 + ": must be at most 120 min (line 20)"),
    "ramp over ten minutes": ("ramp_s = 30", "ramp_s = 601", "ramp_s = 601: must be at most 600 s (line 21)"),
    "sessions over a day": ("sessions_per_week = 3", "sessions_per_week = 8", "sessions_per_week = 8: must be at most 7 (line 22)"),
    "irradiance 1e308": ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 1e308", "channels[0].irradiance_mw_cm2 = 1e+308: must be at most 1000 mW/cm² (line 28)"),
    "pulse over 1 kHz": ('kind = "cw"', PULSED.replace("10", "1001"), "mode.pulse_hz = 1001: must be at most 1000 Hz (line 32)"),
    "pulse 10.7": ('kind = "cw"', PULSED.replace("10", "10.7"), "mode.pulse_hz = 10.7: must be a whole number (the board has no fractions) (line 32)"),
    "duty 50.5": ('kind = "cw"', PULSED.replace("50", "50.5"), "mode.duty_pct = 50.5: must be a whole number (the board has no fractions) (line 33)"),
    "duty 0": ('kind = "cw"', PULSED.replace("50", "0"), "mode.duty_pct = 0: must be at least 1 % (line 33)"),
    "skin stop 0.5": ("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 0.5", "skin_temp_stop_c = 0.5: must be at least 35 °C (line 25)"),
    "skin stop 46": ("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 46", "skin_temp_stop_c = 46: must be at most 45 °C (line 25)"),
    "wavelength 810.0": ("wavelength_nm = 810", "wavelength_nm = 810.0", "channels[0].wavelength_nm = 810.0: must be a whole number, without a decimal point (line 27)"),
    "wavelength true": ("wavelength_nm = 810", "wavelength_nm = true", "channels[0].wavelength_nm = true: must be a whole number, not true or false (line 27)"),
    "schema version 1.0": ("schema_version = 1", "schema_version = 1.0", "schema_version = 1.0: must be a whole number, without a decimal point (line 13)"),
    "name with ESC": ('name = "RLS standard, 810 nm"', 'name = "RLS \\u001b[2J"', 'name = "RLS \\u001b[2J": must not contain control characters (found U+001B) (line 15)'),
    "name with bidi": ('name = "RLS standard, 810 nm"', 'name = "RLS \\u202e"', 'name = "RLS \\u202e": must not contain control characters (found U+202E) (line 15)'),
    "prescriber with C1": ('prescriber = "nirpad built-in (demo default)"', 'prescriber = "Dr \\u009b"', 'prescriber = "Dr \\u009b": must not contain control characters (found U+009B) (line 16)'),
}  # fmt: skip

STARTABLE = {
    "pulse 10.0": ('kind = "cw"', PULSED.replace("10", "10.0")),
    "skin stop 35": ("course_weeks = 4", "course_weeks = 4\nskin_temp_stop_c = 35"),
    "interval a week": ("min_interval_h = 20", "min_interval_h = 168"),
    "course a year": ("course_weeks = 4", "course_weeks = 52"),
    "expiry two years": ("expires = 2028-01-01", "expires = 2028-01-01"),
    "name with accents": ('name = "RLS standard, 810 nm"', 'name = "Jambes sans repos, é"'),
}


@pytest.fixture(autouse=True)
def _no_controller(mocker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    return mocker.patch("firmware_host.control_client.send", return_value=None)


@pytest.mark.parametrize("case", sorted(BOUNDS))
def test_out_of_bounds_is_refused_readably(case: str, base_text: str) -> None:
    old, new, expected = BOUNDS[case]
    assert old in base_text
    result = load_profile_bytes(base_text.replace(old, new).encode(), "rx.toml")
    assert result.profile is None
    assert [str(p) for p in result.problems] == [expected]


@pytest.mark.parametrize("case", sorted(STARTABLE))
def test_within_bounds_installs_and_passes_the_start_rules(case: str, base_text: str) -> None:
    old, new = STARTABLE[case]
    result = load_profile_bytes(
        base_text.replace(old, new).encode(), "rx.toml", extra_checks=start_rules(HARD_LIMITS)
    )
    assert result.problems == []


def test_the_plan_is_checked_against_the_pad(base_text: str) -> None:
    class Only850(NominalPad):
        def channel_for_wavelength(self, wavelength_nm: int) -> int:
            if wavelength_nm != 850:
                raise CalibrationError("the board has no 810 nm channel", channel=-1, value=810)
            return 1

    result = load_profile_bytes(
        base_text.encode(), "rx.toml", extra_checks=start_rules(HARD_LIMITS, Only850())
    )
    assert [str(p) for p in result.problems] == [
        "file: The pad cannot do this prescription: the board has no 810 nm channel."
    ]
    assert NominalPad().channel_for_wavelength(850) == 1
    with pytest.raises(CalibrationError, match="no 940 nm channel"):
        NominalPad().channel_for_wavelength(940)


def test_check_never_prints_a_control_character(
    base_text: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = base_text.replace(
        "course_weeks = 4", 'course_weeks = 4\n"evil\\u001b]0;x\\u0007\\u202e" = 1'
    )
    assert run_cli(["check", str(write(text, "rx\x1b[2J.toml"))]) == 2
    out, err = capsys.readouterr()
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]", out + err), repr(err)
    assert '"evil\\u001b]0;x\\u0007\\u202e": unknown field' in err


def test_check_says_it_would_start_and_by_which_rules(
    base_text: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(base_text)
    assert run_cli(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: OK, it would start on this pad\n")
    assert "judged by: the hard limits, today's date, and a nominal pad" in out


# ---------------------------------------------------------------- signatures


def _signed(base_text: str, key: Ed25519PrivateKey) -> str:
    return sign_profile(base_text, key, "clinic-a")


def test_signed_file_without_trusted_keys_is_taken_as_unsigned_as_the_docs_say(
    base_text: str,
    private_key: Ed25519PrivateKey,
    write: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(_signed(base_text, private_key))
    assert run_cli(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"signature: signed (clinic-a), not checked: {NOT_CHECKED}" in out
    assert NOT_CHECKED in " ".join(DOCS.read_text(encoding="utf-8").split())


def test_signed_file_with_trusted_keys_says_checked(
    base_text: str,
    private_key: Ed25519PrivateKey,
    site_file: Path,
    write: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(_signed(base_text, private_key))
    assert run_cli(["check", str(path), "--site-config", str(site_file)]) == 0
    assert "signature: signed (clinic-a), checked" in capsys.readouterr().out


def test_signing_required_without_trusted_keys_says_so(
    base_text: str,
    private_key: Ed25519PrivateKey,
    tmp_path: Path,
    write: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = tmp_path / "site.toml"
    site.write_text("[signing]\nrequire_signed = true\n")
    path = write(_signed(base_text, private_key))
    assert run_cli(["check", str(path), "--site-config", str(site)]) == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[1]
        .startswith(
            '  signature.key_id = "clinic-a": is not a trusted prescriber key on this device '
            "(it trusts no clinic keys: add them to [signing] in site.toml)"
        )
    )


# ---------------------------------------------------------------- show, as the controller


def test_show_refuses_a_hand_edited_file_over_the_limits(
    tmp_path: Path, base_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    install_atomic(
        tmp_path, base_text.replace("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 60").encode()
    )
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 3
    assert (
        "channels[0].irradiance_mw_cm2 = 60: must be between 10 and 45.45 mW/cm²"
        in capsys.readouterr().err
    )


def test_show_rechecks_the_signature_and_the_site_limits(
    tmp_path: Path,
    base_text: str,
    private_key: Ed25519PrivateKey,
    capsys: pytest.CaptureFixture[str],
) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        f'[limits]\nirradiance_max_mw_cm2 = 33\n[signing.trusted_keys]\nclinic-a = "{public_b64(private_key)}"\n'
    )
    install_atomic(
        tmp_path, _signed(base_text, private_key).replace("= 20\n", "= 21\n", 1).encode()
    )
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 3  # <state_dir>/site.toml
    err = capsys.readouterr().err
    assert "irradiance_mw_cm2 = 40: must be between 10 and 30 mW/cm²" in err
    assert "signature.value: does not match the profile" in err


def _one_session(state_dir: Path, at: dt.datetime) -> None:
    with Ledger.open(state_dir, lambda: at) as ledger:
        sid = ledger.begin_session(
            "rls-810-standard", "ab" * 32, {810: 71.4}, planned_duration_s=1800
        )
        ledger.end_session(sid, Outcome.COMPLETED, {810: 71.4})


def test_show_times_are_local_without_microseconds_and_the_course_is_shown(
    tmp_path: Path, base_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate_and_install(tmp_path, base_text.encode(), "rx.toml", None).ok
    _one_session(tmp_path, dt.datetime(2026, 11, 20, 18, 30, tzinfo=dt.UTC))
    last = dt.datetime.now(dt.UTC).replace(microsecond=123456) - dt.timedelta(hours=1)
    _one_session(tmp_path, last)  # the interval runs: the schedule blocks until it ends
    with Ledger.open(tmp_path, lambda: dt.datetime.now(dt.UTC)) as ledger:
        when = ledger.next_start_allowed_at(20, 3)  # the controller's own reading
    assert when is not None and when.microsecond
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    local = when.astimezone().replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    assert f"next session allowed: {local:%Y-%m-%d %H:%M}\n" in out
    assert "course: 4 weeks from 2026-11-20, until the day before 2026-12-18" in out
    assert "status: valid today" in out
    assert run_cli(["show", "--state-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rounded_up = when.replace(microsecond=0) + dt.timedelta(seconds=1)
    assert report["next_start_allowed_at"] == rounded_up.isoformat()
    assert report["course_first_session"] == "2026-11-20"


def test_show_gives_no_next_session_time_after_the_course_ended(
    tmp_path: Path, base_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The schedule's time would tell the patient the pad starts then; it will not."""
    assert validate_and_install(tmp_path, base_text.encode(), "rx.toml", None).ok
    _one_session(tmp_path, dt.datetime(2026, 1, 5, 18, 30, tzinfo=dt.UTC))
    _one_session(tmp_path, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))  # schedule blocks
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 0
    ended = "The prescribed course of 4 weeks from the first session (2026-01-05) ended on 2026-02-02. Ask the clinic to renew the prescription."
    out = capsys.readouterr().out
    assert f"status: {ended}\n" in out
    assert f"next session allowed: none until this is resolved: {ended}\n" in out
    assert run_cli(["show", "--state-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["next_start_allowed_at"] == f"none until this is resolved: {ended}"
    assert report["next_start_local"] == report["next_start_allowed_at"]


def test_show_gives_no_next_session_time_while_the_record_refuses(
    tmp_path: Path, base_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clock jump nobody confirmed: the prescription is valid, the interval runs, and
    still no start comes until a caregiver confirms the clock."""
    assert validate_and_install(tmp_path, base_text.encode(), "rx.toml", None).ok
    _one_session(tmp_path, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    with Ledger.open(tmp_path, lambda: dt.datetime.now(dt.UTC)) as ledger:
        ledger.record_event(EventKind.CLOCK_JUMP, "ahead by 2 days")
    assert run_cli(["show", "--state-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "status: valid today\n" in out
    assert "next session allowed: none until this is resolved: The clock moved ahead" in out


def test_show_gives_no_next_session_time_for_an_expired_prescription(
    tmp_path: Path, base_text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate_and_install(tmp_path, base_text.encode(), "rx.toml", None).ok
    _one_session(tmp_path, dt.datetime.now(dt.UTC) - dt.timedelta(hours=3))
    with time_machine.travel(dt.datetime(2028, 1, 1, 12, tzinfo=dt.UTC), tick=False):
        assert run_cli(["show", "--state-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["validity_problem"] == "This prescription expired on 2028-01-01."
    assert report["next_start_local"] == (
        "none until this is resolved: This prescription expired on 2028-01-01."
    )


def test_show_counts_the_course_from_the_patients_local_date(
    builtin_wall_clock: None,
    new_york: None,
    tmp_path: Path,
    base_text: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Day 1 at 21:30 EST on 4 January is 02:30 UTC on the 5th: the course starts on the
    4th, as the start guard and the course follow-up count it (the zone is set after the
    built-ins' wall clock, which sets its own)."""
    assert validate_and_install(tmp_path, base_text.encode(), "rx.toml", None).ok
    first = dt.datetime(2026, 1, 5, 2, 30, tzinfo=dt.UTC)
    with Ledger.open(tmp_path, lambda: first) as ledger:
        sid = ledger.begin_session(
            "rls-810-standard", "ab" * 32, {810: 71.4}, planned_duration_s=1800
        )
        ledger.end_session(sid, Outcome.COMPLETED, {810: 71.4})
    assert run_cli(["show", "--state-dir", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["course_first_session"] == "2026-01-04"
    assert "(2026-01-04) ended on 2026-02-01" in report["course_problem"]


def test_install_reads_the_date_from_the_pads_clock_as_the_start_guard_does(
    base_text: str, tmp_path: Path
) -> None:
    """The dates are checked on the day of the clock the install is recorded with (UTC,
    as ``safety.start_guards`` reads it), not the host's local calendar."""
    text = base_text.replace("issued = 2026-01-01", "issued = 2030-01-01")
    text = text.replace("expires = 2028-01-01", "expires = 2031-01-01").encode()

    def at(*when: int) -> Callable[[], dt.datetime]:
        return lambda: dt.datetime(*when, tzinfo=dt.UTC)

    early = validate_and_install(tmp_path, text, "rx.toml", None, wall_clock=at(2029, 12, 31, 23))
    assert not early.ok
    assert any("issued" in line for line in early.problems), early
    assert validate_and_install(tmp_path, text, "rx.toml", None, wall_clock=at(2030, 1, 1)).ok
    late = validate_and_install(tmp_path, text, "rx.toml", None, wall_clock=at(2031, 1, 1))
    assert not late.ok
