"""A check is bounded: crafted worst cases at the size cap, files that are not files, the budget.

Linearity is shown with hypothesis deadlines (``DEADLINE``, generous for a shared
machine: the worst crafted file at the cap checks in about 0.1 s on a development
machine), never with a wall-clock assertion; ``python -m hil.bench profiles`` prints
the figures.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.bench.profiles import BIG_INT, LIMIT, crafted_files
from profiles import loader, regular_file
from profiles.loader import CHECK_BUDGET_S, MAX_PROFILE_BYTES, load_profile, load_profile_bytes
from safety.limits import HARD_LIMITS, check_profile
from tests.profiles.conftest import builtin_text, run_cli

DEADLINE = dt.timedelta(seconds=2)
BASE = builtin_text("rls-810-standard")


CRAFTED = crafted_files()


def _check(data: bytes) -> list[str]:
    result = load_profile_bytes(
        data, "rx.toml", extra_checks=lambda p: check_profile(p, HARD_LIMITS)
    )
    return [str(p) for p in result.problems]


@pytest.mark.parametrize("name", sorted(CRAFTED))
def test_crafted_worst_cases_are_at_the_cap(name: str) -> None:
    assert 0 < len(CRAFTED[name]) <= MAX_PROFILE_BYTES


@settings(deadline=DEADLINE, max_examples=len(CRAFTED) * 2, derandomize=True)
@given(st.sampled_from(sorted(CRAFTED)))
def test_each_crafted_file_is_checked_within_the_deadline(name: str) -> None:
    assert not any("internal error" in line for line in _check(CRAFTED[name]))


@st.composite
def adversarial(draw: st.DrawFn) -> bytes:
    """A file up to the cap built from pieces that make scanners work hard."""
    pieces = st.sampled_from(
        ["1" * 100, "1_" * 50, "a", "a.", '"', "'", "=", " ", "[", "]", "{", "}", "#",
         "\n", "x = ", "\\", "\u202e", BIG_INT, "[[channels]]\n"]
    )  # fmt: skip
    parts = draw(st.lists(st.tuples(pieces, st.integers(1, 4000)), min_size=1, max_size=8))
    text = "".join(piece * count for piece, count in parts)
    return text.encode()[:MAX_PROFILE_BYTES]


@pytest.mark.slow
@settings(deadline=DEADLINE, max_examples=60)
@given(adversarial())
def test_adversarial_files_are_checked_within_the_deadline(data: bytes) -> None:
    assert not any("internal error" in line for line in _check(data))


def test_the_digits_search_is_linear_and_names_the_field() -> None:
    """The old search backtracked on this line (34 s at 12 KiB); the field is still named."""
    text = CRAFTED["digit-heavy key"].decode()
    problem = loader._too_many_digits_problem(text)
    assert (problem.field, problem.line) == ("x", text.count("\n"))
    underscored = "a = 1" + "_1" * (LIMIT + 1) + "\n"
    assert loader._too_many_digits_problem(underscored).field == "a"
    assert loader._too_many_digits_problem('"7' + "7" * LIMIT).field == "file"
    assert str(loader._too_many_digits_problem("")) == "file: has a number with far too many digits"


# ---------------------------------------------------------------- the file itself


def test_a_file_over_the_cap_is_refused_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: 1 GiB, nothing to read quickly
    monkeypatch.setattr(regular_file.os, "open", _never("open"))
    assert [str(p) for p in load_profile(big).problems] == [
        f"file: is larger than 16 KiB ({1 << 30} bytes); a prescription is about 1 kB"
    ]


def _never(what: str) -> Callable[..., Any]:
    def fail(*args: object, **kwargs: object) -> Any:
        raise AssertionError(f"{what} was called")

    return fail


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "rx.toml"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    assert [str(p) for p in load_profile(fifo).problems] == [
        "file: is not a regular file (a named pipe); refused"
    ]


def test_a_device_is_refused_without_opening_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(regular_file.os, "open", _never("open"))
    assert [str(p) for p in load_profile("/dev/null").problems] == [
        "file: is not a regular file (a device); refused"
    ]


def test_a_file_replaced_by_a_fifo_after_the_stat_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "rx.toml"
    path.write_text(BASE)
    fifo_stat = os.stat_result((stat.S_IFIFO | 0o644, 0, 0, 1, 0, 0, 0, 0, 0, 0))
    monkeypatch.setattr(regular_file.os, "fstat", lambda fd: fifo_stat)
    assert [str(p) for p in load_profile(path).problems] == [
        "file: is not a regular file (a named pipe); refused"
    ]


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rx.toml"
    path.write_text(BASE)

    def denied(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(regular_file.os, "open", denied)  # as chmod 000 would (not for root)
    assert [str(p) for p in load_profile(path).problems] == [
        "file: cannot be read: Permission denied"
    ]


def test_profile_check_refuses_a_fifo_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NIRPAD_SITE_CONFIG", raising=False)
    fifo = tmp_path / "rx.toml"
    os.mkfifo(fifo)
    assert run_cli(["check", str(fifo)]) == 2
    assert capsys.readouterr().err == (
        f"nirpad: {fifo}: is not a regular file (a named pipe); refused\n"
    )


# ---------------------------------------------------------------- the budget


class _SlowClock:
    """A clock on which every reading is ``step_s`` later than the one before."""

    def __init__(self, step_s: float) -> None:
        self.now_s, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        self.now_s += self.step_s
        return self.now_s


def test_a_check_over_its_budget_is_refused() -> None:
    result = load_profile_bytes(BASE.encode(), "rx.toml", clock=_SlowClock(CHECK_BUDGET_S + 0.5))
    assert result.profile is None
    assert [str(p) for p in result.problems] == [
        "file: took too long to check (2.5 s, the limit is 2 s); refused: ask the clinic for "
        "a plain prescription file"
    ]


def test_a_check_within_its_budget_passes() -> None:
    assert load_profile_bytes(BASE.encode(), "rx.toml", clock=_SlowClock(CHECK_BUDGET_S)).ok
