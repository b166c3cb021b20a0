"""The interlock: the only object that may command light from the driver board.

Owns: the board client (nothing else in nirpad holds it once a session core is
connected), the armed session's plan and whether it is paused, the current absolute
setpoint and its lease, the serial OFF command, and stuck-on output (rail cut) and a
board that stops answering. Every output command is checked here against the hard
limits, the plan, contact and the mode; a refusal turns the outputs off, latches
``INTERLOCK_REFUSED`` in the fault latch and raises ``InterlockRefusedError``.

The mode (idle, treating, paused, fault) is derived: fault while the latch holds a
fault, else from the plan and the pause. Nobody keeps it in step by hand.

Does not own: the latch (``fault_latch``, which it reads), what a telemetry frame means
for the patient (``supervisor``), the dose (``dose``), the record (``ledger``), or when
a session starts or ends (``core``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Final, NoReturn

from drivers.client import BoardClient, BoardInput, CommandAcked, CommandRejected
from drivers.errors import DriverError
from drivers.protocol import ChannelSetpoint, OutputOff, SetOutput, Telemetry
from safety.calibration import Calibration, CalibrationError
from safety.errors import InterlockRefusedError
from safety.fault_latch import FaultLatch, is_critical
from safety.faults import FaultCode
from safety.limits import Limits, check_setpoint
from safety.plan import PlannedChannel, SessionPlan
from safety.rail import PowerRail, RailError
from safety.supervisor import OFF, CommandedOutput

__all__ = [
    "DEFAULT_LEASE_MS",
    "NOT_ANSWERING_S",
    "STUCK_ON_GRACE_S",
    "Interlock",
    "InterlockMode",
    "is_critical",
]

log = logging.getLogger(__name__)

DEFAULT_LEASE_MS: Final = 200
"""Lease on every SET_OUTPUT; renewed each 20 ms tick, so ten ticks may be lost."""
NOT_ANSWERING_S: Final = 0.25
"""Output commands with no ACK/NAK for this long mean the board stopped answering: the
client's 4 × 60 ms of tries, and less than a lease plus the 100 ms mismatch trip."""
STUCK_ON_GRACE_S: Final = 0.1
"""After OFF, frames already on the wire may still show output for this long."""
_IRRADIANCE_EPS_MW_CM2: Final = 1e-6


class InterlockMode(StrEnum):
    """What the interlock allows now; derived, see ``Interlock.mode``."""

    IDLE = "idle"
    TREATING = "treating"
    PAUSED = "paused"
    FAULT = "fault"


