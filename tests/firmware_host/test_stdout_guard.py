"""``firmware_host.stdout_guard``: a command whose output cannot be written fails in
one line, after it has run to its end."""

from __future__ import annotations

import errno
import io
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from firmware_host.cli import main
from firmware_host.stdout_guard import EXIT_BROKEN_PIPE, GuardedStdout, done, guarded_stdout

FULL_DISK = "could not write the output: the disk is full"


class FailingStream(io.StringIO):
    """A stdout whose writes (or only its flushes) fail with ``code``."""

    def __init__(self, code: int, *, on_flush_only: bool = False) -> None:
        super().__init__()
        self.code = code
        self.on_flush_only = on_flush_only
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        if not self.on_flush_only:
            raise OSError(self.code, os.strerror(self.code))
        return super().write(text)

    def flush(self) -> None:
        raise OSError(self.code, os.strerror(self.code))


def test_output_written_keeps_the_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with guarded_stdout() as output:
        print("fine")
        assert output.exit_code(3) == 3
    assert capsys.readouterr() == ("fine\n", "")


def test_a_full_disk_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    stream = FailingStream(errno.ENOSPC)
    guard = GuardedStdout(stream)
    print("one", file=guard)
    print("two", file=guard)  # dropped: the first failure is kept
    assert stream.writes == 1
    assert guard.exit_code(0) == 1
    assert capsys.readouterr().err == "nirpad: could not write the output: the disk is full\n"


def test_a_failure_only_at_the_last_flush_is_found(capsys: pytest.CaptureFixture[str]) -> None:
    guard = GuardedStdout(FailingStream(errno.EIO, on_flush_only=True))
    guard.write("buffered")
    assert guard.exit_code(0) == 1
    err = capsys.readouterr().err
    assert err == f"nirpad: could not write the output: {os.strerror(errno.EIO)}\n"


def test_a_command_that_failed_keeps_its_own_code(capsys: pytest.CaptureFixture[str]) -> None:
    guard = GuardedStdout(FailingStream(errno.ENOSPC))
    guard.write('{"installed": false}')
    assert guard.exit_code(3) == 3
    assert "could not write the output" in capsys.readouterr().err


def test_a_reader_that_left_the_pipe_is_141_and_quiet(capsys: pytest.CaptureFixture[str]) -> None:
    guard = GuardedStdout(FailingStream(errno.EPIPE))
    guard.write("first line\n")
    assert guard.exit_code(0) == EXIT_BROKEN_PIPE == 141
    assert guard.exit_code(4) == 4
    assert capsys.readouterr().err == ""


def test_a_change_made_is_named_even_when_the_reader_left_the_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    guard = GuardedStdout(FailingStream(errno.EPIPE))
    sys.stdout, before = guard, sys.stdout  # type: ignore[assignment]
    try:
        done("Recorded diary entry 3 for 2026-11-24.")
    finally:
        sys.stdout = before
    assert guard.exit_code(0) == EXIT_BROKEN_PIPE
    assert capsys.readouterr().err == (
        "nirpad: could not write the output: its reader left the pipe; done all the same: "
        "Recorded diary entry 3 for 2026-11-24.\n"
    )


def test_what_was_done_is_named_on_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", FailingStream(errno.ENOSPC))
    with guarded_stdout() as output:
        done("Report for 2026-11-01 to 2026-11-30 written:\n  /tmp/r.pdf\n  /tmp/r.csv")
        assert output.exit_code(0) == 1
    assert capsys.readouterr().err == (
        "nirpad: could not write the output: the disk is full; done all the same: "
        "Report for 2026-11-01 to 2026-11-30 written: /tmp/r.pdf /tmp/r.csv\n"
    )


def test_done_without_a_guard_only_prints(capsys: pytest.CaptureFixture[str]) -> None:
    done("Recorded diary entry 1 for 2026-11-24.")
    assert capsys.readouterr().out == "Recorded diary entry 1 for 2026-11-24.\n"


