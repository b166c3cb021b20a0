"""Find the line of a key in TOML text, for caregiver messages.

Owns: a small line scanner that maps a key path such as ``("channels", 0,
"irradiance_mw_cm2")`` to the 1-based line where it is written, and field-path
formatting (``channels[0].irradiance_mw_cm2``). Exact for ``key = value`` lines under
``[table]`` and ``[[array-of-tables]]`` headers and for dotted keys; best effort
(the enclosing key or header) for values inside inline tables and arrays. Does not
parse values (``tomllib`` does).
"""

from __future__ import annotations

import json
import re
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
    controls, bidirectional overrides, line separators) written as ``\\uXXXX``."""
    return "".join(
        f"\\u{ord(c):04x}" if unicodedata.category(c) in _UNPRINTABLE else c for c in text
    )


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
