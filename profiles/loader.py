"""Loading a profile file: bytes → a validated ``Profile``, or every problem in words.

Owns: reading a file safely (regular files only, never blocking on a FIFO or a
device, refused above the size cap before anything is read; ``regular_file`` does
the reading), UTF-8 decoding, TOML parsing (syntax errors mapped to plain sentences
with the line), schema validation, the ``extra_checks`` hook (how the safety limits
are applied without this package importing ``safety``), the validity date, the
signature check, the time budget of a check, and the promise that no input raises:
every outcome is a ``LoadResult``.

Every step is linear in the size of the file (no backtracking regular expression;
``tests/profiles/test_bounded_checks.py`` holds the crafted worst cases), and the file
is at most ``MAX_PROFILE_BYTES``, so a check is bounded; ``CHECK_BUDGET_S`` refuses a
check that overran anyway (measured at the end, no thread, nothing interrupted).

Does not own the schema rules (``schema``), the wording of schema errors
(``messages``), the limits (``safety.limits``) or where files live (``store``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import math
import re
import stat
import time
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from pydantic import ValidationError

from profiles.errors import Problem
from profiles.locator import KeyLocator, deep_key_line, number_too_long_at, parse_path
from profiles.messages import raw_value_at, schema_problems, show_value
from profiles.regular_file import FileTooLargeError, NotRegularFileError, read_regular_file
from profiles.schema import Profile
from profiles.signing import TrustStore, verify_data

log = logging.getLogger(__name__)

MAX_PROFILE_BYTES: Final = 16 * 1024
"""The size cap. The largest built-in profile, with a comment on every number, is 1.2 kB;
a clinic signature adds about 200 bytes; 16 KiB leaves more than ten times that for a
clinic's comments, and bounds the worst check (docs/profiles.md has the figures)."""
MAX_KEY_PARTS: Final = 8
"""A profile's deepest key has 2 parts (``mode.kind``); dotted keys are capped at 8."""
CHECK_BUDGET_S: Final = 2.0
"""A check that took longer is refused (the worst crafted file at the cap takes about
0.1 s on a development machine; a Raspberry Pi is several times slower)."""
Clock = Callable[[], float]


class Violation(Protocol):
    """A rule a profile breaks (``safety.limits.LimitViolation`` is one)."""

    @property
    def field(self) -> str: ...
    @property
    def value(self) -> object: ...
    @property
    def rule(self) -> str: ...


Finding = Violation | tuple[str, object, str]
"""What an extra check yields: a ``Violation`` or a ``(field, value, rule)`` tuple."""
ExtraChecks = Callable[[Profile], Iterable[Finding]]
"""``extra_checks(profile)`` yields the rules ``profile`` breaks."""

_AT = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)\s*$")
_TOML_MESSAGES: Final = (
    ("Cannot overwrite a value", "this key is given twice"),
    ("Cannot declare", "this table is declared twice"),
    ("Expected '=' after a key", 'expected "=" after the key'),
    ("Invalid value", "this value is not valid (text needs double quotes, dates are bare)"),
    ("Expected newline or end of document", "unexpected text after the value"),
    ("Invalid statement", "this line is not a key = value pair or a [table] header"),
    ("Invalid initial character for a key part", "a key must start with a letter or digit"),
    ("Illegal character '\\n'", "a text value is missing its closing quote"),
    ("Illegal character", "contains a character TOML does not allow"),
    ("Unterminated string", "a text value is missing its closing quote"),
    ('Expected "', "a text value is missing its closing quote"),
    ("Invalid date", "this is not a real date or time (write dates like 2026-11-01)"),
    ("Unclosed array", "a list is missing its closing ]"),
    ("Unclosed inline table", "an inline table is missing its closing }"),
)


@dataclass(frozen=True)
class LoadResult:
    """The outcome of loading one profile: the profile if, and only if, no problems."""

    profile: Profile | None
    problems: list[Problem] = field(default_factory=list)
    sha256: str = ""
    source: str = ""

    @property
    def ok(self) -> bool:
        return self.profile is not None and not self.problems


def load_profile(
    path: Path | str,
    *,
    extra_checks: ExtraChecks | None = None,
    trust: TrustStore | None = None,
    require_signature: bool = False,
    today: dt.date | None = None,
) -> LoadResult:
    """Read and check the profile file at ``path``. Never raises for a bad file."""
    data = read_profile_file(path)
    if isinstance(data, Problem):
        return LoadResult(None, [data], "", str(path))
    return load_profile_bytes(
        data,
        str(path),
        extra_checks=extra_checks,
        trust=trust,
        require_signature=require_signature,
        today=today,
    )


