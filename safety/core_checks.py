"""The safety core's gates: the boot self-test and every guard of ``start``.

Owns: the self-test sequence (handshake done, calibration sane, sensors plausible in
the first telemetry frames, outputs confirmed off, the rail line proven to switch the
board's LED supply), its failure as the latched SELF_TEST_FAILED fault, and the
ordered start guards, each with a reason a person can read. Does not own the checks'
thresholds (``limits``/``supervisor``), the schedule rules (``ledger``) or the state
machine that asks (``firmware_host``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Final

from drivers.errors import BoardDisconnectedError, DriverError
from drivers.protocol import BoardFault, OutputOff, Telemetry
from profiles.schema import Profile
from safety.core_state import CoreState
from safety.errors import LedgerError, StartRefusedError
from safety.faults import FaultCode
from safety.ledger import Ledger
from safety.limits import check_profile
from safety.plan import plan_from_profile
from safety.rail import RailError
from safety.records import schedule_rule

__all__ = ["SELF_TEST_FRAMES", "SELF_TEST_STEP_TIMEOUT_S", "CoreChecks"]

log = logging.getLogger(__name__)

SELF_TEST_FRAMES: Final = 3
"""Telemetry frames read before the sensors are judged."""
SELF_TEST_STEP_TIMEOUT_S: Final = 0.5
"""How long each self-test step waits for the board to show the expected state."""
_WAIT_SLICE_S: Final = 0.02
CLOCK_PLAUSIBLE_FROM: Final = date(2026, 1, 1)
"""A wall clock before this date was never set (a Pi without an RTC boots at 1970, or at
the image's build date): treatment waits for the date and time."""


class CoreChecks(CoreState):
    """Self-test and start guards of ``SafetyCore``; see the module notes."""

    def _poll_inputs(self) -> None:
        raise NotImplementedError

    def wait_readable(self, timeout_s: float) -> bool:
        raise NotImplementedError

    # ------------------------------------------------------------ self-test

    def self_test(self) -> str | None:
        """Run the boot self-test; None when passed, else the reason (and a latched fault)."""
        self._self_test_passed = False
        self._write_unwritten()  # a chance for records kept while the ledger was full
        problem = self._self_test_problem()
        if problem is None:
            self._self_test_passed = True
            log.info("self-test passed")
            return None
        log.error("self-test failed: %s", problem)
        if self._fault is None:
            self._latch(FaultCode.SELF_TEST_FAILED, problem)
        return problem

    def _self_test_problem(self) -> str | None:
        if self._fault is not None:
            return f"{self._fault.message} Acknowledge the fault first."
        if self._session is not None:
            return "A session is running; the self-test runs only between sessions."
        problem = self._interlock.calibration.sanity_problem()
        if problem is not None:
            return f"The pad's calibration is unusable: {problem}."
        for step in (self._check_sensors, self._check_outputs_off, self._check_rail):
            problem = step()
            if problem is None and self._fault is not None:
                problem = self._fault.message
            if problem is not None:
                return problem
        return None

    def _check_sensors(self) -> str | None:
        for _ in range(SELF_TEST_FRAMES):
            problem = self._expect(lambda tm: True, "The pad sends no telemetry.")
            if problem is not None:
                return problem
        return None  # the supervisor judged every frame: a bad sensor is latched

    def _check_outputs_off(self) -> str | None:
        try:
            self._interlock.client.request(OutputOff(), SELF_TEST_STEP_TIMEOUT_S)
        except BoardDisconnectedError as exc:
            self._lost_board(exc)
            return None  # the latched BOARD_DISCONNECTED is the reason
        except DriverError as exc:
            return f"The pad did not confirm its outputs are off: {exc}"
        return self._expect(
            lambda tm: not tm.output_on, "The pad reports light output although it is off."
        )

    def _check_rail(self) -> str | None:
        rail = self._interlock.rail
        try:
            rail.cut()
            problem = self._expect(
                lambda tm: not tm.rail_enabled,
                "Cutting the LED power line does not reach the pad (rail line check).",
            )
            if problem is None:
                rail.enable()
                problem = self._expect(
                    lambda tm: tm.rail_enabled,
                    "Enabling the LED power line does not reach the pad (rail line check).",
                )
        except RailError as exc:
            problem = f"The LED power line cannot be switched: {exc}"
        if problem is not None:
            self._interlock.cut_rail()
        return problem

    def _expect(self, wanted: Callable[[Telemetry], bool], problem: str) -> str | None:
        return None if self._await_frame(wanted) is not None else problem

    def _await_frame(self, wanted: Callable[[Telemetry], bool]) -> Telemetry | None:
        """A new telemetry frame satisfying ``wanted`` within the step timeout, or None."""
        deadline_s = self._clock() + SELF_TEST_STEP_TIMEOUT_S
        seen = self._frames_seen
        while True:
            self._interlock.heartbeat()  # the loop does not tick yet: keep the rail held
            self._poll_inputs()
            tm = self._last_telemetry
            if self._frames_seen > seen and tm is not None and wanted(tm):
                return tm
            remaining_s = deadline_s - self._clock()
            if remaining_s <= 0 or self._board_lost:
                return None
            self.wait_readable(min(remaining_s, _WAIT_SLICE_S))

    # ------------------------------------------------------------ start guards

    def start_refusal(self, rx: Profile) -> str | None:
        """The first reason ``start`` is not allowed now, in words; None if it is."""
        for guard in (self._state_refusal, self._prescription_refusal, self._ledger_refusal):
            reason = guard(rx)
            if reason is not None:
                return reason
        return self._patient_refusal(rx)

    def _state_refusal(self, rx: Profile) -> str | None:
        if self._fault is not None:
            return f"{self._fault.message} Acknowledge the fault first."
        if self._session is not None:
            return "A session is already running."
        if not self._self_test_passed:
            return "The pad has not passed its self-test yet."
        return None

    def _prescription_refusal(self, rx: Profile) -> str | None:
        today = self._wall_clock().date()
        if today < CLOCK_PLAUSIBLE_FROM:
            return (
                f"The pad's clock is not set (it reads {today.isoformat()}). "
                "Set the date and time, then try again."
            )
        problem = rx.validity_problem(today)
        if problem is not None:
            return problem
        violations = check_profile(rx, self._limits)
        if violations:
            return f"This prescription is outside the pad's limits: {violations[0]}."
        try:
            plan_from_profile(rx, self._interlock.calibration)
        except StartRefusedError as exc:
            return exc.reason
        return None

    def _schedule_rule(self, rx: Profile) -> tuple[float, int]:
        rule = schedule_rule(rx, self._limits)  # the same rule `nirpad course` reads
        return rule.min_interval_h, rule.max_sessions_per_week

    def _ledger_refusal(self, rx: Profile) -> str | None:
        ledger = self._reopened_ledger()
        if ledger is None:
            return self._ledger_problem
        try:
            return (
                ledger.lost_refusal()
                or ledger.clock_jump_refusal()
                or ledger.clock_refusal()
                or ledger.writable_refusal()
                or self._course_refusal(rx, ledger)
                or ledger.schedule_refusal(*self._schedule_rule(rx), now_s=self._trusted.now_s())
            )
        except LedgerError as exc:
            return str(exc)

    def _course_refusal(self, rx: Profile, ledger: Ledger) -> str | None:
        """The course runs ``course_weeks`` from the first session of this prescription
        (its id, on or after its issue date: a renewal starts a new course)."""
        first = ledger.first_session_at(rx.id, datetime.combine(rx.issued, time.min, UTC))
        today = self._wall_clock().date()
        return rx.course_problem(None if first is None else first.date(), today)

    def _patient_refusal(self, rx: Profile) -> str | None:
        tm = self._last_telemetry
        if tm is None or not tm.contact:
            return "Place the pad on the skin: there is no skin contact."
        skin_c = max(tm.skin_a_c, tm.skin_b_c)
        warn_c = self._supervisor.skin_warn_c
        if rx.skin_temp_stop_c is not None:
            warn_c = min(warn_c, rx.skin_temp_stop_c - 1.0)
        if skin_c >= warn_c:
            return (
                f"The skin is too warm to start ({skin_c:.1f} °C; it must be below {warn_c:g} °C)."
            )
        if tm.faults != BoardFault.NONE:
            return f"The pad reports a fault ({tm.faults!r}). Check the pad."
        return self.rail_refusal()

    def rail_refusal(self) -> str | None:
        """A refusal while the pad reports its LED power off though the host enables it.

        That is the hold circuit after a stall of this host longer than its hold time
        (docs/hardware.md): the rail comes back with the next heartbeat, and light
        commanded before the pad sees it would be refused by the board (a fault).
        """
        tm = self._last_telemetry
        if tm is not None and not tm.rail_enabled and self._interlock.rail.enabled:
            return "The pad's LED power is coming back after a pause of the controller; try again."
        return None

    def next_start_allowed_at(self, rx: Profile) -> datetime | None:
        """When the schedule next allows ``rx`` to start (UTC), or None if it does now."""
        if self._ledger is None:
            return None
        try:
            return self._ledger.next_start_allowed_at(
                *self._schedule_rule(rx), now_s=self._trusted.now_s()
            )
        except LedgerError as exc:
            log.error("schedule unreadable: %s", exc)
            return None
