"""Exception types of the safety layer.

Owns: the one base class, ``SafetyError``, and the errors every safety module shares.
Each carries its context as attributes; the message is for a person.
"""

from __future__ import annotations

from safety.faults import FaultCode


class SafetyError(Exception):
    """Base of every error raised by the safety layer."""


class LimitError(SafetyError, ValueError):
    """A value or a site configuration breaks a hard limit. ``limit`` names it."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


class InterlockRefusedError(SafetyError):
    """The interlock refused an output command; a fault with ``code`` is latched."""

    def __init__(self, message: str, *, code: FaultCode) -> None:
        super().__init__(message)
        self.code = code


class StartRefusedError(SafetyError):
    """``start`` is not allowed now; ``reason`` says why in words for the patient."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LedgerError(SafetyError):
    """The dose ledger cannot be opened, read or written. ``path`` is the database."""

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


class LedgerDamagedError(LedgerError):
    """The ledger file is damaged (not a database, malformed, fails its integrity check):
    the one kind of open failure that a restore from the backup may repair."""


class SiteLimitsError(LimitError):
    """The site limits file is unreadable, unknown, mistyped or would loosen ``limit``.

    ``path`` is the file; ``asked`` and ``hard`` are the value the file asks for and the
    compiled-in value, when the problem is about one value.
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        path: object,
        asked: object = None,
        hard: object = None,
    ) -> None:
        super().__init__(message, limit=limit)
        self.path = path
        self.asked = asked
        self.hard = hard
