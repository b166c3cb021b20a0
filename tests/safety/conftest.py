"""Fixtures shared by the safety tests.

Every test gets a fresh gpiozero ``MockFactory`` as the default pin factory, closed
afterwards, so no GPIO device or pin reservation leaks from one test into the next.

``Rig`` (fixture ``rig``) is the whole safety core on the in-process simulator and one
virtual clock: a mock-pin rail wired to the simulated board's rail input, a ledger in
a temporary state directory on a storage a test can fill up or take away
(``hil.rigs.ledger_storage``), and a settable wall clock. ``rig.run(seconds)`` drives the
core the way firmware_host's loop does: wait (advancing virtual time), poll, and tick
every 20 ms.

``BoardFramePort`` sits on the wire between the core and the simulated board: a test
gives the core a frame the board did not send (an EVENT in flight at a pause) or loses
one it did (an overrun), through the real decoder, never through the core's privates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from drivers.protocol import FrameDecoder, Message, encode_frame
from drivers.protocol.messages import (
    BoardFault,
    CalibrationPoint,
    ChannelCalibration,
    ChannelTelemetry,
    Telemetry,
    TelemetryFlag,
)
from hil.rigs.clock import VirtualClock
from hil.rigs.ledger_storage import LedgerStorage
from hil.sim.board import SimBoard
from hil.sim.inprocess import SimPort, make_sim
from profiles.schema import Profile
from safety.board_kind import BoardKind
from safety.calibration import Calibration
from safety.core import SafetyCore
from safety.core_events import SafetyEvent
from safety.ledger import Ledger
from safety.limits import HARD_LIMITS, Limits
from safety.plan import PlannedChannel, SessionPlan
from safety.rail import PowerRail, make_rail

TICK_S = 0.02

LINEAR_CAL = Calibration(
    (ChannelCalibration(810, 550.0, tuple(CalibrationPoint(c, c / 10) for c in (0.0, 500.0))),)
)
"""One 810 nm channel, linear: 10 mA per mW/cm²."""
PLAN_40 = SessionPlan((PlannedChannel(0, 810, 40.0),), 0, 100, 0.0, 60.0)
"""40 mW/cm² CW on that channel for a minute, no ramp."""


def one_channel_frame(
    uptime_ms: int, current_ma: float, *, output_on: bool | None = None
) -> Telemetry:
    """A frame of that channel at ``current_ma``; the output flag follows the current
    unless ``output_on`` says otherwise."""
    on = bool(current_ma) if output_on is None else output_on
    flags = TelemetryFlag.CONTACT | (TelemetryFlag.OUTPUT_ON if on else TelemetryFlag.NONE)
    channel = ChannelTelemetry(current_ma, 0, 100)
    return Telemetry(uptime_ms, flags, BoardFault.NONE, 33.0, 33.0, 30.0, 12000, 200, (channel,))


START_WALL = dt.datetime(2026, 11, 10, 19, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def mock_pin_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        Device.pin_factory = previous


def make_profile(**overrides: Any) -> Profile:
    """A valid one-minute CW 810 nm prescription; ``overrides`` replace its fields."""
    fields: dict[str, Any] = {
        "schema_version": 1,
        "id": "test-810",
        "name": "test",
        "prescriber": "Dr Test",
        "issued": dt.date(2026, 11, 1),
        "expires": dt.date(2027, 2, 1),
        "channels": ({"wavelength_nm": 810, "irradiance_mw_cm2": 45.0},),
        "mode": {"kind": "cw"},
        "duration_min": 1,
        "ramp_s": 4.0,
        "sessions_per_week": 3,
        "min_interval_h": 20.0,
        "course_weeks": 4,
    }
    fields.update(overrides)
    return Profile.model_validate(fields)


class FailingMirror:
    """A rail listener (a mirror of a line, such as the rail file) that raises while
    ``failing``: added healthy with the rail's own ``add_listener``, then broken."""

    def __init__(self, error: Exception | None = None) -> None:
        self.failing = False
        self.error = error or OSError("disk full")

    def __call__(self, value: object) -> None:
        if self.failing:
            raise self.error


