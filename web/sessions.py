"""Browser sessions, their CSRF tokens, and the login rate limit, held in memory.

Owns: the session token (32 random bytes, the cookie's only content: everything else
stays on the server), each session's CSRF token, whether it logged in, its idle
timeout, the one upload it may be about to install, and the login limit: the first
``FREE_FAILURES`` wrong passwords cost nothing, then each further one makes every login
wait ``FIRST_WAIT_S`` doubled per failure, up to ``MAX_WAIT_S`` (one counter for the
whole page: on a home device a lock-out is a nuisance, a guessed password is not).
Time is an injected monotonic clock, so tests run on a virtual one.

Does not own cookies or requests (``web.guard``) nor the password (``web.passwords``).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

Clock = Callable[[], float]
IDLE_TIMEOUT_S: Final = 30 * 60.0
MAX_SESSIONS: Final = 64
FREE_FAILURES: Final = 5
FIRST_WAIT_S: Final = 30.0
MAX_WAIT_S: Final = 3600.0


@dataclass(frozen=True)
class PendingUpload:
    """A checked prescription waiting for the caregiver's confirmation."""

    name: str
    data: bytes
    sha256: str


@dataclass
class Session:
    token: str
    csrf_token: str
    seen_s: float
    logged_in: bool = False
    pending: PendingUpload | None = field(default=None, repr=False)

    def csrf_ok(self, offered: str | None) -> bool:
        """Constant-time check of the form's token against this session's."""
        if not offered:
            return False
        return hmac.compare_digest(offered.encode(), self.csrf_token.encode())


class SessionStore:
    """Sessions by token; idle ones expire, and the oldest go first when full."""

    def __init__(
        self,
        clock: Clock = time.monotonic,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token``; None when unknown or idle too long."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now_s = self._clock()
        if now_s - session.seen_s > self._idle_timeout_s:
            del self._sessions[token]
            return None
        session.seen_s = now_s
        return session

    def new(self, *, logged_in: bool = False) -> Session:
        """A fresh session with new tokens (also after a login: no fixation)."""
        if len(self._sessions) >= self._max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.seen_s)
            del self._sessions[oldest.token]
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            seen_s=self._clock(),
            logged_in=logged_in,
        )
        self._sessions[session.token] = session
        return session

    def drop(self, token: str) -> None:
        self._sessions.pop(token, None)

    def __len__(self) -> int:
        return len(self._sessions)


class LoginLimiter:
    """How long a login must wait now, after how many wrong passwords."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.failures = 0
        self._blocked_until_s = 0.0

    def wait_s(self) -> float:
        """Seconds until the next try is heard (0: now)."""
        return max(0.0, self._blocked_until_s - self._clock())

    def failed(self) -> None:
        self.failures += 1
        extra = self.failures - FREE_FAILURES
        if extra >= 0:
            wait_s = min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** min(extra, 20))
            self._blocked_until_s = self._clock() + wait_s

    def succeeded(self) -> None:
        self.failures = 0
        self._blocked_until_s = 0.0
