"""``nirpad clock confirm`` and ``nirpad ledger reset`` with no controller running.

Each runs under the state directory's lock, records what it did in the ledger, and
never shortens an interval. (With a controller running they go over the control
socket to its safety core: tests/firmware_host/test_controller_sim.py; here a stand-in
controller shows how the command says its refusal.) A time it cannot read and a state
directory that does not exist are bad input, exit 2, before anyone is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware_host.arg_types import STATED_TIME_HELP
from firmware_host.cli import main
from firmware_host.control import ControlServer
from firmware_host.control_client import EXIT_REFUSED, EXIT_USAGE, ControlReply
from firmware_host.state_lock import StateLock
from profiles.store import installed_path
from safety.faults import Outcome
from safety.ledger import Ledger
from safety.ledger_events import EventKind


def _year_ahead() -> datetime:
    return datetime.now(UTC) + timedelta(days=365)


def test_confirming_the_clock_ends_the_lockout_but_not_the_interval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Ledger.open(tmp_path, _year_ahead) as ahead:  # a session while a year ahead
        sid = ahead.begin_session("rx", "sha", {810: 1.0})
        ahead.end_session(sid, Outcome.COMPLETED, {810: 1.0})
    with Ledger.open(tmp_path, lambda: datetime.now(UTC)) as now:
        assert now.clock_refusal() is not None
    assert main(["clock", "confirm", "yesterday", "--state-dir", str(tmp_path)]) == 2
    assert "Say the date and time" in capsys.readouterr().err
    stated = datetime.now().strftime("%Y-%m-%d %H:%M")  # local time, as a caregiver reads it
    assert main(["clock", "confirm", stated, "--state-dir", str(tmp_path)]) == 0
    assert "one full interval" in capsys.readouterr().out
    with Ledger.open(tmp_path, lambda: datetime.now(UTC)) as now:
        assert now.clock_refusal() is None
        refusal = now.schedule_refusal(20.0, 7)
        assert refusal is not None and "20 h after the clock was confirmed" in refusal
        assert [e.kind for e in now.events()] == [EventKind.CLOCK_CONFIRMED]


@pytest.mark.parametrize(
    "when",
    ["garbage", "2026-02-30 06:40", "0001-01-01 00:00", "2026-W49-1 06:40", "2026W491T0640"],
)
def test_a_time_that_cannot_be_read_is_bad_input_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], when: str
) -> None:
    """Exit 2, as for any bad input, with the help text on one ``nirpad: `` line. Year 1
    has no local time (it would be year 0 somewhere): the same as any other date the
    command cannot read, not "year 0 is out of range"."""
    assert main(["clock", "confirm", when, "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"nirpad: {STATED_TIME_HELP}\n"
    assert list(tmp_path.iterdir()) == []  # no lock, no ledger


class _Controller:
    """A running controller that refuses every command with ``exit_code``."""

    def __init__(self, exit_code: int) -> None:
        self.exit_code = exit_code
        self.commands: list[tuple[str, dict[str, Any] | None]] = []

    def command(self, name: str, args: dict[str, Any] | None = None) -> ControlReply:
        self.commands.append((name, args))
        return ControlReply(False, self.exit_code, f"{name}: refused by the controller.")


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[_Controller]:
    controller, pool = _Controller(EXIT_REFUSED), ThreadPoolExecutor(max_workers=1)

    class Loop:
        def call_soon_threadsafe(self, fn: Callable[[], ControlReply]) -> Future[ControlReply]:
            return pool.submit(fn)

    server = ControlServer(tmp_path, controller, Loop())
    server.start()
    try:
        yield controller
    finally:
        server.close()
        pool.shutdown()


@pytest.mark.parametrize("exit_code", [EXIT_REFUSED, EXIT_USAGE])
def test_a_running_controllers_refusal_is_a_nirpad_line_with_its_exit_code(
    refusing: _Controller, tmp_path: Path, capsys: pytest.CaptureFixture[str], exit_code: int
) -> None:
    refusing.exit_code = exit_code
    stated = "2026-12-06 07:20"
    assert main(["clock", "confirm", stated, "--state-dir", str(tmp_path)]) == exit_code
    assert capsys.readouterr().err == "nirpad: clock_confirm: refused by the controller.\n"
    assert main(["ledger", "reset", "--state-dir", str(tmp_path)]) == exit_code
    assert capsys.readouterr().err == "nirpad: ledger_reset: refused by the controller.\n"
    assert [name for name, _ in refusing.commands] == ["clock_confirm", "ledger_reset"]
    assert refusing.commands[0] == ("clock_confirm", {"now": stated})


def test_a_time_that_cannot_be_read_is_refused_before_the_controller_is_asked(
    refusing: _Controller, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["clock", "confirm", "garbage", "--state-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"nirpad: {STATED_TIME_HELP}\n"
    assert refusing.commands == []


@pytest.mark.parametrize(
    ("command", "nothing"),
    [
        (["clock", "confirm", "2026-12-06 07:20"], "nothing was confirmed"),
        (["ledger", "reset"], "there is nothing to reset"),
    ],
)
def test_a_state_directory_that_does_not_exist_is_said_so_and_not_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str], nothing: str
) -> None:
    missing = tmp_path / "missing" / "dir"
    assert main([*command, "--state-dir", str(missing)]) == 2
    assert capsys.readouterr().err == (
        f"nirpad: there is no state directory {missing}: no treatment record is kept there, "
        f"so {nothing}; check --state-dir (or $NIRPAD_STATE_DIR)\n"
    )
    assert not (tmp_path / "missing").exists()


def test_a_lost_record_is_reset_and_a_sound_one_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ledger", "reset", "--state-dir", str(tmp_path)]) == 3
    assert "nothing to reset" in capsys.readouterr().err
    installed_path(tmp_path).write_text("# a prescription\n")
    for name in ("ledger.sqlite3", "ledger.backup.sqlite3"):
        (tmp_path / name).unlink(missing_ok=True)
    assert main(["ledger", "reset", "--state-dir", str(tmp_path)]) == 0
    with Ledger.open(tmp_path, lambda: datetime.now(UTC)) as ledger:
        kinds = [e.kind for e in ledger.events()]
        assert kinds == [EventKind.LEDGER_RESET, EventKind.LEDGER_LOST]
        assert ledger.lost_refusal() is None
        assert ledger.schedule_refusal(20.0, 7) is not None


def test_a_damaged_record_with_no_backup_is_reset_and_kept_aside(tmp_path: Path) -> None:
    (tmp_path / "ledger.sqlite3").write_bytes(b"garbage" * 2000)
    assert main(["ledger", "reset", "--state-dir", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("ledger.sqlite3.damaged-*"))) == 1


@pytest.mark.parametrize("command", [["clock", "confirm", "2026-12-03 10:00"], ["ledger", "reset"]])
def test_a_repair_waits_for_no_one_holding_the_state_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    held = StateLock.acquire(tmp_path, "test")
    try:
        assert main([*command, "--state-dir", str(tmp_path)]) == 3
    finally:
        held.release()
    assert "another nirpad process" in capsys.readouterr().err
    assert not (tmp_path / "ledger.sqlite3").exists()  # nothing was touched


@pytest.mark.usefixtures("builtin_wall_clock")  # the built-in as shipped
def test_an_install_with_no_controller_restores_a_deleted_record_first(tmp_path: Path) -> None:
    from importlib import resources

    rx = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml")
    assert main(["profile", "install", str(rx), "--state-dir", str(tmp_path)]) == 0
    with Ledger.open(tmp_path, lambda: datetime.now(UTC)) as ledger:
        sid = ledger.begin_session("rls-810-standard", "sha", {810: 1.0})
        ledger.end_session(sid, Outcome.COMPLETED, {810: 1.0})
    (tmp_path / "ledger.sqlite3").unlink()
    assert main(["profile", "install", str(rx), "--state-dir", str(tmp_path)]) == 0
    with Ledger.open(tmp_path, lambda: datetime.now(UTC)) as ledger:
        assert len(ledger.sessions()) == 1  # the history came back from the backup
        assert ledger.schedule_refusal(20.0, 7) is not None
