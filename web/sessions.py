"""Browser sessions, their CSRF tokens, and the login rate limit, held in memory.

Owns: the session token (the cookie's only content: everything else stays on the
server; 32 random bytes and their HMAC under a key made when the page starts, so a
token the page did not make, such as a cookie planted by another service on the same
host, is treated as no token at all), each session's CSRF token (an HMAC of its token
under another such key, so it can be checked without storing anything), whether it
logged in, its idle timeout (restarted by the caregiver's requests, not by a page's
background polls), the one upload it may be about to install, and the login
limit: the first ``FREE_FAILURES`` wrong passwords cost nothing, then each further one
makes every login wait ``FIRST_WAIT_S`` doubled per failure, up to ``MAX_WAIT_S`` (one
counter for the whole page: on a home device a lock-out is a nuisance, a guessed
password is not). An attempt is counted before its password is tried, so parallel
tries cannot pass the limit together.

A session is stored only once it holds something: a login, or an upload waiting to be
installed. Any other visitor gets an *anonymous* session that is kept nowhere (its CSRF
token is derived from its cookie), so requests without a login can never fill the
store and push out a logged-in caregiver or a pending install. When the store is full
the least recently seen session goes, one that is not logged in first. A session that
left the store (logged out, pushed out, idle too long) is revoked: it is never stored
again, even by a request that began before it left.
Time is an injected monotonic clock, so tests run on a virtual one.

Does not own cookies or requests (``web.guard``) nor the password (``web.passwords``).
"""

from __future__ import annotations

import base64
import hashlib
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
TOKEN_BYTES: Final = 32
TOKEN_MAC_BYTES: Final = 16


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
    stored: bool = False
    revoked: bool = False  # it left the store: never stored again

    def csrf_ok(self, offered: str | None) -> bool:
        """Constant-time check of the form's token against this session's."""
        if not offered:
            return False
        return hmac.compare_digest(offered.encode(), self.csrf_token.encode())


class SessionStore:
    """Stored sessions by token (idle ones expire; when full, the least recently seen
    goes, logged-in ones last) and the anonymous sessions derived from a token."""

    def __init__(
        self,
        clock: Clock = time.monotonic,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._idle_timeout_s = idle_timeout_s
        self._max_sessions = max_sessions
        self._key = secrets.token_bytes(32)
        self._token_key = secrets.token_bytes(32)
        self._sessions: dict[str, Session] = {}

    def get(self, token: str | None, *, touch: bool = True) -> Session | None:
        """The stored live session of ``token``; None when unknown or idle too long.

        ``touch``: the request is the caregiver's activity and restarts the idle time.
        A background poll is not (``touch=False``): it is served while the session
        lives, but a page left open does not keep its login alive."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now_s = self._clock()
        if now_s - session.seen_s > self._idle_timeout_s:
            self.drop(token)
            return None
        if touch:
            session.seen_s = now_s
        return session

    def anonymous(self, token: str | None, *, logged_in: bool) -> Session:
        """A session stored nowhere for ``token`` (a new token when it is None or not
        one this page made); its CSRF token is the same on every request with that cookie."""
        if token is None or not self._made_here(token):
            token = self._new_token()
        return Session(token, self._csrf_for(token), self._clock(), logged_in=logged_in)

    def new(self, *, logged_in: bool = False) -> Session:
        """A fresh stored session with a new token (also after a login: no fixation)."""
        return self.keep(self.anonymous(None, logged_in=logged_in))

    def keep(self, session: Session) -> Session:
        """Store ``session`` (it now holds something), making room if the store is full;
        a revoked one (it left the store: a logout, pushed out, idle) is not stored."""
        if session.revoked:
            return session
        if session.token not in self._sessions and len(self._sessions) >= self._max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: (s.logged_in, s.seen_s))
            self.drop(oldest.token)
        session.stored = True
        session.seen_s = self._clock()
        self._sessions[session.token] = session
        return session

    def drop(self, token: str) -> None:
        """Remove and revoke ``token``'s session (a request still holding it cannot keep it)."""
        session = self._sessions.pop(token, None)
        if session is not None:
            session.stored = False
            session.revoked = True

    def __len__(self) -> int:
        return len(self._sessions)

    def _new_token(self) -> str:
        """Random bytes and their HMAC: a token only this page (since it started) makes."""
        random_part = secrets.token_bytes(TOKEN_BYTES)
        return _b64(random_part + self._token_mac(random_part))

    def _made_here(self, token: str) -> bool:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return False
        if len(raw) != TOKEN_BYTES + TOKEN_MAC_BYTES or _b64(raw) != token:
            return False
        random_part, mac = raw[:TOKEN_BYTES], raw[TOKEN_BYTES:]
        return hmac.compare_digest(mac, self._token_mac(random_part))

    def _token_mac(self, random_part: bytes) -> bytes:
        return hmac.new(self._token_key, random_part, hashlib.sha256).digest()[:TOKEN_MAC_BYTES]

    def _csrf_for(self, token: str) -> str:
        return _b64(hmac.new(self._key, token.encode(), hashlib.sha256).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class LoginLimiter:
    """How long a login must wait now, after how many wrong passwords.

    ``begin`` counts an attempt as failed before its password is tried (so parallel
    attempts cannot all pass the check), ``succeeded`` clears the count."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.failures = 0
        self._blocked_until_s = 0.0

    def wait_s(self) -> float:
        """Seconds until the next try is heard (0: now)."""
        return max(0.0, self._blocked_until_s - self._clock())

    def begin(self) -> float:
        """0 and the attempt counted as a failure until it succeeds; else the wait."""
        wait_s = self.wait_s()
        if wait_s == 0.0:
            self.failed()
        return wait_s

    def failed(self) -> None:
        self.failures += 1
        extra = self.failures - FREE_FAILURES
        if extra >= 0:
            wait_s = min(MAX_WAIT_S, FIRST_WAIT_S * 2.0 ** min(extra, 20))
            self._blocked_until_s = self._clock() + wait_s

    def succeeded(self) -> None:
        self.failures = 0
        self._blocked_until_s = 0.0
