"""The loader: bytes in, a profile or readable problem lines out, never an exception."""

# ruff: noqa: E501  (golden caregiver lines are kept whole, one per row)
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from profiles.errors import Problem
from profiles.loader import MAX_PROFILE_BYTES, load_profile, load_profile_bytes
from profiles.locator import KeyLocator, format_path, parse_path
from profiles.schema import Profile

_NAME = r'(?:[A-Za-z_]\w*|"(?:[^"\\]|\\.)*")'
LINE_SHAPE = re.compile(rf"^{_NAME}(?:\.{_NAME}|\[\d+\])*( = .+)?: \S.*?( \(line \d+\))?$")


def _lines(data: bytes, **kwargs: Any) -> list[str]:
    return [str(p) for p in load_profile_bytes(data, "rx.toml", **kwargs).problems]


def test_valid_file_result(base_text: str, write: Callable[..., Path]) -> None:
    path = write(base_text)
    result = load_profile(path)
    assert result.ok and result.problems == []
    assert result.sha256 == hashlib.sha256(base_text.encode()).hexdigest()
    assert result.source == str(path)


def test_missing_file(tmp_path: Path) -> None:
    result = load_profile(tmp_path / "nope.toml")
    assert not result.ok
    assert [str(p) for p in result.problems] == ["file: cannot be read: No such file or directory"]


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert [str(p) for p in load_profile(tmp_path).problems] == [
        "file: cannot be read: Is a directory"
    ]


def test_size_cap(base_text: str) -> None:
    padded = base_text + "#" * (MAX_PROFILE_BYTES - len(base_text.encode()))
    assert load_profile_bytes(padded.encode(), "x").ok
    assert _lines((padded + "#").encode()) == [
        "file: is larger than 16 KiB (16385 bytes); a prescription is about 1 kB"
    ]


def test_not_utf8_names_the_line(base_text: str) -> None:
    data = base_text.encode().replace(b"RLS standard, 810", b"RLS st\xe1ndard, 810")
    assert _lines(data) == ["file: is not UTF-8 text; save it as UTF-8 (line 15)"]


def test_utf8_bom_accepted(base_text: str) -> None:
    assert load_profile_bytes(b"\xef\xbb\xbf" + base_text.encode(), "x").ok


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("ramp_s = 30", "ramp_s = 30\nramp_s = 31", "file: not valid TOML: this key is given twice (line 22)"),
        ("[mode]", "[window]\n[mode]", "file: not valid TOML: this table is declared twice (line 34)"),
        ("ramp_s = 30", "ramp_s 30", 'file: not valid TOML: expected "=" after the key (line 21)'),
        ("ramp_s = 30", "ramp_s = thirty", "file: not valid TOML: this value is not valid (text needs double quotes, dates are bare) (line 21)"),
        ("issued = 2026-01-01", "issued = 2026-13-01", "file: not valid TOML: unexpected text after the value (line 17)"),
        ("ramp_s = 30", "ramp_s = 30 s", "file: not valid TOML: unexpected text after the value (line 21)"),
    ],
)  # fmt: skip
def test_toml_syntax_errors(base_text: str, old: str, new: str, expected: str) -> None:
    assert _lines(base_text.replace(old, new).encode()) == [expected]


def test_duplicate_key_at_end_of_document_gets_its_line(base_text: str) -> None:
    text = base_text + 'end = "22:00"\n'
    assert _lines(text.encode()) == [
        f"file: not valid TOML: this key is given twice (line {text.count(chr(10))})"
    ]


