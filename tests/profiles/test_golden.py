"""Golden tests: the exact caregiver lines agreed for refused profiles, through the CLI.

Each refused profile exits 2 and prints, on stderr, one line naming the file and then
one readable line per problem, nothing on stdout, and never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from profiles.signing import sign_profile
from tests.profiles.conftest import BUILTIN_NAMES, builtin_text, run_cli

# The shipped built-ins carry fixed dates: read them on a day they are valid.
pytestmark = pytest.mark.usefixtures("builtin_wall_clock")

GOLDEN: dict[str, tuple[tuple[str, str], list[str]]] = {
    "60 mW/cm²": (
        ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 60"),
        [
            "channels = 60: the channels together (sum × duty cycle) must be at most "
            "45.45 mW/cm² (50 mW/cm² less the ±10 % output tolerance) (line 26)",
            "channels[0].irradiance_mw_cm2 = 60: must be between 10 and 45.45 mW/cm² "
            "(50 mW/cm² less the ±10 % output tolerance) (line 28)",
            "planned_fluence_total_j_cm2 = 107.1: the planned dose per session must be at "
            "most 90 J/cm²",
        ],
    ),
    "940 nm": (
        ("wavelength_nm = 810", "wavelength_nm = 940"),
        ["channels[0].wavelength_nm = 940: must be 810 or 850 nm (line 27)"],
    ),
    "45 min": (
        ("duration_min = 30", "duration_min = 45"),
        [
            "duration_min = 45: must be more than 0 and at most 30 min (line 20)",
            "planned_fluence_total_j_cm2 = 107.4: the planned dose per session must be at "
            "most 90 J/cm²",
        ],
    ),
    "misspelled key": (
        ("sessions_per_week", "sesions_per_week"),
        ['sesions_per_week: unknown field — did you mean "sessions_per_week"? (line 22)'],
    ),
    "broken TOML line": (
        ('name = "RLS standard, 810 nm"', 'name = "RLS standard, 810 nm'),
        ["file: not valid TOML: a text value is missing its closing quote (line 15)"],
    ),
    "nan irradiance": (
        ("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = nan"),
        ["channels[0].irradiance_mw_cm2 = nan: must be a real number, not nan or inf (line 28)"],
    ),
    "expired": (
        ("issued = 2026-01-01\nexpires = 2028-01-01", "issued = 2020-01-01\nexpires = 2021-01-01"),
        ["expires = 2021-01-01: this prescription expired on 2021-01-01 (line 18)"],
    ),
}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_refused_with_exact_lines(
    case: str, base_text: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (old, new), expected = GOLDEN[case]
    assert old in base_text
    path = write(base_text.replace(old, new))
    assert run_cli(["check", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"nirpad: {path} cannot be used on this pad:"] + [
        f"  {line}" for line in expected
    ]
    assert "Traceback" not in err


def test_tampered_signature_refused_with_one_line(
    base_text: str,
    private_key: Ed25519PrivateKey,
    site_file: Path,
    write: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    signed = sign_profile(base_text, private_key, "clinic-a")
    assert run_cli(["check", str(write(signed)), "--site-config", str(site_file)]) == 0
    capsys.readouterr()
    tampered = signed.replace("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = 41")
    path = write(tampered, "tampered.toml")
    assert run_cli(["check", str(path), "--site-config", str(site_file)]) == 2
    line = tampered.splitlines().index("[signature]") + 4  # value = ... is the 3rd key
    assert capsys.readouterr().err.splitlines() == [
        f"nirpad: {path} cannot be used on this pad:",
        "  signature.value: does not match the profile: it was changed after signing, "
        f"or signed with another key (line {line})",
    ]


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_check_accepts_builtins(
    name: str, write: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(builtin_text(name), f"{name}.toml")
    assert run_cli(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"{path}: OK")
    assert "planned 71.4 J/cm² in total" in out
    assert "3 sessions a week, at least 20 h apart, for 4 weeks" in out