class BoardFramePort:
    """The board's side of the wire, with frames added (``send``), lost (``lose``) or
    altered (``alter``).

    Every frame from the board is decoded and sent on again, numbered in order with the
    added ones, so the host sees one well-formed stream (no sequence gap or duplicate).
    """

    def __init__(self, inner: SimPort) -> None:
        self.inner = inner
        self.lose: Callable[[Message], bool] = lambda message: False
        self.alter: Callable[[Message], Message] = lambda message: message
        self._decoder = FrameDecoder()
        self._added: list[Message] = []
        self._seq = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send(self, *messages: Message) -> None:
        """Frames the host reads after what the board has sent so far."""
        self._added += messages

    def read(self, size: int = 1) -> bytes:
        frames = [f.message for f in self._decoder.feed(self.inner.read(size))]
        messages = [self.alter(m) for m in frames if not self.lose(m)] + self._added
        self._added = []
        out = b""
        for message in messages:
            out += encode_frame(message, self._seq)
            self._seq = (self._seq + 1) & 0xFFFF
        return out

    def wait_readable(self, timeout_s: float) -> bool:
        return bool(self._added) or bool(self.inner.wait_readable(timeout_s))


@dataclass
class WallClock:
    """UTC wall time that moves with the virtual clock; ``offset`` jumps it (RTC-less Pi)."""

    clock: VirtualClock
    start: dt.datetime = START_WALL
    offset: dt.timedelta = dt.timedelta(0)

    def __post_init__(self) -> None:
        self._t0_s = self.clock()

    def __call__(self) -> dt.datetime:
        return self.start + self.offset + dt.timedelta(seconds=self.clock() - self._t0_s)


@dataclass
class Rig:
    clock: VirtualClock
    board: SimBoard
    port: SimPort
    rail: PowerRail
    state_dir: Path
    wall: WallClock
    limits: Limits = HARD_LIMITS
    board_kind: BoardKind | None = None  # what the host expects; None: the board's truth
    uptime_clock: Callable[[], float] | None = None  # the schedule's monotonic time
    core: SafetyCore | None = None
    events: list[SafetyEvent] = field(default_factory=list)
    ledger_storage: LedgerStorage = field(default_factory=LedgerStorage)
    pins: MockFactory | None = None  # the rail's mock GPIO lines (a wiring fault drops one)
    rail_wire: Callable[[bool], None] | None = None
    """What the rail's enable line drives; None: the board's rail (``rewire`` breaks it)."""

    def wire(self, enabled: bool) -> None:
        """The rail's listener: the enable line's level, along the wire to the board."""
        if self.rail_wire is None:
            self.board.set_rail(enabled)
        else:
            self.rail_wire(enabled)

    def rewire(self, wire: Callable[[bool], None]) -> None:
        """A wiring fault: the enable line drives ``wire`` from now on (told its level now)."""
        self.rail_wire = wire
        wire(self.rail.enabled)

    def connect(self, transport: Any = None) -> SafetyCore:
        self.core = SafetyCore.connect(
            transport=self.port if transport is None else transport,
            state_dir=self.state_dir,
            clock=self.clock,
            wall_clock=self.wall,
            limits=self.limits,
            rail=self.rail,
            board=self.board_kind or BoardKind.simulated(self.board.time_scale),
            uptime_clock=self.uptime_clock,
            ledger_connection=self.ledger_storage.connection,
        )
        return self.core

    @property
    def c(self) -> SafetyCore:
        assert self.core is not None, "call rig.connect() first"
        return self.core

    def ready(self, transport: Any = None) -> SafetyCore:
        """Connected, self-tested, with the boot events drained."""
        core = self.connect(transport)
        assert core.self_test() is None
        self.events += core.poll()
        return core

    def run(
        self, seconds: float, until: Callable[[list[SafetyEvent]], bool] | None = None
    ) -> list[SafetyEvent]:
        """Loop like the controller for ``seconds`` of virtual time (or until ``until``)."""
        core, got = self.c, []
        end_s = self.clock() + seconds
        while self.clock() < end_s:
            deadline_s = self.clock() + TICK_S
            while self.clock() < deadline_s:
                if not core.wait_readable(deadline_s - self.clock()):
                    self.clock.advance_to(deadline_s)  # the loop's own tick timeout
                got += core.poll()
            got += core.tick()
            if until is not None and until(got):
                break
        self.events += got
        return got

    def ledger(self) -> Ledger:
        return Ledger.open(self.state_dir, self.wall)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock, board, port = make_sim()
    pins = MockFactory()
    rail = make_rail(None, None, pins)
    the_rig = Rig(clock, board, port, rail, tmp_path / "state", WallClock(clock), pins=pins)
    rail.add_listener(the_rig.wire)
    try:
        yield the_rig
    finally:
        if the_rig.core is not None:
            the_rig.core.close()
        rail.close()
        pins.close()
