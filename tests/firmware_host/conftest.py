"""Fixtures for the controller tests: a fake safety core, prescriptions, a pin factory.

``FakeCore`` has the method names of ``safety.core.SafetyCore`` (docs/architecture.md)
and records every call. It models only what the controller relies on: outputs on while
a session is treating, off after pause/end/all_off; a fault latched until acknowledged.
Tests queue the safety events that ``poll``/``tick`` return. The real core is used by
the integration tests (test_controller_sim.py).
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

from firmware_host.controller import Controller
from hil.rigs.clock import VirtualClock
from profiles.errors import Problem
from profiles.loader import LoadResult
from profiles.schema import Profile
from safety.core_events import FaultStatus, SafetySnapshot
from safety.errors import StartRefusedError
from safety.faults import FaultCode, Outcome

WALL_NOW = dt.datetime(2026, 11, 24, 19, 0, tzinfo=dt.UTC)


def make_profile(**changes: Any) -> Profile:
    fields: dict[str, Any] = {
        "schema_version": 1,
        "id": "rls-test",
        "name": "test",
        "prescriber": "Dr Test",
        "issued": dt.date(2026, 1, 1),
        "expires": dt.date(2027, 1, 1),
        "channels": ({"wavelength_nm": 810, "irradiance_mw_cm2": 40.0},),
        "mode": {"kind": "cw"},
        "duration_min": 30,
        "ramp_s": 30.0,
        "sessions_per_week": 3,
        "min_interval_h": 20.0,
        "course_weeks": 4,
    }
    fields.update(changes)
    return Profile.model_validate(fields)


def loaded(profile: Profile | None, *problems: str) -> LoadResult:
    return LoadResult(profile, [Problem("file", None, p) for p in problems], "ab" * 32, "rx")


@dataclass
class FakeCore:
    """Stands in for ``SafetyCore``; set the ``*_result`` fields to make it refuse."""

    clock: VirtualClock
    self_test_result: str | None = None
    start_refusal_result: str | None = None
    begin_error: Exception | None = None
    ack_result: str | None = None
    contact: bool = True
    self_test_passed: bool = False
    outputs_on: bool = False
    session_active: bool = False
    fault: FaultStatus | None = None
    needs_restart: bool = False  # beyond the RESTART_FAULTS codes (no INFO at the handshake)
    calls: list[str] = field(default_factory=list)
    poll_events: list[Any] = field(default_factory=list)
    tick_events: list[Any] = field(default_factory=list)
    ended: list[Outcome] = field(default_factory=list)
    all_off_count: int = 0
    raise_in: dict[str, Exception] = field(default_factory=dict)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.raise_in:
            raise self.raise_in[name]

    def self_test(self) -> str | None:
        self._call("self_test")
        self.self_test_passed = self.self_test_result is None
        return self.self_test_result

    def start_refusal(self, rx: Profile) -> str | None:
        self._call("start_refusal")
        return self.start_refusal_result

    def next_start_allowed_at(self, rx: Profile) -> dt.datetime | None:
        return None if not self.ended else WALL_NOW + dt.timedelta(hours=20)

    def begin_session(self, rx: Profile, profile_sha256: str) -> None:
        self._call("begin_session")
        if self.begin_error is not None:
            raise self.begin_error
        if self.start_refusal_result is not None:
            raise StartRefusedError(self.start_refusal_result)
        self.session_active = self.outputs_on = True

    def pause(self, reason: str) -> None:
        self._call("pause")
        self.outputs_on = False

    def resume(self, reason: str | None = None) -> None:
        self._call("resume")
        if not self.contact:
            raise StartRefusedError("Place the pad on the skin to resume: there is no contact.")
        self.outputs_on = True

    def end_session(self, outcome: Outcome) -> None:
        self._call("end_session")
        self.ended.append(outcome)
        self.session_active = self.outputs_on = False

    def poll(self) -> list[Any]:
        events, self.poll_events = self.poll_events, []
        return events

    def tick(self) -> list[Any]:
        self._call("tick")
        events, self.tick_events = self.tick_events, []
        return events

    def latch_fault(self, code: FaultCode, detail: str) -> None:
        self._call("latch_fault")
        if self.fault is None:
            self.fault = FaultStatus(code, detail)
        if self.session_active:
            self.ended.append(Outcome.FAULT)
        self.session_active = self.outputs_on = False

    def acknowledge_fault(self) -> str | None:
        self._call("acknowledge_fault")
        if self.ack_result is None:
            self.fault = None
        return self.ack_result

    def fault_clear_refusal(self) -> str | None:
        """What an acknowledgement would answer now: ``ack_result`` (read only)."""
        return None if self.fault is None else self.ack_result

    def snapshot(self) -> SafetySnapshot:
        return SafetySnapshot(
            session_active=self.session_active,
            contact=self.contact,
            self_test_passed=self.self_test_passed,
            fault=self.fault,
        )

    def all_off(self) -> None:
        self.all_off_count += 1
        self.outputs_on = False

    def fileno(self) -> int | None:
        return None

    def wait_readable(self, timeout_s: float) -> bool:
        self.clock.advance(timeout_s)
        return bool(self.poll_events)

    def latch(self, code: FaultCode, message: str = "test fault") -> None:
        """What the real core does on a fault: outputs off, fault latched."""
        self.fault = FaultStatus(code, message)
        self.outputs_on = False


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def core(clock: VirtualClock) -> FakeCore:
    return FakeCore(clock)


@dataclass
class WallClock:
    """A settable UTC wall clock."""

    now: dt.datetime = WALL_NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def wall() -> WallClock:
    return WallClock()


@pytest.fixture
def rx_holder() -> dict[str, LoadResult | None]:
    return {"rx": loaded(make_profile())}


ControllerFactory = Callable[..., Controller]


def ticks(controller: Controller, clock: VirtualClock, seconds: float = 0.1) -> None:
    """Run the controller's 20 ms tick for ``seconds`` of the virtual clock."""
    for _ in range(round(seconds / 0.02)):
        clock.advance(0.02)
        controller.on_tick()


@pytest.fixture
def make_controller(
    core: FakeCore,
    clock: VirtualClock,
    wall: WallClock,
    rx_holder: dict[str, LoadResult | None],
    tmp_path: Path,
) -> ControllerFactory:
    def build(*, boot: bool = True) -> Controller:
        controller = Controller(
            core,
            state_dir=tmp_path,
            clock=clock,
            wall_clock=wall,
            prescription_loader=lambda: rx_holder["rx"],
        )
        if boot:
            controller.boot()
        return controller

    return build


@pytest.fixture
def mock_factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    previous = Device.pin_factory
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.close()
        Device.pin_factory = previous
