"""The same form sent again at once (a double click): done once, answered as the first.

Owns: ``FormRepeats``, which remembers the last form each session sent (its page's path
and its fields, as a digest) and, for the forms that record something (the install,
the diary's two forms), the answer to it. A browser that sends a form twice shows the
answer to the second request; done again, that answer was a refusal of what the first
had just done ("Upload and check the prescription again; nothing was installed" of an
installed prescription, "Not recorded: There is already a nightly entry" of a recorded
one). So a form that is the session's last form again, sent while that one is being
done or within ``REPEAT_S`` of its answer, is not done again: it gets the first's
answer. Any other form the session sends in between ends this (a check, a button, the
other diary form), so a form sent again on purpose later is done again. At most
``MAX_SESSIONS`` sessions are remembered (the oldest go first). The buttons are not
answered this way: a second press is sent, and the controller's answer to it is true.

Does not own the answers' one look (``web.flash``) nor the forms (``web.forms``).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from web.flash import Flash

REPEAT_S: Final = 5.0
MAX_SESSIONS: Final = 64
FAILED: Final = Flash("The page failed; nothing more was done. Try again.", ok=False)


@dataclass
class _Sent:
    digest: str
    answer: asyncio.Future[Flash] | None  # None: a form not answered this way
    answered_s: float | None = None  # None: still being done


class FormRepeats:
    """Each session's last form, and the answer to it while it may be repeated."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        repeat_s: float = REPEAT_S,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        self._clock = clock
        self._repeat_s = repeat_s
        self._max_sessions = max_sessions
        self._last: dict[str, _Sent] = {}  # by session token, oldest first

    def sent(self, owner: str, digest: str) -> None:
        """``owner`` sent the form ``digest``: any other form it sent before is no longer
        one a repeat can be answered from."""
        last = self._last.get(owner)
        if last is None or last.digest != digest:
            self._remember(owner, _Sent(digest, None))

    async def once(self, owner: str, digest: str, action: Callable[[], Awaitable[Flash]]) -> Flash:
        """``action``'s answer; for a repeat of ``owner``'s last form, the first's."""
        last = self._last.get(owner)
        if last is not None and last.answer is not None and self._repeats(last, digest):
            return await asyncio.shield(last.answer)
        sent = _Sent(digest, asyncio.get_running_loop().create_future())
        self._remember(owner, sent)
        assert sent.answer is not None
        try:
            flash = await action()
        except BaseException:
            sent.answer.set_result(FAILED)  # a repeat already waiting for it says so
            if self._last.get(owner) is sent:  # a later one is done again
                del self._last[owner]
            raise
        sent.answer.set_result(flash)
        sent.answered_s = self._clock()
        return flash

    def __len__(self) -> int:
        return len(self._last)

    def _repeats(self, last: _Sent, digest: str) -> bool:
        """Whether ``digest`` is ``last`` again, while it is done or soon after."""
        if last.digest != digest:
            return False
        return last.answered_s is None or self._clock() - last.answered_s <= self._repeat_s

    def _remember(self, owner: str, sent: _Sent) -> None:
        self._last.pop(owner, None)
        while len(self._last) >= self._max_sessions:
            del self._last[next(iter(self._last))]
        self._last[owner] = sent


def form_digest(path: str, items: Sequence[tuple[str, Any]]) -> str:
    """The form as a repeat is recognised: its path and its fields in order (a file is
    never the same as another: a check is always done)."""
    digest = hashlib.sha256(path.encode())
    for name, value in items:
        text = value if isinstance(value, str) else f"file {id(value)}"
        for part in (name, text):
            data = part.encode("utf-8", "surrogatepass")
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()