def read_profile_file(path: Path | str) -> bytes | Problem:
    """The bytes of the profile file at ``path``, or why it cannot be a profile.

    Only a regular file is read, at most ``MAX_PROFILE_BYTES`` of it, without ever
    blocking (``regular_file.read_regular_file``): one larger is refused from its size.
    """
    try:
        data, _ = read_regular_file(path, MAX_PROFILE_BYTES)
    except NotRegularFileError as exc:
        if stat.S_ISDIR(exc.mode):
            return Problem("file", None, "cannot be read: Is a directory")
        return Problem("file", None, f"is not a regular file ({exc.kind}); refused")
    except FileTooLargeError as exc:
        return _too_large(exc.size_bytes or MAX_PROFILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return Problem("file", None, f"cannot be read: {reason}")
    return data


def _too_large(size: int) -> Problem:
    return Problem(
        "file",
        None,
        f"is larger than {MAX_PROFILE_BYTES // 1024} KiB ({size} bytes); "
        f"a prescription is about 1 kB",
    )


def load_profile_bytes(
    data: bytes,
    name: str,
    *,
    extra_checks: ExtraChecks | None = None,
    trust: TrustStore | None = None,
    require_signature: bool = False,
    today: dt.date | None = None,
    clock: Clock = time.monotonic,
) -> LoadResult:
    """Check a profile given as bytes (``name`` is for messages). Never raises.

    ``clock`` measures the check against ``CHECK_BUDGET_S``."""
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        budget = _Budget(clock)
        profile, problems = _load(data, extra_checks, trust, require_signature, today, budget)
    except Exception as exc:  # the last guard of "never a traceback": refuse, never pass
        log.error("profile %s could not be checked: %s: %s", name, type(exc).__name__, exc)
        log.debug("details", exc_info=True)
        problems = [Problem("file", None, "could not be checked (internal error); refused")]
        profile = None
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return LoadResult(None if problems else profile, problems, sha256, name)


class _Budget:
    """The time a check has used, read at the steps: over ``CHECK_BUDGET_S`` it is refused."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._start_s = clock()

    def overrun(self) -> Problem | None:
        used_s = self._clock() - self._start_s
        if used_s <= CHECK_BUDGET_S:
            return None
        return Problem(
            "file",
            None,
            f"took too long to check ({used_s:.1f} s, the limit is {CHECK_BUDGET_S:g} s); "
            f"refused: ask the clinic for a plain prescription file",
        )


def _load(
    data: bytes,
    extra_checks: ExtraChecks | None,
    trust: TrustStore | None,
    require_signature: bool,
    today: dt.date | None,
    budget: _Budget,
) -> tuple[Profile | None, list[Problem]]:
    parsed = _parse(data)
    if isinstance(parsed, Problem):
        return None, [parsed]
    text, raw = parsed
    locator = KeyLocator(text)
    profile, problems = _validate(raw, locator)
    if profile is not None and extra_checks is not None:
        problems += _extra_problems(profile, raw, locator, extra_checks)
    if profile is not None and today is not None:
        problems += _validity_problems(profile, locator, today)
    if not any(p.field.startswith("signature") for p in problems):
        problems += [_with_line(p, locator) for p in verify_data(raw, trust, require_signature)]
    overrun = budget.overrun()
    return (None, [overrun]) if overrun is not None else (profile, problems)


def _parse(data: bytes) -> tuple[str, dict[str, Any]] | Problem:
    if len(data) > MAX_PROFILE_BYTES:
        return _too_large(len(data))
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return Problem("file", None, "is not UTF-8 text; save it as UTF-8", line)
    deep = deep_key_line(text, MAX_KEY_PARTS)
    if deep is not None:
        return Problem("file", None, f"has a key of more than {MAX_KEY_PARTS} dotted parts", deep)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return _syntax_problem(str(exc), text)
    except RecursionError:
        return Problem("file", None, "has lists or tables nested too deeply")
    except ValueError:  # tomllib: an integer longer than Python's int_max_str_digits
        return _too_many_digits_problem(text)


def _too_many_digits_problem(text: str) -> Problem:
    """Name the field whose number is too long to read, with its line
    (``number_too_long_at``)."""
    found = number_too_long_at(text)
    if found is None:
        return Problem("file", None, "has a number with far too many digits")
    key, line = found
    return Problem(key or "file", None, "is a number with far too many digits", line)


def _syntax_problem(message: str, text: str) -> Problem:
    match = _AT.search(message)
    bare = message[: match.start()] if match else message
    rule = next((plain for prefix, plain in _TOML_MESSAGES if bare.startswith(prefix)), None)
    rule = f"not valid TOML: {rule or bare}"
    if match and match.group(1):
        line: int | None = int(match.group(1))
    elif bare.startswith("Cannot overwrite"):
        line = KeyLocator(text).duplicate_line
    else:
        line = text.count("\n") + (0 if text.endswith("\n") else 1) or None
    return Problem("file", None, rule, line)


def _validate(raw: dict[str, Any], locator: KeyLocator) -> tuple[Profile | None, list[Problem]]:
    try:
        return Profile.model_validate(raw), []
    except ValidationError as exc:
        return None, schema_problems(exc.errors(include_url=False), raw, locator)


def _extra_problems(
    profile: Profile, raw: Mapping[str, Any], locator: KeyLocator, checks: ExtraChecks
) -> list[Problem]:
    try:
        found = list(checks(profile))
    except Exception as exc:  # a broken check must refuse the profile, never pass it
        log.error("extra check failed: %s: %s", type(exc).__name__, exc)
        return [Problem("file", None, "could not be checked against the safety limits; refused")]
    return [_violation_problem(item, raw, locator) for item in found]


def _violation_problem(item: Finding, raw: Mapping[str, Any], locator: KeyLocator) -> Problem:
    if isinstance(item, tuple):
        where, value, rule = item
    else:
        where, value, rule = item.field, item.value, item.rule
    loc = parse_path(str(where))
    written = show_value(raw_value_at(raw, loc))  # as the file says it, when it is a scalar
    if written is None and isinstance(value, float) and math.isfinite(value):
        written = f"{value:.6g}"  # a computed figure (combined irradiance, dose)
    shown = written if written is not None else show_value(value)
    return Problem(str(where), shown, str(rule), locator.line_of(loc))


def _validity_problems(profile: Profile, locator: KeyLocator, today: dt.date) -> list[Problem]:
    reason = profile.validity_problem(today)
    if reason is None:
        return []
    key = "expires" if today >= profile.expires else "issued"
    day = profile.expires if key == "expires" else profile.issued
    rule = reason[0].lower() + reason[1:].rstrip(".")
    return [Problem(key, day.isoformat(), rule, locator.line_of((key,)))]


def _with_line(problem: Problem, locator: KeyLocator) -> Problem:
    return dataclasses.replace(problem, line=locator.line_of(parse_path(problem.field)))
