"""Files a caregiver asks for (the clinic report, the course calendar), written atomically.

Owns: checking every target first (not a folder, nor a named pipe, a device or a
socket, which a rename would replace, link or not; its folder there and writable, and
not the state directory or in it),
writing each file to a temporary file beside it, synced, mode 0640, and renaming them
all into place only when all are written; so a full disk, a missing folder or a folder
named as a file leaves no partial file and no old one half-replaced. Should a rename
still fail after another succeeded, the message names the files written and those not.
Does not own what the files hold (``firmware_host.report_commands``,
``firmware_host.course_commands``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from profiles.file_errors import os_error_text
from profiles.regular_file import file_kind

__all__ = ["FILE_MODE", "OutputRefused", "write_atomically"]

FILE_MODE: Final = 0o640
EXIT_ERROR: Final = 1


class OutputRefused(Exception):
    """A file could not be written; ``code`` is the command's exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def write_atomically(files: Sequence[tuple[Path, bytes]], *, state_dir: Path | None = None) -> None:
    """Check every target, write every file beside its target, synced, then rename
    them all into place. A target that is a directory, or whose folder is missing or
    not writable, or is ``state_dir`` or in it (a report named ``ledger.sqlite3`` there
    would replace the treatment record), is refused before anything is written. A
    failure while writing removes the temporary files: nothing written. A rename that
    still fails after another one succeeded names the files already replaced. Raises
    ``OutputRefused``."""
    for target, _ in files:
        _check_target(target)
        if state_dir is not None:
            _check_outside(target, state_dir)
    temps: list[Path] = []
    target = files[0][0] if files else Path()
    try:
        for target, content in files:
            temps.append(_write_temp(target, content))
    except OSError as exc:
        _remove(temps)
        raise OutputRefused(
            f"cannot write {target}: {os_error_text(exc)}; nothing was written", EXIT_ERROR
        ) from exc
    except BaseException:  # Ctrl-C during a slow fsync: no hidden temporary file left
        _remove(temps)
        raise
    replaced: list[Path] = []
    for temp, (target, _) in zip(temps, files, strict=True):
        try:
            os.replace(temp, target)
        except OSError as exc:
            _remove(temps[len(replaced) :])
            raise OutputRefused(
                f"cannot write {target}: {os_error_text(exc)}; {_written(files, replaced)}",
                EXIT_ERROR,
            ) from exc
        except BaseException:
            _remove(temps[len(replaced) :])
            raise
        replaced.append(target)


def _written(files: Sequence[tuple[Path, bytes]], replaced: Sequence[Path]) -> str:
    """Which files a failed rename left written and which not, by name."""
    if not replaced:
        return "nothing was written"
    rest = [str(path) for path, _ in files[len(replaced) :]]
    return f"written: {', '.join(map(str, replaced))}; not written: {', '.join(rest)}"


def _check_target(target: Path) -> None:
    """Refuse a target that cannot be replaced: a directory, or a folder that is
    missing or not writable (so a rename after the first does not fail for it); and one
    that must not be: a named pipe, a device or a socket, or a link to anything (a rename
    replaces the link itself: ``-o /dev/stdout``, a link to the file standard output
    goes to when that is a regular file, would become the report)."""
    folder = target.parent
    special = _special_kind(target)
    if target.is_dir():
        problem = "it is a folder"
    elif special:
        problem = f"it is not a regular file ({special})"
    elif target.is_symlink():
        problem = (
            f"it is a link (to {os.readlink(target)}); writing would replace the link, not "
            "the file it points to: give the file's own name"
        )
    elif not folder.is_dir():
        problem = "No such file or directory"
    elif not os.access(folder, os.W_OK | os.X_OK):
        problem = f"the folder {folder} is not writable"
    else:
        return
    raise OutputRefused(f"cannot write {target}: {problem}; nothing was written", EXIT_ERROR)


def _check_outside(target: Path, state_dir: Path) -> None:
    """Refuse a target whose folder, links followed, is the state directory or in it."""
    folder, kept = target.parent.resolve(), state_dir.resolve()
    if folder == kept or kept in folder.parents:
        raise OutputRefused(
            f"cannot write {target}: it is in the state directory {state_dir}, which holds "
            "the treatment record; choose another folder; nothing was written",
            EXIT_ERROR,
        )


def _special_kind(target: Path) -> str | None:
    """What the target is, links followed, when it exists and is neither a regular
    file nor a folder: ``a named pipe``, ``a device``, ``a socket``."""
    try:
        mode = target.stat().st_mode
    except (OSError, ValueError):
        return None  # not there, or a dangling link (refused as a link)
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else file_kind(mode)


def _remove(temps: Sequence[Path]) -> None:
    for temp in temps:
        with contextlib.suppress(OSError):
            temp.unlink()


def _write_temp(path: Path, content: bytes) -> Path:
    """``content`` in a new file beside ``path``, synced, mode 0640; its name."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:  # a full disk, or Ctrl-C
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return temp
