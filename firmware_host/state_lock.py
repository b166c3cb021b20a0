"""The one-writer lock on a state directory: ``<state_dir>/nirpad.lock``.

Owns: the exclusive ``flock`` that every process writing into a state directory takes
before it touches the ledger, the board's port or the rail (``nirpad run``, ``--sim``,
``nirpad demo``, ``nirpad profile install`` without a running controller, and the
ledger's maintenance commands), and the holder's pid written into the lock file so a
refused second process can say who holds it.

The lock lives as long as the open file: ``release`` (or the end of the ``with``) drops
it, and the kernel drops it when the process dies, so a SIGKILLed controller never
blocks the next one. A refused process changes nothing: it opens the lock file without
truncating it, fails the non-blocking ``flock`` and closes it again.

Does not own what the directory holds (``paths``, ``safety``, ``profiles`` do).
Only the standard library is imported here.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from types import TracebackType
from typing import Final

from firmware_host.paths import StateDirError

__all__ = ["LOCK_FILE_NAME", "StateDirBusy", "StateLock", "lock_path"]

log = logging.getLogger(__name__)

LOCK_FILE_NAME: Final = "nirpad.lock"
LOCK_FILE_MODE: Final = 0o640
_MAX_PID_BYTES: Final = 32


class StateDirBusy(StateDirError):
    """Another process holds the state directory; ``holder_pid`` is its pid if known."""

    def __init__(self, message: str, *, path: Path, holder_pid: int | None) -> None:
        super().__init__(message, path=path)
        self.holder_pid = holder_pid


def lock_path(state_dir: Path) -> Path:
    """The lock file of ``state_dir``."""
    return state_dir / LOCK_FILE_NAME


class StateLock:
    """An exclusive hold on one state directory, for as long as it is not released."""

    def __init__(self, state_dir: Path, fd: int) -> None:
        self.state_dir = state_dir
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path, purpose: str = "controller") -> StateLock:
        """Take the lock now or raise ``StateDirBusy`` (never waits).

        ``purpose`` only words the refusal. Raises ``StateDirError`` when the lock file
        cannot be opened at all (a missing or read-only directory)."""
        path = lock_path(state_dir)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, LOCK_FILE_MODE)
        except OSError as exc:
            raise StateDirError(
                f"cannot open the lock file {path}: {exc.strerror or exc}", path=path
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise StateDirBusy(
                _busy_message(state_dir, holder, purpose), path=state_dir, holder_pid=holder
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StateDirError(f"cannot lock {path}: {exc.strerror or exc}", path=path) from exc
        _write_pid(fd)
        log.debug("holding %s", path)
        return cls(state_dir, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Drop the lock (idempotent). The file stays; its pid is stale from now on."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the only descriptor releases the flock

    def __enter__(self) -> StateLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _write_pid(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:  # the lock holds all the same; only the message loses the pid
        log.warning("cannot write the pid into the lock file: %s", exc)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _MAX_PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _busy_message(state_dir: Path, holder: int | None, purpose: str) -> str:
    who = "another nirpad process" if holder is None else f"another nirpad process (pid {holder})"
    return (
        f"{who} is using the state directory {state_dir}; this {purpose} stopped before "
        "changing anything. Stop that process first, or give this one its own --state-dir."
    )
