"""The one assembly of the stack: what each part given to ``assemble_stack`` changes.

Every test builds the stack over the in-process simulator on a virtual clock, with a
prescription installed as a caregiver installs it (signed by the rigs' clinic, whose key
the state directory's site configuration trusts), and checks one part: the board kind,
the site configuration (limits, trusted keys, the second backup place), the clocks, and
the ledger's connection class (a full disk, a host process that dies).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from firmware_host.assembly import AssembledStack, assemble_stack
from firmware_host.machine import State
from firmware_host.profile_commands import validate_and_install
from hil.rigs.clinic import sign, trust_rig_clinic
from hil.rigs.clock import VirtualClock
from hil.rigs.ledger_storage import LedgerStorage
from hil.sim.board import SimBoard
from hil.sim.inprocess import RailWire, SimPort, make_sim
from safety.board_kind import REAL_BOARD, BoardKind
from safety.core import BoardConnectError
from safety.faults import FaultCode, Outcome
from safety.ledger import BACKUP_FILENAME, Ledger
from safety.rail import PowerRail, make_rail

WALL_START = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)
RX = resources.files("profiles").joinpath("builtin", "rls-810-standard.toml").read_bytes()


@dataclass
class Parts:
    """What a caller gives the assembly; ``build`` assembles them (closed at the end)."""

    state_dir: Path
    clock: VirtualClock
    board: SimBoard
    rail: PowerRail
    port: SimPort | None = None
    wall_offset: dt.timedelta = dt.timedelta(0)
    built: list[AssembledStack] = field(default_factory=list)

    def wall(self) -> dt.datetime:
        return WALL_START + self.wall_offset + dt.timedelta(seconds=self.clock() - 1000.0)

    def install(self, data: bytes, site: Path | None) -> None:
        outcome = validate_and_install(
            self.state_dir, data, "rx.toml", site, session_state=lambda: None, wall_clock=self.wall
        )
        assert outcome.ok, outcome.message

    def build(self, **changes: Any) -> AssembledStack:
        """Each stack opens the board's port anew, as a process opens the tty."""
        self.port = SimPort(self.board, self.clock)
        self.port.reset_input_buffer()
        parts: dict[str, Any] = {
            "state_dir": self.state_dir,
            "board": BoardKind.simulated(self.board.time_scale),
            "rail": self.rail,
            "transport": self.port,
            "site_config": self.state_dir / "site.toml",
            "clock": self.clock,
            "wall_clock": self.wall,
        }
        stack = assemble_stack(**{**parts, **changes})
        self.built.append(stack)
        return stack

    def sessions(self) -> list[Any]:
        with Ledger.open(self.state_dir, self.wall) as ledger:
            return ledger.sessions()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    clock, board, port = make_sim(seed=3, time_scale=60.0)
    port.close()  # each stack opens its own
    rail = make_rail(None, None)
    RailWire(board, clock).connect(rail)
    state_dir = tmp_path / "state"
    made = Parts(state_dir, clock, board, rail)
    made.install(sign(RX), trust_rig_clinic(state_dir))
    try:
        yield made
    finally:
        for stack in made.built:
            stack.close()
        rail.close()


def _treat(stack: AssembledStack, parts: Parts, seconds: float) -> None:
    assert stack.controller.boot() is State.READY, stack.controller.status()
    stack.loop.run_for(0.5)
    reply = stack.controller.command("start")
    assert reply.ok, reply.message
    stack.loop.run_for(seconds)
    assert parts.board.state()["outputs_on"]


def test_the_assembled_stack_treats_and_closes_dark(parts: Parts) -> None:
    stack = parts.build()
    _treat(stack, parts, 20.0)
    stack.close()
    stack.close()  # idempotent
    parts.board.advance_to(parts.clock.advance(0.6))  # longer than any lease
    assert not parts.board.state()["outputs_on"]
    (session,) = parts.sessions()
    assert session.outcome is Outcome.STOPPED


def test_a_prescription_changed_after_signing_is_refused_on_load(parts: Parts) -> None:
    installed = parts.state_dir / "prescription.toml"
    installed.write_bytes(
        installed.read_bytes().replace(b"min_interval_h = 20", b"min_interval_h = 30")
    )
    stack = parts.build()
    assert stack.controller.boot() is State.IDLE
    assert "signature" in stack.controller.status()["state_reason"]


