"""A long run's report to a stdout that fails: one line on stderr, no traceback."""

from __future__ import annotations

import errno
import io
import subprocess
import sys
from pathlib import Path

import pytest

from hil.tools.report_out import print_report

ROOT = Path(__file__).resolve().parents[3]


class FullStdout(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_report_that_cannot_be_printed_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert print_report("{}", "prog") is True
    monkeypatch.setattr(sys, "stdout", FullStdout())
    assert print_report("{}", "prog") is False
    assert capsys.readouterr().err == (
        "prog: the report could not be written (No space left on device)\n"
    )


def test_the_fuzz_report_to_a_full_disk_ends_with_one_line() -> None:
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "hil.tools.fuzz", "decoder", "--frames", "10", "--seed", "1"],
            cwd=ROOT, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "python -m hil.tools.fuzz: the report could not be written (No space left on device)"
    )
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
