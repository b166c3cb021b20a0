"""``python -m hil.bench profiles``: how long a profile check takes on crafted files.

Owns: the crafted worst cases (``crafted_files``, also used by
tests/profiles/test_bounded_checks.py) and printing figures only, never pass/fail: the
time of ``load_profile_bytes`` with the hard limits on each crafted file at the size
cap, and on the larger files of the original report (20, 28 and 64 KB of digit runs,
52 KB of 6,500 unknown keys) both as given (refused by the cap) and with the cap lifted,
to show the checks themselves are linear.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from importlib import resources

from profiles import loader
from profiles.loader import MAX_PROFILE_BYTES, load_profile_bytes
from safety.limits import HARD_LIMITS, check_profile

BASE = resources.files("profiles").joinpath("builtin/rls-810-standard.toml").read_text("utf-8")
LIMIT = sys.get_int_max_str_digits()
BIG_INT = "x = " + "1" * (LIMIT + 1) + "\n"


def _fill(piece: str, room: int) -> str:
    return (piece * (room // len(piece) + 1))[:room]


def _sized(head: str, piece: str, tail: str, size: int) -> bytes:
    """``head`` + ``piece`` repeated + ``tail``, ``size`` bytes long (ASCII pieces)."""
    room = size - len(head.encode()) - len(tail.encode())
    return (head + _fill(piece, room) + tail).encode()


def digit_heavy(size: int) -> bytes:
    """A bare key of digit runs one short of Python's limit, then a number over it."""
    return _sized(BASE, "1" * (LIMIT - 1) + "a", " = 1\n" + BIG_INT, size)


def unknown_keys(count: int) -> bytes:
    return ("".join(f"k{i:04d}=1\n" for i in range(count)) + BASE).encode()


def crafted_files(size: int = MAX_PROFILE_BYTES) -> dict[str, bytes]:
    """Files of ``size`` bytes that make a scanner or parser work hard."""
    count = (size - len(BASE)) // 11 - 1
    keys = "".join(f"k{i:05d} = 1\n" for i in range(count)) + BASE
    return {
        "digit-heavy key": digit_heavy(size),
        "digit-heavy string": _sized(
            BASE + 'k = "', "1" * (LIMIT - 1) + "a", '"\n' + BIG_INT, size
        ),
        "underscored digits": _sized(BASE, "1_", "1\n", size),
        "distinct unknown keys": keys.encode(),
        "dotted key": _sized("", "a.", "b = 1\n", size),
        "dotted table header": _sized("[", "a.", "b]\n", size),
        "nested arrays": _sized("x = ", "[", "", size),
        "inline tables": _sized("x = ", "{a = ", "", size),
        "quotes": _sized("", '"""', "", size),
        "comment": _sized(BASE + "#", "# a = 1 [x] ", "\n", size),
        "table headers": _sized(BASE, "[[a.b]]\n", "", size),
        "escaped text": _sized(BASE + 'k = "', "\\u0041", '"\n', size),
    }


def time_check_s(data: bytes, repeat: int) -> float:
    """Median seconds of one full check (schema, hard limits) of ``data``."""
    runs = []
    for _ in range(repeat):
        start_s = time.perf_counter()
        load_profile_bytes(data, "bench.toml", extra_checks=lambda p: check_profile(p, HARD_LIMITS))
        runs.append(time.perf_counter() - start_s)
    return statistics.median(runs)


def _report_files() -> dict[str, bytes]:
    return {
        "digit-heavy 20 KB": digit_heavy(20_000),
        "digit-heavy 28 KB": digit_heavy(28_000),
        "digit-heavy 64 KB": digit_heavy(64_000),
        "6,500 unknown keys (52 KB)": unknown_keys(6500),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.bench profiles")
    parser.add_argument("--repeat", type=int, default=5, help="runs per file (median)")
    args = parser.parse_args(argv)
    print(f"profile checks, median of {args.repeat} runs, cap {MAX_PROFILE_BYTES} bytes")
    for name, data in crafted_files().items():
        print(f"  {name:28s} {len(data):7d} B  {time_check_s(data, args.repeat) * 1000:8.2f} ms")
    for name, data in _report_files().items():
        capped_s = time_check_s(data, args.repeat)
        setattr(loader, "MAX_PROFILE_BYTES", 1 << 30)  # noqa: B010 (lifted for the figure)
        try:
            uncapped_s = time_check_s(data, args.repeat)
        finally:
            setattr(loader, "MAX_PROFILE_BYTES", MAX_PROFILE_BYTES)  # noqa: B010
        print(
            f"  {name:28s} {len(data):7d} B  {capped_s * 1000:8.2f} ms refused by the cap, "
            f"{uncapped_s * 1000:8.2f} ms checked without it"
        )
    return 0
