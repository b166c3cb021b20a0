"""One HIL run per board: an exclusive ``fcntl.flock`` on a lock file named after the board.

Owns: the lock file's path (``/tmp/nirpad-hil-<name>-<hash>.lock``, derived from the board
URL; a device path is resolved first, so ``/dev/serial/by-id/…`` and the ``/dev/ttyUSB0``
it points to share one lock), taking the lock without waiting, and the error that tells
the engineer who holds it. The kernel drops the lock when the holder dies, so a crashed
run never leaves a board locked. Does not own the board or the test selection
(``hil/suite/conftest.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

__all__ = ["LOCK_DIR", "BoardLock", "BoardLockedError", "lock_path"]

LOCK_DIR: Final = Path("/tmp")


class BoardLockedError(RuntimeError):
    """Another run holds the board. Carries ``board_url``, ``path`` and ``holder``."""

    def __init__(self, board_url: str, path: Path, holder: str) -> None:
        super().__init__(
            f"the board {board_url} is in use by another HIL run ({holder}; lock file "
            f"{path}). Wait for that run to finish; two runs must never share one board."
        )
        self.board_url = board_url
        self.path = path
        self.holder = holder


def _canonical(board_url: str) -> str:
    """The URL with a device path resolved (symlinks followed), else as given."""
    if board_url.startswith("/"):
        return str(Path(board_url).resolve())
    return board_url


def lock_path(board_url: str, lock_dir: Path = LOCK_DIR) -> Path:
    """The lock file of ``board_url``: readable name plus a hash of the canonical URL."""
    canonical = _canonical(board_url)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9]+", "-", canonical).strip("-")[-40:] or "board"
    return lock_dir / f"nirpad-hil-{name}-{digest}.lock"


class BoardLock:
    """Exclusive use of one board for this process; ``acquire`` fails fast if taken."""

    def __init__(self, board_url: str, lock_dir: Path = LOCK_DIR) -> None:
        self.board_url = board_url
        self.path = lock_path(board_url, lock_dir)
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> None:
        """Take the lock now or raise ``BoardLockedError`` (never waits)."""
        if self._file is not None:
            return
        lock_file = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held open)
        try:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "holder unknown"
            lock_file.close()
            raise BoardLockedError(self.board_url, self.path, holder) from None
        except BaseException:
            lock_file.close()
            raise
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}")
        lock_file.flush()
        self._file = lock_file

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race a waiting locker)."""
        lock_file, self._file = self._file, None
        if lock_file is None:
            return
        with contextlib.suppress(OSError):
            lock_file.seek(0)
            lock_file.truncate()
        fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)
        lock_file.close()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
