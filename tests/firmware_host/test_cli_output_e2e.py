"""``python -m firmware_host`` with a standard output that cannot be written: closed
(``>&-``), a full disk (/dev/full), a reader that left the pipe. One line on stderr
and a failing exit status, never a traceback nor Python's "Exception ignored" at exit;
a command that changed something did so completely, and says so. Slow (a process
each); the fast lane keeps the guard's own tests (test_stdout_guard.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest

from profiles.store import install_atomic

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BUILTIN = REPO / "profiles" / "builtin" / "rls-810-standard.toml"
CLOSED = "could not write the output: the standard output is closed"
FULL = "could not write the output: the disk is full"


def _closed(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shell = ["sh", "-c", 'exec "$0" "$@" >&-']
    return subprocess.run(
        [*shell, *argv], stderr=subprocess.PIPE, env=env, text=True, timeout=60, check=False
    )


def _full(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    with open("/dev/full", "wb") as full:
        return subprocess.run(
            argv, stdout=full, stderr=subprocess.PIPE, env=env, text=True, timeout=60, check=False
        )


def _pipe_left(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: EPIPE, every time
    try:
        return subprocess.run(
            argv, stdout=write_end, stderr=subprocess.PIPE, env=env, text=True, timeout=60,
            check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)


def _captured(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, env=env, text=True, timeout=60, check=False)


Runner = Callable[[list[str], dict[str, str]], subprocess.CompletedProcess[str]]
SINKS: dict[str, tuple[Runner, str | None, int]] = {
    "closed": (_closed, CLOSED, 1),
    "full": (_full, FULL, 1),
    "pipe": (_pipe_left, None, 141),
    "captured": (_captured, None, 0),  # the output read, as usual
}


def nirpad(sink: str, state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``nirpad ARGS`` of this tree on the state directory ``state``, its stdout as
    ``sink`` says, block-buffered as usual (Python's flush at exit is what complained)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "NIRPAD_DEBUG")}
    env["PYTHONPATH"] = str(REPO)
    env["NIRPAD_STATE_DIR"] = str(state)
    env.pop("NIRPAD_SITE_CONFIG", None)
    proc = SINKS[sink][0]([sys.executable, "-m", "firmware_host", *args], env)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    return proc


def expect_failure(proc: subprocess.CompletedProcess[str], sink: str, done: str = "") -> None:
    _, reason, code = SINKS[sink]
    assert proc.returncode == code, proc.stderr
    if reason is None:
        assert proc.stderr == ""
    else:
        tail = f"; done all the same: {done}" if done else ""
        assert proc.stderr.splitlines()[-1] == f"nirpad: {reason}{tail}"


def current_prescription() -> str:
    """The built-in prescription, valid from a month ago for a year (whatever today is)."""
    today = date.today()
    text = BUILTIN.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^issued = .*$", f"issued = {today - timedelta(days=30)}", text)
    return re.sub(r"(?m)^expires = .*$", f"expires = {today + timedelta(days=365)}", text)


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    install_atomic(state, current_prescription().encode())
    return state


@pytest.mark.parametrize("sink", SINKS)
def test_history(tmp_path: Path, sink: str) -> None:
    expect_failure(nirpad(sink, tmp_path, "history"), sink)


@pytest.mark.parametrize("sink", SINKS)
def test_status_with_no_controller_writes_nothing_and_is_only_that(
    tmp_path: Path, sink: str
) -> None:
    proc = nirpad(sink, tmp_path, "status")
    assert proc.returncode == 4
    assert proc.stderr == f"nirpad: no controller is running for {tmp_path}\n"


@pytest.mark.parametrize("sink", ["closed", "full"])
@pytest.mark.parametrize("command", [["profile", "show"], ["course"]])
def test_profile_show_and_course(installed: Path, sink: str, command: list[str]) -> None:
    expect_failure(nirpad(sink, installed, *command), sink)


def test_profile_show_json_of_none_installed_keeps_its_refusal(tmp_path: Path) -> None:
    proc = nirpad("full", tmp_path, "profile", "show", "--json")
    assert proc.returncode == 3  # refused, as with its JSON shown
    assert proc.stderr == f"nirpad: {FULL}\n"  # the JSON said why; now this does


def test_an_install_is_complete_and_named(tmp_path: Path) -> None:
    state, rx = tmp_path / "state", tmp_path / "rx.toml"
    rx.write_text(current_prescription(), encoding="utf-8")
    proc = nirpad("full", state, "profile", "install", str(rx))
    assert proc.returncode == 1
    assert re.fullmatch(
        rf"nirpad: {FULL}; done all the same: installed rls-810-standard "
        rf"\(sha256 [0-9a-f]{{12}}…\) as {re.escape(str(state))}/prescription.toml\n",
        proc.stderr,
    )
    shown = nirpad("captured", state, "profile", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["profile"]["id"] == "rls-810-standard"


@pytest.mark.parametrize("sink", ["closed", "full"])
def test_a_diary_entry_is_saved_and_named(installed: Path, sink: str) -> None:
    proc = nirpad(sink, installed, "diary", "--legs", "3")
    expect_failure(proc, sink, done=f"Recorded diary entry 1 for {date.today().isoformat()}.")
    shown = nirpad("captured", installed, "diary", "show", "--json")
    assert [e["leg_symptoms"] for e in json.loads(shown.stdout)["nightly"]] == [3]
