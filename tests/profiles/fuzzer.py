"""The profile-loader fuzzer: mutated profile TOML, and the oracle that judges each outcome.

Owns: the mutators (lines deleted, duplicated, swapped, moved or commented out; a value
replaced by an odd literal; a key misspelt; stray TOML tokens; truncation; CRLF line
ends; invalid UTF-8; random bytes and random TOML-ish text), the one oracle
(``judge_profile``) and a seeded run (``fuzz_profiles``). Inputs go through the CLI's own
path (``cli_check``: ``firmware_host.profile_commands.check_bytes``, the path of ``nirpad
profile check`` and ``install``). The oracle never raises on a finding; it counts it in
a ``ProfileFuzzReport``, whose ``failures()`` a test asserts empty.

The oracle: no exception; a profile comes back if and only if there are no problems;
an accepted profile passes ``safety.limits.check_profile`` and a re-check by hand from
the numbers of DESIGN.md §6; a refusal has at least one problem, each one line of at most
``MAX_LINE_CHARS`` shaped ``field[ = value]: rule[ (line N)]``, with no traceback and no
pydantic wording, and never only "could not be checked (internal error)".

The tests are in test_fuzz.py; docs/reliability.md describes the long run. Does not own
the loader or the limits (``profiles``, ``safety.limits``): it only feeds them.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Final

from tests.profiles.conftest import BUILTIN_NAMES, builtin_text

FUZZ_TODAY: Final = dt.date(2026, 6, 1)  # inside every built-in's validity
NUMBERS: Final = ("nan", "inf", "-inf", "+nan", "-0.0", "0", "-1", "-30", "1e308", "1e999",
                  "5e-324", "9" * 30, "1" + "0" * 5000, "0x7fffffff", "30.5", "60", "940",
                  "10", "50", "50.0001", "9.999", "20", "19.99", "7", "8", "1_000", "true",
                  '"30"', "[30]", "{}", "2026-01-01", "12:00:00")  # fmt: skip
TOKENS: Final = ("=", "[", "]", "[[", '"', "'", "\\", "#", "{", "}", ",", "\x00", "\t", "é",
                 "\ufeff", "\n", "\r\n", "\u202e", "[[channels]]", "[mode]", "chanels",
                 "x.y = 1", "nan", "inf", "-", "0", "60", "940", "1e999", "true",
                 "2026-13-01")  # fmt: skip
BAD_UTF8: Final = (b"\xff", b"\xfe\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80")

_NAME = r'(?:[A-Za-z_][\w-]*|"(?:[^"\\]|\\.)*")'
PROBLEM_LINE: Final = re.compile(rf"^{_NAME}(?:\.{_NAME}|\[\d+\])*( = .+)?: \S.*?( \(line \d+\))?$")
FORBIDDEN_IN_LINES: Final = ("traceback", "pydantic", "validationerror", "input should be")
MAX_LINE_CHARS: Final = 300
MAX_PRESCRIBABLE_MW_CM2: Final = 45.45  # 50 mW/cm² less the ±10 % output tolerance


def builtin_texts() -> list[str]:
    return [builtin_text(name) for name in BUILTIN_NAMES]


# ---------------------------------------------------------------- mutators


def _lines_op(rng: random.Random, lines: list[str]) -> list[str]:
    i = rng.randrange(len(lines)) if lines else 0
    op = rng.choice(("delete", "duplicate", "swap", "comment", "move"))
    if not lines:
        return lines
    if op == "delete":
        return lines[:i] + lines[i + 1 :]
    if op == "duplicate":
        return lines[: i + 1] + lines[i:]
    if op == "comment":
        return [*lines[:i], "# " + lines[i], *lines[i + 1 :]]
    j = rng.randrange(len(lines))
    lines = list(lines)
    if op == "swap":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(j, lines.pop(i))
    return lines


def _value_op(rng: random.Random, lines: list[str]) -> list[str]:
    keyed = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    if not keyed:
        return lines
    i = rng.choice(keyed)
    key, _, value = lines[i].partition(" = ")
    if rng.random() < 0.5:
        value = rng.choice(NUMBERS)
    elif rng.random() < 0.5:
        key = _typo(rng, key)
    else:
        value = value[::-1] if rng.random() < 0.5 else value + rng.choice(TOKENS)
    return [*lines[:i], f"{key} = {value}", *lines[i + 1 :]]


def _typo(rng: random.Random, key: str) -> str:
    if not key:
        return "x"
    i = rng.randrange(len(key))
    return rng.choice((key[:i] + key[i + 1 :], key[:i] + key[i] * 2 + key[i:], key.upper(),
                       key + "_x", "unknown_key", key.replace("_", "-")))  # fmt: skip


def _text_op(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text) + 1)
    j = min(len(text), i + rng.randrange(8))
    return text[:i] + rng.choice(TOKENS) + text[j:]


def mutate_profile(rng: random.Random, text: str) -> tuple[str, bytes]:
    """1–4 random mutations of a TOML text; returns (the last kind, the bytes)."""
    kind = "none"
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("lines", "value", "value", "text", "truncate", "crlf"))
        if kind == "lines":
            lines = _lines_op(rng, lines)
        elif kind == "value":
            lines = _value_op(rng, lines)
        elif kind == "text":
            lines = _text_op(rng, "\n".join(lines)).split("\n")
        elif kind == "truncate":
            lines = lines[: rng.randrange(len(lines) + 1)]
    sep = "\r\n" if kind == "crlf" else "\n"
    data = (sep.join(lines) + sep).encode("utf-8", "surrogatepass")
    if rng.random() < 0.1:
        kind, at = "bytes", rng.randrange(len(data) + 1)
        data = data[:at] + rng.choice((*BAD_UTF8, rng.randbytes(4))) + data[at:]
    return kind, data


def random_profile_input(rng: random.Random, texts: Sequence[str]) -> tuple[str, bytes]:
    roll = rng.random()
    if roll < 0.05:
        return "random_bytes", rng.randbytes(rng.randrange(600))
    if roll < 0.1:
        alphabet = "abc_=[]\"'.\n 0123456789#{},-:"
        return "random_text", "".join(rng.choice(alphabet) for _ in range(300)).encode()
    return mutate_profile(rng, rng.choice(texts))


# ---------------------------------------------------------------- the oracle


@dataclass
class ProfileFuzzReport:
    files: int = 0
    accepted: int = 0
    refused: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)  # first words of each refusal rule
    exceptions: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)  # a profile and problems together
    outside_limits: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    internal_errors: list[str] = field(default_factory=list)
    longest_line: int = 0
    elapsed_s: float = 0.0

    def failures(self) -> list[str]:
        out = [f"exception: {e}" for e in self.exceptions[:5]]
        out += [f"ambiguous outcome: {e}" for e in self.ambiguous[:5]]
        out += [f"accepted outside the limits: {e}" for e in self.outside_limits[:5]]
        out += [f"unreadable: {e}" for e in self.unreadable[:5]]
        out += [f"internal-error refusal: {e}" for e in self.internal_errors[:5]]
        return out

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready figures (what docs/reliability.md quotes)."""
        data = {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}
        data["rules"] = dict(self.rules.most_common(15))
        data["internal_error_count"] = len(self.internal_errors)
        data["internal_error_causes"] = dict(Counter(e[:90] for e in self.internal_errors))
        data["files_per_s"] = round(self.files / self.elapsed_s) if self.elapsed_s else None
        return data