def test_without_the_site_configuration_the_clinic_is_not_trusted(parts: Parts) -> None:
    """No site file: an empty trust store, so the signature is not checked at all."""
    installed = parts.state_dir / "prescription.toml"
    installed.write_bytes(
        installed.read_bytes().replace(b"min_interval_h = 20", b"min_interval_h = 30")
    )
    stack = parts.build(site_config=None)
    assert stack.controller.boot() is State.READY


def test_the_site_limits_judge_the_prescription(parts: Parts) -> None:
    site = parts.state_dir / "site.toml"
    site.write_text(site.read_text() + "\n[limits]\nirradiance_max_mw_cm2 = 30\n")
    stack = parts.build()
    assert stack.controller.boot() is State.IDLE
    assert "30" in stack.controller.status()["state_reason"]


def test_the_second_backup_place_comes_from_the_site(parts: Parts, tmp_path: Path) -> None:
    site = parts.state_dir / "site.toml"
    site.write_text(site.read_text() + f'\n[ledger]\nbackup_dir = "{tmp_path / "usb"}"\n')
    stack = parts.build()
    _treat(stack, parts, 5.0)
    assert stack.controller.command("stop").ok
    stack.close()  # waits for the backups asked for
    assert (tmp_path / "usb" / BACKUP_FILENAME).is_file()


def test_the_host_must_be_started_for_the_board_it_finds(parts: Parts) -> None:
    stack = parts.build(board=REAL_BOARD)
    assert stack.controller.boot() is State.FAULT
    assert (
        "not the kind this controller was started for"
        in stack.controller.status()["fault"]["message"]
    )
    with Ledger.open(parts.state_dir, parts.wall) as ledger:
        assert FaultCode.BOARD_MISMATCH in [f.code for f in ledger.faults()]


def test_a_port_that_cannot_be_opened_raises(parts: Parts) -> None:
    with pytest.raises(BoardConnectError):
        parts.build(transport=None, port_url="nosuchscheme://x")


@pytest.mark.parametrize("uptime_moves", [True, False])
def test_the_schedule_trusts_the_uptime_clock(parts: Parts, uptime_moves: bool) -> None:
    """Two idle days pass unsimulated: the wall clock moves, the virtual clock does not.
    Only with an uptime clock that saw them pass may the next session start."""
    idle_s = [0.0]
    stack = parts.build(uptime_clock=lambda: parts.clock() + idle_s[0])
    if not uptime_moves:
        stack.close()
        parts.built.remove(stack)
        stack = parts.build()  # the default: the virtual clock, which saw nothing pass
    _treat(stack, parts, 5.0)
    assert stack.controller.command("stop").ok
    stack.loop.run_for(0.5)
    assert stack.controller.command("ack").ok
    stack.loop.run_for(1.5)
    assert "20 h" in (stack.controller.status()["start_refusal"] or "")
    parts.wall_offset = dt.timedelta(days=2)
    idle_s[0] = dt.timedelta(days=2).total_seconds()
    stack.loop.run_for(1.5)
    refusal = stack.controller.status()["start_refusal"]
    assert (refusal is None) is uptime_moves, refusal


def test_a_full_disk_under_the_ledger_refuses_start(parts: Parts) -> None:
    storage = LedgerStorage()
    stack = parts.build(ledger_connection=storage.connection)
    assert stack.controller.boot() is State.READY
    storage.full = True
    reply = stack.controller.command("start")
    assert reply.exit_code == 3 and "disk is full" in reply.message, reply.message
    assert storage.refused > 0
    assert not parts.board.state()["outputs_on"]


def test_a_host_that_dies_leaves_its_session_to_the_next_one(parts: Parts) -> None:
    storage = LedgerStorage()
    first = parts.build(ledger_connection=storage.connection)
    _treat(first, parts, 10.0)
    storage.drop_connections()  # nothing of the first host runs again; the kernel closes
    parts.built.remove(first)  # its files: the ledger's, the loop's pipe, the port
    first.loop.close()
    assert parts.port is not None
    parts.port.close()
    parts.board.advance_to(parts.clock.advance(0.6))  # its lease runs out
    assert not parts.board.state()["outputs_on"]
    (session,) = parts.sessions()
    assert session.outcome is None  # nobody closed it
    second = parts.build()
    (session,) = parts.sessions()
    assert session.outcome is Outcome.POWER_LOST
    assert second.controller.boot() is State.READY
