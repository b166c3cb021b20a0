"""Errors and problem lines of the profiles package.

Owns: ``ProfileError`` (the one base class), its subclasses, and ``Problem`` — one
caregiver-readable line about one thing wrong with a profile file. Does not own how
problems are found (``loader``, ``signing``) nor what the limits are (``safety``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a profile, as a caregiver reads it.

    ``field`` is a path such as ``channels[0].irradiance_mw_cm2`` (or ``file`` for the
    file as a whole), ``value`` the value as written (already rendered as text, or None
    when there is none to show), ``rule`` the rule it breaks, ``line`` the 1-based line
    in the file where it can be found, when known.
    """

    field: str
    value: str | None
    rule: str
    line: int | None = None

    def __str__(self) -> str:
        head = self.field if self.value is None else f"{self.field} = {self.value}"
        tail = "" if self.line is None else f" (line {self.line})"
        return f"{head}: {self.rule}{tail}"


class ProfileError(Exception):
    """Base of every error raised by the profiles package."""


class ProfileInvalidError(ProfileError, ValueError):
    """A profile was refused; ``problems`` lists every reason, ``source`` names the file."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        lines = "; ".join(str(p) for p in problems)
        super().__init__(f"{source}: {lines}")
        self.source = source
        self.problems = problems


class SigningError(ProfileError, ValueError):
    """A key or a profile cannot be used for signing. ``field`` names what is wrong."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class TrustStoreError(ProfileError, ValueError):
    """The ``[signing]`` table of the site configuration is unusable."""

    def __init__(self, message: str, *, field: str, line: int | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.line = line


class StoreError(ProfileError):
    """The installed prescription cannot be written or read. ``path`` names the file."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path
