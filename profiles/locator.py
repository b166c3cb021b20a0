"""Find the line of a key in TOML text, for caregiver messages.

Owns: a small line scanner that maps a key path such as ``("channels", 0,
"irradiance_mw_cm2")`` to the 1-based line where it is written, and field-path
formatting (``channels[0].irradiance_mw_cm2``). Exact for ``key = value`` lines under
``[table]`` and ``[[array-of-tables]]`` headers and for dotted keys; best effort
(the enclosing key or header) for values inside inline tables and arrays. Also where
a number too long for ``tomllib`` is (``number_too_long_at``: tomllib's error names
neither key nor line), for the profile loader and the reader of ``site.toml``
(``site_file``). Does not parse values (``tomllib`` does).
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Sequence

Loc = tuple[str | int, ...]

_PART = r'(?:[A-Za-z0-9_-]+|"[^"\n]*"|\'[^\'\n]*\')'
_DOTTED = rf"{_PART}(?:\s*\.\s*{_PART})*"
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_ARRAY_HEADER = re.compile(rf"^\s*\[\[\s*({_DOTTED})\s*\]\]")
_TABLE_HEADER = re.compile(rf"^\s*\[\s*({_DOTTED})\s*\]")
_SPLIT = re.compile(_PART)
_PLAIN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_DIGIT_RUN = re.compile(r"[0-9](?:_?[0-9])*")  # a decimal integer as TOML writes it
_BARE_KEY = re.compile(r"[A-Za-z0-9_.-]+")


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _SPLIT.findall(dotted))


class KeyLocator:
    """Line numbers of the keys and table headers of one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Loc, int] = {}
        self.duplicate_line: int | None = None
        self._scan(text)

    def _scan(self, text: str) -> None:
        table: Loc = ()
        array_counts: dict[tuple[str, ...], int] = {}
        in_multiline = False
        for number, line in enumerate(text.splitlines(), start=1):
            quotes = line.count('"""') + line.count("'''")
            if in_multiline:
                in_multiline = quotes % 2 == 0
                continue
            if match := _ARRAY_HEADER.match(line):
                name = _parts(match.group(1))
                array_counts[name] = array_counts.get(name, 0) + 1
                table = (*name, array_counts[name] - 1)
                self._record(name, number, duplicate_ok=True)
                self._record(table, number)
            elif match := _TABLE_HEADER.match(line):
                table = _parts(match.group(1))
                self._record(table, number, duplicate_ok=False)
            elif match := _KEY_LINE.match(line):
                self._record((*table, *_parts(match.group(1))), number, duplicate_ok=False)
            in_multiline = quotes % 2 == 1

    def _record(self, loc: Loc, number: int, duplicate_ok: bool = False) -> None:
        if loc in self._lines:
            if not duplicate_ok and self.duplicate_line is None:
                self.duplicate_line = number
            return
        self._lines[loc] = number

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc``, else of its nearest enclosing key or table, else None."""
        key = tuple(loc)
        for end in range(len(key), 0, -1):
            if key[:end] in self._lines:
                return self._lines[key[:end]]
        return None


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape codes, DEL, C1
    controls, bidirectional overrides, line separators) written as ``\\uXXXX``, and a
    byte that was not UTF-8 (in an argument, a file name or the environment, which
    Python reads as a lone surrogate U+DC80-U+DCFF) as ``\\xNN``, the byte itself."""
    return "".join(_printable_char(c) for c in text)


def _printable_char(c: str) -> str:
    if "\udc80" <= c <= "\udcff":  # surrogateescape's stand-in for the byte 0x80-0xff
        return f"\\x{ord(c) - 0xDC00:02x}"
    return f"\\u{ord(c):04x}" if unicodedata.category(c) in _UNPRINTABLE else c


def quoted(text: str) -> str:
    """``text`` in double quotes with JSON escapes, safe to print on one line."""
    return printable(json.dumps(text, ensure_ascii=False))


def format_path(loc: Sequence[str | int]) -> str:
    """``("channels", 0, "irradiance_mw_cm2")`` → ``channels[0].irradiance_mw_cm2``.

    A key that is not a plain name (spaces, dashes, control characters) is shown in
    double quotes with escapes (``quoted``), so one problem is always one unambiguous
    line and never a terminal escape sequence.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _PLAIN_NAME.match(part) else quoted(part)
        out += f".{name}" if out else name
    return out or "file"


def parse_path(path: str) -> Loc:
    """The inverse of ``format_path``: ``channels[0].irradiance_mw_cm2`` → a loc tuple."""
    return tuple(int(index) if index else name for name, index in _PATH_TOKEN.findall(path))


def number_too_long_at(text: str) -> tuple[str | None, int] | None:
    """The key (None when it is not a bare key) and 1-based line of the first decimal run
    (``_`` separators allowed) of more digits than Python converts
    (``sys.get_int_max_str_digits``, 4300 by default), where ``tomllib`` raises a bare
    ``ValueError``; None when there is none. Linear in the text: one pass of a pattern
    that cannot backtrack, and ``str.partition`` for the key."""
    limit = sys.get_int_max_str_digits()
    for number, line in enumerate(text.splitlines(), 1):
        key, equals, value = line.partition("=")
        scanned = value if equals else line
        if any(len(run) - run.count("_") > limit for run in _DIGIT_RUN.findall(scanned)):
            bare = equals and _BARE_KEY.fullmatch(key.strip())
            return (key.strip() if bare else None), number
    return None


def number_too_long_words(text: str) -> str:
    """Where ``number_too_long_at`` finds the number, in words for a sentence:
    ``session_max_min (line 3) is a number with far too many digits``."""
    found = number_too_long_at(text)
    if found is None:
        return "a number has far too many digits"
    key, line = found
    if key is None:
        return f"line {line} has a number with far too many digits"
    return f"{printable(key)} (line {line}) is a number with far too many digits"


def deep_key_line(text: str, max_parts: int) -> int | None:
    """The first line whose key (before ``=``, or a ``[table]`` header) has more than
    ``max_parts`` dotted parts: ``tomllib`` takes time quadratic in a key's parts (2.6 s
    for one key of 8,000 parts). Comment lines are skipped; a dot in a quoted key counts,
    which can only refuse a file no real one looks like."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("#"):
            continue
        key = stripped if stripped.startswith("[") else stripped.partition("=")[0]
        if key.count(".") >= max_parts:
            return number
    return None
