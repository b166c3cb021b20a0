"""The answer to a form, kept for one look: the one-shot message store (Post/Redirect/Get).

Owns: ``Flash`` (what a form's answer says: its sentence, ok or refused, and the
problems a refusal lists) and ``FlashStore``, the only place such answers wait between
the POST that made one and the GET that shows it. An answer is stored under a random
id and bound to the session that sent the form: only a request of that session takes
it, and taking it forgets it, so a reload shows nothing. It waits at most
``FLASH_TTL_S`` (on an injected monotonic clock) and the store holds at most
``MAX_FLASHES``, the oldest going first: an answer nobody came for costs nothing for long.

Does not own requests, sessions or pages (``web.forms`` hands answers in and out).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

FLASH_TTL_S: Final = 60.0
MAX_FLASHES: Final = 64
FLASH_ID_BYTES: Final = 16


@dataclass(frozen=True)
class Flash:
    """What a form's answer says on the page the form came from."""

    text: str
    ok: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Waiting:
    owner: str
    flash: Flash
    made_s: float


class FlashStore:
    """Answers waiting for their one GET, by random id, each bound to its owner."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        ttl_s: float = FLASH_TTL_S,
        max_flashes: int = MAX_FLASHES,
    ) -> None:
        self._clock = clock
        self._ttl_s = ttl_s
        self._max_flashes = max_flashes
        self._waiting: dict[str, _Waiting] = {}  # in the order they were made

    def put(self, owner: str, flash: Flash) -> str:
        """Keep ``flash`` for ``owner`` (a session's token); its new random id."""
        self._expire()
        while len(self._waiting) >= self._max_flashes:
            del self._waiting[next(iter(self._waiting))]
        flash_id = secrets.token_urlsafe(FLASH_ID_BYTES)
        self._waiting[flash_id] = _Waiting(owner, flash, self._clock())
        return flash_id

    def take(self, owner: str, flash_id: str | None) -> Flash | None:
        """The flash ``flash_id`` names, once, if it is ``owner``'s and still waiting;
        None for an unknown, expired or foreign id (a foreign one stays for its owner)."""
        self._expire()
        if not flash_id:
            return None
        waiting = self._waiting.get(flash_id)
        if waiting is None or not hmac.compare_digest(waiting.owner.encode(), owner.encode()):
            return None
        del self._waiting[flash_id]
        return waiting.flash

    def __len__(self) -> int:
        return len(self._waiting)

    def _expire(self) -> None:
        """Forget the answers older than the time-to-live (the oldest come first)."""
        now_s = self._clock()
        for flash_id, waiting in list(self._waiting.items()):
            if now_s - waiting.made_s <= self._ttl_s:
                return
            del self._waiting[flash_id]