class Interlock:
    """Holds the board client; checks, sends and renews every output command."""

    def __init__(
        self,
        client: BoardClient,
        limits: Limits,
        calibration: Calibration,
        rail: PowerRail,
        clock: Callable[[], float],
        faults: FaultLatch,
        *,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> None:
        if not 0 < lease_ms <= limits.lease_max_ms:
            raise ValueError(f"lease {lease_ms} ms is outside 1–{limits.lease_max_ms} ms")
        self.client = client
        self.limits = limits
        self.calibration = calibration
        self.rail = rail
        self._clock = clock
        self.lease_ms = lease_ms
        self._faults = faults
        self.plan: SessionPlan | None = None
        self.paused = False
        self.held_dark = False
        """Contact was lost while treating: no light until a resume or a new arm."""
        self.contact = False
        self.setpoint_mw_cm2: dict[int, float] = {}
        self._setpoints: tuple[ChannelSetpoint, ...] = ()
        self.output_commanded = False
        # when the lease of the last SET_OUTPUT *sent* runs out (host clock, if it landed
        # at once): a renewal whose ACK never came may still have reached the board
        self.lease_until_s = -math.inf
        self._commanded = OFF
        self._unanswered_since_s: float | None = None
        self._unmatched_seen = 0
        self.heartbeat_failures = 0  # consecutive failed heartbeats (logged once)

    @property
    def mode(self) -> InterlockMode:
        """Fault while the latch holds one; else idle, treating or paused by the plan."""
        if self._faults.status is not None:
            return InterlockMode.FAULT
        if self.plan is None:
            return InterlockMode.IDLE
        return InterlockMode.PAUSED if self.paused else InterlockMode.TREATING

    def arm(self, plan: SessionPlan) -> None:
        """Idle → treating with ``plan``; the setpoint starts at zero (the ramp's start)."""
        if self.mode is not InterlockMode.IDLE:
            self._refuse(f"cannot arm in mode {self.mode}")
        if not 0 < plan.duration_s <= self.limits.session_max_s:
            self._refuse(f"a {plan.duration_s:g} s session is outside the session limit")
        self._check_limits(plan.target_mw_cm2, plan)
        for planned in plan.channels:
            self._to_current(planned, planned.irradiance_mw_cm2)
        self.plan = plan
        self.paused = self.held_dark = False
        self._clear_setpoint()
        log.info("interlock armed: %s", plan)

    def pause(self) -> None:
        if self.plan is not None:
            self.paused = True
        self.off()

    def resume(self) -> None:
        if self.mode is not InterlockMode.PAUSED:
            self._refuse(f"cannot resume in mode {self.mode}")
        if not self.contact:
            self._refuse("cannot resume without skin contact")
        self.paused = self.held_dark = False
        self._clear_setpoint()

    @property
    def light_held(self) -> bool:
        """Paused, or held dark since contact was lost: the session's clock stands still."""
        return self.paused or self.held_dark

    def hold_dark(self) -> None:
        """Outputs off, and no light until a resume or a new arm (the session's mode is
        the state machine's to change: it pauses on the ``ContactLost`` this follows)."""
        self.held_dark = True
        self.off()

    def disarm(self) -> None:
        """End of session: outputs off, plan dropped. A latched fault stays latched."""
        self.plan = None
        self.paused = False
        self.off()

    # ------------------------------------------------------------ commands

    def command(self, irradiance_by_channel_mw_cm2: Mapping[int, float]) -> None:
        """Check and store an absolute setpoint (peak mW/cm² per channel); ``renew`` sends it."""
        if self.mode is not InterlockMode.TREATING or self.plan is None:
            self._refuse(f"output commanded in mode {self.mode}")
        plan = self.plan
        if not self.contact:
            self._refuse("output commanded without skin contact")
        wanted = {ch: v for ch, v in irradiance_by_channel_mw_cm2.items() if v != 0.0}
        if self._setpoints and wanted == self.setpoint_mw_cm2:
            return  # the same setpoint on the same plan: checked when it was stored
        setpoints = tuple(self._checked(plan, ch, v) for ch, v in sorted(wanted.items()))
        self._check_limits(wanted, plan)
        self.setpoint_mw_cm2 = wanted
        self._setpoints = setpoints

    def _checked(self, plan: SessionPlan, channel: int, value: float) -> ChannelSetpoint:
        planned = plan.channel(channel)
        if planned is None:
            self._refuse(f"channel {channel} is not in the session's plan")
        if not math.isfinite(value) or value < 0:
            self._refuse(f"channel {channel}: {value} mW/cm² is not a valid irradiance")
        if value > planned.irradiance_mw_cm2 + _IRRADIANCE_EPS_MW_CM2:
            self._refuse(
                f"channel {channel}: {value:.3f} mW/cm² is above the plan's "
                f"{planned.irradiance_mw_cm2:.3f} mW/cm²"
            )
        current_ma = self._to_current(planned, value)
        return ChannelSetpoint(channel, current_ma, plan.pulse_hz, plan.duty_pct)

    def _to_current(self, planned: PlannedChannel, value: float) -> float:
        try:
            current_ma = self.calibration.current_ma(planned.channel, value)
        except CalibrationError as exc:
            self._refuse(str(exc))
        max_ma = self.calibration.channels[planned.channel].max_current_ma
        if current_ma > max_ma:
            self._refuse(
                f"channel {planned.channel}: {current_ma:.1f} mA is above the board's {max_ma} mA"
            )
        # the wire carries 0.1 mA: round down, so the light never exceeds what was checked
        return math.floor(current_ma * 10.0 + 1e-9) / 10.0

    def _check_limits(self, wanted: Mapping[int, float], plan: SessionPlan) -> None:
        problem = check_setpoint(wanted, plan.pulse_hz, plan.duty_pct, self.limits)
        if problem is not None:
            self._refuse(problem)

    def renew(self, verdict_ok: bool) -> None:
        """Each tick: resend the setpoint with a fresh lease, or OFF if not allowed now."""
        if (
            self.mode is InterlockMode.TREATING
            and verdict_ok
            and self._setpoints
            and not self.held_dark
        ):
            self._send(lambda: self.client.set_output(self._setpoints, self.lease_ms))
            self.output_commanded = True
            self.lease_until_s = self._clock() + self.lease_ms / 1000.0
            if not self._commanded.on or self._commanded.irradiance_mw_cm2 != self.setpoint_mw_cm2:
                duty_pct = self._setpoints[0].duty_pct  # one duty for every channel (plan)
                self._commanded = CommandedOutput(
                    True, dict(self.setpoint_mw_cm2), self._clock(), duty_pct
                )
        elif self.output_commanded:
            self.off()

    def off(self) -> None:
        """Send OUTPUT_OFF (best effort: a dead link is reported by ``poll``, not here)."""
        self.output_commanded = False
        self._clear_setpoint()
        if self._commanded.on:
            self._commanded = CommandedOutput(on=False, since_s=self._clock())
        self._send(self.client.output_off)

    def cut_rail(self) -> None:
        """Cut the LED power rail. The GPIO line is low even if a mirror listener failed."""
        self._faults.cut_rail()

    def heartbeat(self) -> None:
        """Every tick: one toggle of the rail's heartbeat line (nothing while it is cut).

        A failure is logged once per run of failures, not once a tick: the hold circuit
        then drops the rail by itself, which the board reports.
        """
        try:
            self.rail.heartbeat()
        except RailError as exc:
            self.heartbeat_failures += 1
            if self.heartbeat_failures == 1:
                log.error("rail heartbeat failing (the rail will drop by itself): %s", exc)
            return
        if self.heartbeat_failures:
            log.warning("rail heartbeat works again after %d failures", self.heartbeat_failures)
            self.heartbeat_failures = 0

    def _send(self, send: Callable[[], int]) -> None:
        if self._unanswered_since_s is None:
            self._unanswered_since_s = self._clock()
        try:
            send()
        except DriverError as exc:  # expected when the board is gone: no traceback
            log.error("sending to the board failed: %s", exc)

    def _clear_setpoint(self) -> None:
        self.setpoint_mw_cm2 = {}
        self._setpoints = ()

    def _refuse(self, reason: str) -> NoReturn:
        self.off()
        self._faults.latch(FaultCode.INTERLOCK_REFUSED, f"interlock refused: {reason}")
        raise InterlockRefusedError(
            f"interlock refused: {reason}", code=FaultCode.INTERLOCK_REFUSED
        )

    # ------------------------------------------------------------ observing the board

    def observe(self, telemetry: Telemetry) -> bool:
        """Every frame: keep contact; True (rail cut) on output ``STUCK_ON_GRACE_S`` after OFF.

        Independent of the supervisor's latch: emission after a lesser fault still cuts.
        """
        self.contact = telemetry.contact
        commanded = self._commanded
        if commanded.on or not telemetry.output_on:
            return False
        if self._clock() - commanded.since_s <= STUCK_ON_GRACE_S:
            return False
        if self.rail.enabled:
            log.error("board reports output while output is commanded off: cutting the rail")
            self.cut_rail()
        return True

    def commanded_output(self) -> CommandedOutput:
        """What the board has been told, for the supervisor (stuck-on, mismatch)."""
        return self._commanded

    def note_inputs(self, inputs: list[BoardInput]) -> None:
        """Any ACK/NAK for an output command (even a superseded one) shows the board answers."""
        unmatched = self.client.counters.unmatched_replies
        answered = unmatched != self._unmatched_seen or _answers_output(inputs)
        self._unmatched_seen = unmatched
        if answered:
            self._unanswered_since_s = None

    def unanswered_s(self) -> float:
        """How long output commands have gone without any ACK/NAK; 0 when answered."""
        since_s = self._unanswered_since_s
        return 0.0 if since_s is None else self._clock() - since_s

    def not_answering(self) -> bool:
        """True when output commands have gone unanswered for ``NOT_ANSWERING_S``."""
        return self.unanswered_s() >= NOT_ANSWERING_S


def _answers_output(inputs: list[BoardInput]) -> bool:
    """An ACK or NAK of an output command is among ``inputs`` (a loop: no generator a frame)."""
    for item in inputs:
        if isinstance(item, CommandAcked | CommandRejected) and isinstance(
            item.message, SetOutput | OutputOff
        ):
            return True
    return False