def _jsonable(value: object) -> object:
    if isinstance(value, Counter):
        return dict(value.most_common())
    if isinstance(value, list):
        return value[:10]
    if isinstance(value, float):
        return round(value, 3)
    return value


def independent_limit_problems(profile: Any) -> list[str]:
    """Re-check an accepted profile by hand, beside ``safety.limits.check_profile``: the
    numbers of DESIGN.md §6, written out here rather than read from ``safety.limits``."""
    from safety.limits import HARD_LIMITS, check_profile

    found = [str(v) for v in check_profile(profile, HARD_LIMITS)]
    irr = [c.irradiance_mw_cm2 for c in profile.channels]
    rules = {
        "channels": 1 <= len(irr) <= 2 and all(10 <= x <= MAX_PRESCRIBABLE_MW_CM2 for x in irr),
        "combined": sum(irr) * profile.duty_fraction <= MAX_PRESCRIBABLE_MW_CM2,
        "duration": 0 < profile.duration_min <= 30,
        "fluence": profile.planned_fluence_total_j_cm2 <= 90,
        "interval": profile.min_interval_h >= 20,
        "per_week": 0 < profile.sessions_per_week <= 7,
        "valid": profile.is_valid_on(FUZZ_TODAY),
    }
    return found + [name for name, ok in rules.items() if not ok]


