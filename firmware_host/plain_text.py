"""What a person reads: no technical text, no sentence said twice.

Owns: ``plain``, the last step before a reason, a fault's message or a refusal reaches
``nirpad status``, ``nirpad start`` and the other commands' replies. It drops technical
details that the layers below attach for the log (an ``OSError``'s ``[Errno 5] ...``,
pyserial's "device reports readiness to read but returned no data", a port name with
its error code) and puts one plain sentence in their place when a port failed; and it
removes a clause repeated by a caller that wrapped a message which already began with
it ("The treatment record cannot be opened: The treatment record cannot be opened ...").
The log keeps the full text: this module changes only what is shown.

Its patterns have no nested quantifiers; texts are a few sentences. Standard library only.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["PORT_TROUBLE", "plain"]

PORT_TROUBLE: Final = "The connection to the pad failed; check its cable."
_TECHNICAL: Final = re.compile(
    r"\[Errno -?\d+\]|\berrno\b|could not open port|device reports readiness"
    r"|\btermios\b|\bSerialException\b|Traceback|\bpyserial\b|\bserial\.\w"
    r"|\bport=|\bcode=\w|/dev/\w|\bI/O error|Input/output error",
    re.IGNORECASE,
)
_PORTISH: Final = re.compile(r"port|/dev/|serial|termios|readiness|Input/output", re.IGNORECASE)
_PARENS: Final = re.compile(r" ?\(([^()]*)\)")
_HIDE: Final = str.maketrans("()", "\x02\x03")  # a kept "(...)" while outer ones are judged
_SHOW: Final = str.maketrans("\x02\x03", "()")
_CLAUSE_SPLIT: Final = re.compile(r"(?<=[.:;])\s+")
_SPACES: Final = re.compile(r"\s{2,}")


def plain(text: str | None) -> str | None:
    """``text`` without technical details and repeated clauses (None stays None)."""
    if not text:
        return text
    dropped_port = False

    def parenthetical(match: re.Match[str]) -> str:
        nonlocal dropped_port
        inner = match.group(1)
        if _TECHNICAL.search(inner) is None:  # kept, its brackets hidden from the outer one
            return match.group(0).translate(_HIDE)
        dropped_port = dropped_port or _PORTISH.search(inner) is not None
        return ""

    while True:  # innermost first: "(... (port=..., code=...))" goes as a whole
        shorter = _PARENS.sub(parenthetical, text)
        if shorter == text:
            break
        text = shorter
    text = text.translate(_SHOW)
    clauses: list[str] = []
    for clause in _CLAUSE_SPLIT.split(text):
        if _TECHNICAL.search(clause) is not None:
            dropped_port = dropped_port or _PORTISH.search(clause) is not None
            if clauses:
                clauses[-1] = _end_sentence(clauses[-1])
            continue
        clauses = _without_repeat(clauses, clause)
    if dropped_port:
        clauses.append(PORT_TROUBLE)
    return _SPACES.sub(" ", " ".join(c for c in clauses if c)).strip()


def _key(clause: str) -> str:
    return clause.rstrip(" .:;").casefold()


def _without_repeat(clauses: list[str], clause: str) -> list[str]:
    """Append ``clause`` unless it was said already; a clause the new one starts with
    (a wrapped message that repeats its wrapper's words) gives way to the new one."""
    key = _key(clause)
    if not key or any(_key(c) == key for c in clauses):
        return clauses
    if clauses and key.startswith(_key(clauses[-1])):
        return [*clauses[:-1], clause]
    return [*clauses, clause]


def _end_sentence(clause: str) -> str:
    stripped = clause.rstrip(" :;")
    return stripped if stripped.endswith((".", "!", "?")) else stripped + "."
