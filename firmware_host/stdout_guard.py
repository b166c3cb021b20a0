"""The command line's standard output, when it cannot be written.

Owns: ``guarded_stdout``, which stands in for ``sys.stdout`` while a command runs;
``done``, the line a command prints once it has changed something; and what a command
that could not write its output says and returns (``GuardedStdout.exit_code``).

A write that fails (stdout closed, a full disk, an I/O error, a reader that left the
pipe) never raises into the command: the first failure is kept, the rest of the output
is dropped, and the command runs to its end, so a diary entry or an installed
prescription is never left half-done because its confirmation could not be shown. Then
the command ends with ``nirpad: could not write the output: <why>`` on stderr (naming
what was done all the same, from ``done``) and exit 1, or its own exit code when that
was already a failure. A reader that left the pipe (``nirpad history | head -1``) is
the shell's convention: exit 141 (128 + SIGPIPE, what a shell reports for a program
the pipe's end stopped), and nothing said unless the command changed something. Either
way the stream's descriptor is pointed at
/dev/null, so Python's own flush at exit has nothing left to fail on. An unbuffered
stdout (``PYTHONUNBUFFERED=1``, as the units set it) is written piece by piece: its
text layer would take a short write for a whole one and drop the rest without a word.

Does not own the commands' output itself, nor the files they write with ``-o``
(``output_files``). Only the standard library and ``profiles.file_errors`` are
imported: ``nirpad status`` must start fast.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Final, TextIO, cast

from profiles.file_errors import os_error_text

__all__ = ["EXIT_BROKEN_PIPE", "GuardedStdout", "done", "guarded_stdout"]

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_BROKEN_PIPE: Final = 141
"""128 + SIGPIPE: the reader of the pipe left (``| head -1``), as a shell reports it."""


class GuardedStdout:
    """A text stream over ``stream`` whose writes never raise ``OSError``: the first
    failure is kept in ``failure`` and everything written after it is dropped."""

    def __init__(self, stream: TextIO | io.TextIOBase) -> None:
        self._stream = stream
        self.failure: OSError | None = None
        self.done_lines: list[str] = []

    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                return self._write(text)
            except OSError as exc:
                self._fail(exc)
        return len(text)

    def _write(self, text: str) -> int:
        """``text`` written whole. Unbuffered (``python -u``, ``PYTHONUNBUFFERED=1``),
        the text layer sits right on the file and drops what a short write left (a
        nearly full disk, a reader leaving a pipe mid-write): written here, piece by
        piece, until all of it is or the write fails."""
        raw = getattr(self._stream, "buffer", None)
        if not isinstance(raw, io.RawIOBase):
            return self._stream.write(text)
        left = memoryview(text.encode(self._stream.encoding, self._stream.errors or "strict"))
        while left:
            written = raw.write(left)
            if not written:  # None: it would block; 0: nothing taken, nor ever will be
                raise OSError(errno.EAGAIN if written is None else errno.EIO, "short write")
            left = left[written:]
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self._stream.flush()
            except OSError as exc:
                self._fail(exc)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, ...
        return getattr(self._stream, name)

    def exit_code(self, code: int) -> int:
        """The command's exit code once its output is flushed: ``code`` if all of it was
        written; else, after one line on stderr, ``code`` if that was already a failure,
        or 1 (141 for the pipe). A reader that left the pipe gets no line, unless the
        command changed something: a script that sees 141 must not take it as undone."""
        self.flush()
        if self.failure is None:
            return code
        if self.failure.errno == errno.EPIPE:
            if self.done_lines:
                _say_on_stderr(self.message())
            return code if code != EXIT_OK else EXIT_BROKEN_PIPE
        _say_on_stderr(self.message())
        return code if code != EXIT_OK else EXIT_ERROR

    def message(self) -> str:
        """``nirpad: could not write the output: <why>``, and what was done all the same."""
        assert self.failure is not None
        text = f"nirpad: could not write the output: {_why(self.failure)}"
        if self.done_lines:  # on one line, as many as there were
            text += f"; done all the same: {' '.join(' '.join(self.done_lines).split())}"
        return text

    def _fail(self, exc: OSError) -> None:
        self.failure = exc
        _discard(self._stream)


class _ClosedStdout(io.TextIOBase):
    """What ``sys.stdout`` is when Python started with file descriptor 1 closed (it is
    then None, and ``print`` would drop everything without a word)."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))


@contextlib.contextmanager
def guarded_stdout() -> Iterator[GuardedStdout]:
    """``sys.stdout`` is a ``GuardedStdout`` in the block, and as it was after it."""
    before = sys.stdout
    guard = GuardedStdout(before if before is not None else _ClosedStdout())
    sys.stdout = cast(TextIO, guard)
    try:
        yield guard
    finally:
        sys.stdout = before


def done(text: str) -> None:
    """Print ``text``, the line saying what a command changed, once the change is made;
    should the output fail, the error on stderr says it instead."""
    if isinstance(sys.stdout, GuardedStdout):
        sys.stdout.done_lines.append(text)
    print(text)


def _why(exc: OSError) -> str:
    if exc.errno == errno.EBADF:
        return "the standard output is closed"
    if exc.errno == errno.EPIPE:
        return "its reader left the pipe"
    return os_error_text(exc)


def _say_on_stderr(line: str) -> None:
    """``line`` on stderr if it can be written; if not, nothing (and nothing at exit)."""
    stderr = sys.stderr
    if stderr is None:
        return
    try:
        print(line, file=stderr, flush=True)
    except OSError:
        _discard(stderr)


def _discard(stream: TextIO | io.TextIOBase) -> None:
    """Point ``stream``'s descriptor at /dev/null and flush what it still holds there, so
    neither a later flush nor Python's own at exit can fail again."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor (a test's stream)
        fd = stream.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)
    with contextlib.suppress(OSError, ValueError):
        stream.flush()
