"""Reading a small file that a person names, without blocking and within a size bound.

Owns: the one way this package reads such a file (``read_regular_file``): a regular
file only (a FIFO would block the open, a device could react to being opened), refused
from its size before anything is read, opened without blocking (``O_NONBLOCK |
O_NOCTTY | O_CLOEXEC``) and checked again once open (it may have been replaced in
between), never more than the bound plus one byte read. Also what a file that is not a
regular one is, in words (``file_kind``).

Does not own what the bytes mean, the messages a caller shows, or any rule on the
file's mode: the profile loader, the key files and the site configuration each word
the refusals (``NotRegularFileError``, ``FileTooLargeError``) their own way.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from profiles.errors import ProfileError

__all__ = ["FileTooLargeError", "NotRegularFileError", "file_kind", "read_regular_file"]


class NotRegularFileError(ProfileError):
    """The file is a directory, a FIFO, a device or a socket. ``mode`` is its ``st_mode``."""

    def __init__(self, mode: int) -> None:
        super().__init__(f"not a regular file ({file_kind(mode)})")
        self.mode = mode

    @property
    def kind(self) -> str:
        """What it is, in words: ``a named pipe``."""
        return file_kind(self.mode)


class FileTooLargeError(ProfileError):
    """The file is larger than ``max_bytes``; ``size_bytes`` is its size, or None when it
    grew past the bound after it was checked (only the bound plus one byte was read)."""

    def __init__(self, size_bytes: int | None, max_bytes: int) -> None:
        super().__init__(f"larger than {max_bytes} bytes ({size_bytes or 'more'} bytes)")
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes

    @property
    def size_words(self) -> str:
        """``20000 bytes``, or ``more than 16384 bytes`` when it grew while read."""
        if self.size_bytes is None:
            return f"more than {self.max_bytes} bytes"
        return f"{self.size_bytes} bytes"


def read_regular_file(path: Path | str, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file at ``path`` and its ``fstat`` once open.

    Raises ``NotRegularFileError``, ``FileTooLargeError``, or ``OSError`` when it cannot
    be opened or read (``FileNotFoundError`` when there is no such file).
    """
    _refuse_kind_or_size(os.stat(path), max_bytes)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _refuse_kind_or_size(info, max_bytes)
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # it grew after the fstat
        raise FileTooLargeError(None, max_bytes)
    return data, info


def _refuse_kind_or_size(info: os.stat_result, max_bytes: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise NotRegularFileError(info.st_mode)
    if info.st_size > max_bytes:
        raise FileTooLargeError(info.st_size, max_bytes)


def file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words: ``a named pipe``, ``a device``."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a file"