def test_a_stdout_closed_at_start_is_an_error_not_silence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python makes ``sys.stdout`` None when descriptor 1 is closed; ``print`` then
    drops everything without a word."""
    monkeypatch.setattr(sys, "stdout", None)
    with guarded_stdout() as output:
        assert not sys.stdout.isatty()
        print("lost")
        assert output.exit_code(0) == 1
    assert sys.stdout is None  # as it was
    err = capsys.readouterr().err
    assert err == "nirpad: could not write the output: the standard output is closed\n"


def test_a_command_that_writes_nothing_does_not_fail_on_a_closed_stdout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    with guarded_stdout() as output:
        assert output.exit_code(4) == 4


@pytest.mark.parametrize("stderr", [None, FailingStream(errno.EPIPE)])
def test_an_unusable_stderr_leaves_only_the_exit_code(
    monkeypatch: pytest.MonkeyPatch, stderr: io.StringIO | None
) -> None:
    monkeypatch.setattr(sys, "stderr", stderr)
    guard = GuardedStdout(FailingStream(errno.EIO))
    guard.write("x")
    assert guard.exit_code(0) == 1  # no exception from the message either


def test_the_descriptor_is_pointed_at_dev_null_after_a_failure(tmp_path: Path) -> None:
    """So that what the stream still holds cannot fail Python's own flush at exit."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write: EPIPE
    stream = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    try:
        guard = GuardedStdout(stream)
        guard.write("x" * 100_000)  # more than the buffer: written, and it fails
        guard.flush()
        assert guard.failure is not None and guard.failure.errno == errno.EPIPE
        assert os.path.samefile(f"/proc/self/fd/{write_end}", os.devnull)
        stream.write("held")
        stream.flush()  # would raise BrokenPipeError without the redirection
    finally:
        stream.close()


def test_main_restores_stdout_and_fails_a_help_it_could_not_write(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse drops a help it cannot write (it catches OSError) and exits 0."""
    failing = FailingStream(errno.ENOSPC)
    monkeypatch.setattr(sys, "stdout", failing)
    assert main(["--help"]) == 1
    assert sys.stdout is failing
    assert capsys.readouterr().err == "nirpad: could not write the output: the disk is full\n"


class ShortThenFull(io.RawIOBase):
    """A raw file that takes only ``room`` bytes, then is full: a disk nearly full, or a
    pipe whose reader left in the middle of a write (a short write, then EPIPE)."""

    def __init__(self, room: int, code: int) -> None:
        super().__init__()
        self.room = room
        self.code = code
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if not data:  # as a file: nothing to write is no error, even when full
            return 0
        if not self.room:
            raise OSError(self.code, os.strerror(self.code))
        taken = bytes(data[: self.room])
        self.data += taken
        self.room -= len(taken)
        return len(taken)


@pytest.mark.parametrize(("code", "exit_code"), [(errno.ENOSPC, 1), (errno.EPIPE, 141)])
def test_a_short_write_of_an_unbuffered_stdout_is_not_taken_for_all_of_it(
    capsys: pytest.CaptureFixture[str], code: int, exit_code: int
) -> None:
    """``python -u`` or ``PYTHONUNBUFFERED=1`` (the units set it) give a text layer
    right over the file, which drops what a short write left: a CSV cut at a nearly full
    disk, with exit 0 and no word. The rest is written, or its failure found."""
    raw = ShortThenFull(10, code)
    unbuffered = io.TextIOWrapper(raw, encoding="utf-8", write_through=True)  # as -u makes it
    guard = GuardedStdout(unbuffered)
    print("x" * 100, file=guard, end="")  # one write, as `history --csv` makes
    assert raw.data == b"x" * 10
    assert guard.exit_code(0) == exit_code
    reason = "" if code == errno.EPIPE else f"nirpad: {FULL_DISK}\n"
    assert capsys.readouterr().err == reason


def test_an_unbuffered_stdout_gets_all_of_a_write_in_short_pieces() -> None:
    class Trickle(io.RawIOBase):
        def __init__(self) -> None:
            super().__init__()
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, data: Any) -> int:
            self.data += bytes(data[:3])
            return min(3, len(data))

    raw = Trickle()
    guard = GuardedStdout(io.TextIOWrapper(raw, encoding="utf-8", write_through=True))
    print("72 J/cm² délivrés", file=guard)
    assert guard.exit_code(0) == 0
    assert raw.data.decode("utf-8") == "72 J/cm² délivrés\n"


def test_a_key_pair_written_is_named_when_its_report_cannot_be_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trust line for site.toml is said on stderr: a second keygen would refuse to
    overwrite the key, so it could not be shown again."""
    prefix = tmp_path / "clinic"
    monkeypatch.setattr(sys, "stdout", FailingStream(errno.ENOSPC))
    assert main(["profile", "keygen", "--out", str(prefix)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"nirpad: {FULL_DISK}; done all the same: ")
    assert str(prefix) + ".key" in err
    assert (tmp_path / "clinic.key").exists() and err.count("\n") == 1
