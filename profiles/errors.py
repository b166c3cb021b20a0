"""Errors and problem lines of the profiles package.

Owns: ``ProfileError`` (the one base class), its subclasses, and ``Problem`` — one
caregiver-readable line about one thing wrong with a profile file. Does not own how
problems are found (``loader``, ``signing``) nor what the limits are (``safety``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path


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


class SiteFileFault(Enum):
    """Why the site configuration could not be read, so that each reader of one of its
    tables can word it its own way. Stable values: they may show up in logs."""

    MISSING = "missing"
    """No such file (some readers take that as no configuration)."""
    UNREADABLE = "unreadable"
    """Cannot be opened or read, not a regular file, too large, or others may write it."""
    NOT_TOML = "not_toml"
    """Not UTF-8 text, or not TOML."""
    NUMBER_TOO_LONG = "number_too_long"
    """A number with more digits than Python reads (``tomllib`` names neither key nor line)."""


class SiteFileError(ProfileError):
    """The site configuration (``site.toml``) cannot be read.

    ``path`` is the file, ``fault`` the kind of problem, ``reason`` the problem in words
    without the file's name, ``line`` and ``key`` where it is, when known. The message
    is ``sentence("the site configuration")``.
    """

    def __init__(
        self,
        fault: SiteFileFault,
        *,
        path: Path,
        reason: str,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.fault = fault
        self.path = path
        self.reason = reason
        self.line = line
        self.key = key
        super().__init__(self.sentence("the site configuration"))

    def sentence(self, name: str) -> str:
        """This error as one sentence about the file called ``name``
        (``the site limits file``)."""
        if self.fault is SiteFileFault.NUMBER_TOO_LONG:
            return f"In {self.path}, {self.reason}."
        if self.fault is SiteFileFault.NOT_TOML:
            return f"{name[:1].upper()}{name[1:]} {self.path} is not valid TOML: {self.reason}."
        return f"Cannot read {name} {self.path}: {self.reason}."


class StoreError(ProfileError):
    """The installed prescription cannot be written or read. ``path`` names the file;
    ``replaced`` is True when the new file was already renamed into place (only the
    folder's sync failed after it), so the caller must put the previous one back."""

    def __init__(self, message: str, *, path: str, replaced: bool = False) -> None:
        super().__init__(message)
        self.path = path
        self.replaced = replaced