def test_unterminated_at_end_of_document(base_text: str) -> None:
    text = base_text + 'x = "open'
    assert _lines(text.encode()) == [
        f"file: not valid TOML: a text value is missing its closing quote (line {text.count(chr(10)) + 1})"
    ]


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x01", b"[" * 5000, b"a = " + b"[" * 5000, b"\xff\xfe"]
)
def test_odd_bytes_give_lines_not_exceptions(data: bytes) -> None:
    lines = _lines(data)
    assert lines
    assert all(LINE_SHAPE.match(line) for line in lines), lines


def test_every_problem_reported(base_text: str) -> None:
    text = (
        base_text.replace("irradiance_mw_cm2 = 40", "irradiance_mw_cm2 = nan")
        .replace("wavelength_nm = 810", "wavelength_nm = 940")
        .replace("course_weeks", "corse_weeks")
        .replace("ramp_s = 30", "ramp_s = -inf")
    )
    assert _lines(text.encode()) == [
        "ramp_s = -inf: must be a real number, not nan or inf (line 21)",
        'corse_weeks: unknown field — did you mean "course_weeks"? (line 24)',
        "channels[0].wavelength_nm = 940: must be 810 or 850 nm (line 27)",
        "channels[0].irradiance_mw_cm2 = nan: must be a real number, not nan or inf (line 28)",
    ]


def test_inline_tables_point_at_their_key(base_text: str) -> None:
    text = base_text.replace('[mode]\nkind = "cw"\n', "").replace(
        "course_weeks = 4", 'course_weeks = 4\nmode = { kind = "strobe" }'
    )
    assert _lines(text.encode()) == ['mode.kind = "strobe": must be "cw" or "pulsed" (line 25)']


class _Violation:
    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field, self.value, self.rule = field, value, rule


def test_extra_checks_tuples_and_objects(base_text: str) -> None:
    def checks(profile: Profile) -> list[object]:
        return [
            ("channels[0].irradiance_mw_cm2", 40.0, "must be below 30 mW/cm² at this site"),
            _Violation("planned_fluence_total_j_cm2", 71.40000000001, "too much"),
        ]

    assert _lines(base_text.encode(), extra_checks=checks) == [
        "channels[0].irradiance_mw_cm2 = 40: must be below 30 mW/cm² at this site (line 28)",
        "planned_fluence_total_j_cm2 = 71.4: too much",
    ]


def test_extra_checks_not_run_on_schema_failure(base_text: str) -> None:
    calls: list[Profile] = []
    text = base_text.replace("ramp_s = 30", "ramp_s = -1")
    load_profile_bytes(text.encode(), "x", extra_checks=lambda p: calls.append(p) or [])
    assert calls == []


def test_failing_extra_check_refuses(base_text: str) -> None:
    def broken(profile: Profile) -> list[object]:
        raise RuntimeError("bug")

    result = load_profile_bytes(base_text.encode(), "x", extra_checks=broken)
    assert not result.ok and result.profile is None
    assert [str(p) for p in result.problems] == [
        "file: could not be checked against the safety limits; refused"
    ]


def test_internal_error_refuses(base_text: str, mocker: Any) -> None:
    mocker.patch("profiles.loader._validate", side_effect=RuntimeError("bug"))
    result = load_profile_bytes(base_text.encode(), "x")
    assert result.profile is None
    assert [str(p) for p in result.problems] == [
        "file: could not be checked (internal error); refused"
    ]


def test_problem_str_shapes() -> None:
    assert str(Problem("a.b", "1", "rule", 3)) == "a.b = 1: rule (line 3)"
    assert str(Problem("a", None, "rule")) == "a: rule"


def test_paths_round_trip() -> None:
    loc = ("channels", 1, "irradiance_mw_cm2")
    assert format_path(loc) == "channels[1].irradiance_mw_cm2"
    assert parse_path(format_path(loc)) == loc
    assert format_path(()) == "file"


def test_locator_skips_multiline_strings() -> None:
    text = 'name = """\nduration_min = 5\n"""\nduration_min = 30\n'
    assert KeyLocator(text).line_of(("duration_min",)) == 4


def test_odd_key_names_are_quoted(base_text: str) -> None:
    text = base_text.replace("issued =", "-issued =").replace(
        "ramp_s = 30", 'ramp_s = 30\n"a\\nb" = 1'
    )
    assert _lines(text.encode()) == [
        '"-issued": unknown field — did you mean "issued"? (line 17)',
        '"a\\nb": unknown field; allowed here: channels, course_weeks, duration_min, expires, '
        "id, issued, min_interval_h, mode, name, prescriber, ramp_s, schema_version, "
        "sessions_per_week, signature, skin_temp_stop_c, window",
    ]