class _ErrorLog(logging.Handler):
    """Keeps the loader's error log lines: the cause behind an internal-error refusal."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def judge_profile(
    data: bytes, check: Callable[[bytes], Any], report: ProfileFuzzReport, kind: str
) -> None:
    """Run ``check`` on ``data`` and count the outcome in ``report`` (never raises)."""
    report.files += 1
    report.kinds[kind] += 1
    errors = _ErrorLog()
    logger = logging.getLogger("profiles")
    logger.addHandler(errors)
    try:
        _judge_profile(data, check, report, errors)
    finally:
        logger.removeHandler(errors)


def _judge_profile(
    data: bytes, check: Callable[[bytes], Any], report: ProfileFuzzReport, errors: _ErrorLog
) -> None:
    shown = data[:80].decode("utf-8", "backslashreplace")
    try:
        result = check(data)
    except Exception as exc:  # the finding itself: the CLI path must never raise
        report.exceptions.append(f"{type(exc).__name__}: {exc} for {shown!r}")
        return
    if result.profile is not None and result.problems:
        report.ambiguous.append(f"{len(result.problems)} problems with a profile: {shown!r}")
    if result.profile is not None and not result.problems:
        report.accepted += 1
        broken = independent_limit_problems(result.profile)
        if broken:
            report.outside_limits.append(f"{broken} for {shown!r}")
        return
    report.refused += 1
    lines = [str(p) for p in result.problems]
    if not lines:
        report.unreadable.append(f"refused without a reason: {shown!r}")
    for line in lines:
        _judge_line(line, report, errors, shown)


def _judge_line(line: str, report: ProfileFuzzReport, errors: _ErrorLog, shown: str) -> None:
    report.longest_line = max(report.longest_line, len(line))
    report.rules[line.partition(": ")[2][:40]] += 1
    lowered = line.lower()
    if "internal error" in lowered:
        report.internal_errors.append("; ".join(errors.lines) or f"{line} for {shown!r}")
    bad = [w for w in FORBIDDEN_IN_LINES if w in lowered]
    if bad or "\n" in line or len(line) > MAX_LINE_CHARS or not PROBLEM_LINE.match(line):
        report.unreadable.append(repr(line))


def cli_check() -> Callable[[bytes], Any]:
    """The CLI's own path: schema, hard (no site file) limits, signature, dates."""
    from firmware_host.profile_commands import check_bytes

    return lambda data: check_bytes(data, "fuzz.toml", None, today=FUZZ_TODAY)


def fuzz_profiles(
    files: int, seed: int, *, check: Callable[[bytes], Any] | None = None
) -> ProfileFuzzReport:
    """``files`` seeded random inputs (90 % mutated built-ins) judged on the CLI's path."""
    rng = random.Random(seed)
    texts = builtin_texts()
    run = check or cli_check()
    report = ProfileFuzzReport()
    started = time.perf_counter()
    for _ in range(files):
        kind, data = random_profile_input(rng, texts)
        judge_profile(data, run, report, kind)
    report.elapsed_s = time.perf_counter() - started
    return report
