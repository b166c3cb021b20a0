"""One active treatment session as the safety core runs it.

Owns: opening a session (its plan and ledger row), the session's treating clock, the
setpoint of each tick (ramp, then capped so the next telemetry period stays inside the
plan), what each telemetry frame and each gap in the telemetry count (the gap rule, below), and the
checkpoint deadline. Does not own sending anything (``interlock``), integrating fluence
(``dose``) or writing the record (``ledger``); ``core`` wires them together.

The gap rule (the ledger may over-count, never under-count). A frame counts its own
period (at most ``TELEMETRY_PERIOD_S`` of its board-uptime interval) at its own
reading. Anything longer is a gap: the light may have been on for all of it, at the
highest of the frame before, the frame after and (unless paused) the setpoints
commanded since the frame before (the one in force then included), for at most
``max_dark_s``: once telemetry is stale the host stops renewing, and the board's lease
ends the light. When the session is cut short (a fault, a stop), the time since the
last frame is such a gap too (the light goes on until the OFF or the rail cut lands;
at the dose/time end the last period was already capped to what the plan had left,
so nothing is added there): counted until the close
or the end of the lease of the last SET_OUTPUT *sent* (its ACK proves nothing: a
renewal whose ACK was lost may still have reached the board), whichever is first,
plus ``LINK_ALLOWANCE_S`` for the last frame's trip to the host and the OFF's to the
board. After a link drop (stale telemetry) that is everything since the last frame;
after a hang, at most the last lease.

The board's uptime is only its word. In the open session (``host_clock``) the time
counted since the session's first frame is the board's, but never less than the host's
own clock has run since then (a board clock that runs slow, stands still or stamps its
frames wrongly would under-count), nor more than that plus ``max_dark_s`` (one that
runs fast would end the session early on light never given; the first frame may have
reached the host that late at most). Frames that arrive in a burst after a stall of the
host add nothing the host's clock has already counted.

After the close, frames that still show light are counted by ``safety.after_close``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from drivers.protocol import Telemetry
from profiles.schema import Profile
from safety.calibration import Calibration
from safety.dose import DoseIntegrator, ramp_setpoint
from safety.ledger import Ledger
from safety.ledger_schema import SessionRecord
from safety.limits import CALIBRATION_UNCERTAINTY_FRACTION, HARD, Limits
from safety.plan import PlannedChannel, SessionPlan, plan_from_profile

__all__ = [
    "CHECKPOINT_INTERVAL_S",
    "LINK_ALLOWANCE_S",
    "TELEMETRY_PERIOD_S",
    "ActiveSession",
    "longest_dark_s",
    "open_session",
]

TELEMETRY_PERIOD_S: Final = 0.02
"""The board's 50 Hz telemetry period."""
LINK_ALLOWANCE_S: Final = TELEMETRY_PERIOD_S
"""A frame's trip to the host plus a command's trip to the board (a few ms at 115200 Bd)."""
CHECKPOINT_INTERVAL_S: Final = 5.0
"""Dose checkpoints into the ledger at least this often while a session is open."""


def longest_dark_s(limits: Limits) -> float:
    """The longest the board can emit unseen: telemetry goes stale (checked every tick),
    the host stops renewing, and the longest lease runs out."""
    lease_s = limits.lease_max_ms / 1000.0
    return limits.telemetry_stale_s + TELEMETRY_PERIOD_S + lease_s + LINK_ALLOWANCE_S


@dataclass(slots=True)
class ActiveSession:
    """The open session: its ledger id, plan, dose and clocks (host monotonic seconds)."""

    session_id: int
    plan: SessionPlan
    dose: DoseIntegrator
    time_scale: float
    started_s: float
    last_checkpoint_s: float
    treating_s: float = 0.0
    last_tick_s: float | None = None
    last_frame: Telemetry | None = None
    last_frame_s: float = 0.0
    """Host time the last frame was handled."""
    commanded_mw_cm2: dict[int, float] = field(default_factory=dict)
    """Highest average irradiance per channel commanded since the last frame (and the
    setpoint in force at it, which that frame may not show yet)."""
    in_force_mw_cm2: dict[int, float] = field(default_factory=dict)
    """The last setpoint commanded, as average irradiance per channel."""
    wavelength_by_channel: dict[int, int] = field(default_factory=dict)
    max_dark_s: float = longest_dark_s(HARD)
    host_origin_s: float | None = None
    """Host time from which ``host_clock`` bounds the count (the first frame so counted)."""
    board_span_s: float = 0.0
    """Time since ``host_origin_s`` by the board's uptime, each interval capped."""
    counted_span_s: float = 0.0
    """Time since ``host_origin_s`` counted: the board's, within the host's bounds."""

    def count_frame(
        self,
        telemetry: Telemetry,
        now_s: float,
        *,
        paused: bool = False,
        at_least_s: float = 0.0,
        host_clock: bool = False,
    ) -> None:
        """Count a frame: its own period at the higher of its reading and the one before
        (the light may have gone off just before this frame), a gap before it
        conservatively. ``paused``: the interlock holds the session paused.
        ``at_least_s``: the time since the frame before is at least this (host time).
        ``host_clock``: the time counted stays within the host's clock (module notes)."""
        previous, previous_s = self.last_frame, self.last_frame_s
        self.last_frame, self.last_frame_s = telemetry, now_s
        if host_clock and self.host_origin_s is None:
            self.host_origin_s = now_s if previous is None else previous_s
        delta_s = TELEMETRY_PERIOD_S
        if previous is not None:
            delta_s = ((telemetry.uptime_ms - previous.uptime_ms) & 0xFFFFFFFF) / 1000.0
            delta_s = max(delta_s, at_least_s)
            if host_clock:
                delta_s = self._bounded_by_host(delta_s, now_s)
            gap_s = min(delta_s - TELEMETRY_PERIOD_S, self.max_dark_s)
            self._count_dark(gap_s, paused, previous, telemetry)
        period_s = min(delta_s, TELEMETRY_PERIOD_S)
        self.dose.add_frame(telemetry, period_s, self.time_scale, paused=paused, held_from=previous)
        if not paused and max(self.commanded_mw_cm2, default=-1) >= len(telemetry.channels):
            self._count_unreported(telemetry, previous, period_s)
        self.commanded_mw_cm2 = dict(self.in_force_mw_cm2)

    def _count_unreported(
        self, telemetry: Telemetry, previous: Telemetry | None, period_s: float
    ) -> None:
        """A frame that leaves out a channel the host commands (fewer channels than INFO
        declared) does not show it dark: its period counts at the setpoint, above what
        the frame before already counted for it."""
        held = {} if previous is None else self.dose.frame_levels(previous)
        reported = len(telemetry.channels)
        unreported = {
            channel: level - held.get(channel, 0.0)
            for channel, level in self.commanded_mw_cm2.items()
            if channel >= reported and level > held.get(channel, 0.0)
        }
        # light only: the frame's period is already in the treating time, or not
        self.dose.add_dark(unreported, period_s, self.time_scale, paused=True)

    def _bounded_by_host(self, board_s: float, now_s: float) -> float:
        """The interval to count for a frame the board says is ``board_s`` after the one
        before: what the board's time since ``host_origin_s``, held within the host's
        (at least it, at most ``max_dark_s`` more), has grown by. A frame late behind a
        stall of the host is counted once, by whichever clock saw it first."""
        assert self.host_origin_s is not None
        self.board_span_s += min(board_s, TELEMETRY_PERIOD_S + self.max_dark_s)
        host_span_s = now_s - self.host_origin_s
        covered_s = max(min(self.board_span_s, host_span_s + self.max_dark_s), host_span_s)
        step_s, self.counted_span_s = covered_s - self.counted_span_s, covered_s
        return step_s

    def keep_dark(self, telemetry: Telemetry, now_s: float) -> None:
        """After the close, a dark frame: later light is counted from it, not from the
        last lit one (``safety.after_close``)."""
        self.last_frame, self.last_frame_s = telemetry, now_s

    def count_open_gap(self, now_s: float, lease_until_s: float, *, paused: bool = False) -> None:
        """At the close (the OFF just sent): the time since the last frame is a gap."""
        last = self.last_frame
        if last is not None:
            lit_until_s = min(now_s, lease_until_s)
            dark_s = max(0.0, lit_until_s - self.last_frame_s) + LINK_ALLOWANCE_S
            self._count_dark(dark_s, paused, last)

    def count_unseen(self, dark_s: float) -> None:
        """After the close: ``dark_s`` more of the last frame's light (at most ``max_dark_s``)."""
        if self.last_frame is not None:
            self._count_dark(min(dark_s, self.max_dark_s), False, self.last_frame)

    def count_unseen_at(
        self, levels_mw_cm2: Mapping[int, float], dark_s: float, *, capped: bool = True
    ) -> None:
        """After the close: ``dark_s`` (``capped``: at most ``max_dark_s``) at ``levels_mw_cm2``."""
        unseen_s = min(dark_s, self.max_dark_s) if capped else dark_s
        self.dose.add_dark(levels_mw_cm2, unseen_s, self.time_scale)

    def forget_commanded(self) -> None:
        """At the close, once its gap is counted: the OFF went out, nothing is commanded."""
        self.commanded_mw_cm2 = {}
        self.in_force_mw_cm2 = {}

    def _count_dark(self, dark_s: float, paused: bool, *frames: Telemetry) -> None:
        if dark_s <= 0:
            return
        levels = {} if paused else dict(self.commanded_mw_cm2)
        for frame in frames:
            for channel, level in self.dose.frame_levels(frame).items():
                levels[channel] = max(level, levels.get(channel, 0.0))
        self.dose.add_dark(levels, dark_s, self.time_scale, paused=paused)

    def advance(self, now_s: float, *, paused: bool = False) -> None:
        """Count host time since the last tick as treating time, unless paused."""
        if self.last_tick_s is not None and not paused:
            self.treating_s += (now_s - self.last_tick_s) * self.time_scale
        self.last_tick_s = now_s

    def time_is_up(self) -> bool:
        """Planned duration of treating reached: the auto-off, independent of readings."""
        return self.treating_s >= self.plan.duration_s

    def setpoint_mw_cm2(self) -> dict[int, float]:
        """Peak irradiance per channel for this tick: the ramp, capped by the dose left.

        Remembered (as averages) for the gap rule."""
        caps = self.dose.clamp_next(TELEMETRY_PERIOD_S, self.time_scale)
        duty = self.plan.duty_pct / 100.0
        wanted: dict[int, float] = {}
        for planned in self.plan.channels:
            ramped = ramp_setpoint(planned.irradiance_mw_cm2, self.treating_s, self.plan.ramp_s)
            wanted[planned.channel] = min(ramped, caps.get(planned.channel, 0.0) / duty)
        self._note_commanded(wanted, duty)
        return wanted

    def _note_commanded(self, peak_mw_cm2: Mapping[int, float], duty: float) -> None:
        self.in_force_mw_cm2 = {channel: peak * duty for channel, peak in peak_mw_cm2.items()}
        for channel, average in self.in_force_mw_cm2.items():
            self.commanded_mw_cm2[channel] = max(average, self.commanded_mw_cm2.get(channel, 0.0))

    def by_wavelength(self, values: dict[int, float]) -> dict[int, float]:
        return {self.wavelength_by_channel.get(ch, ch): v for ch, v in values.items()}

    def checkpoint_due(self, now_s: float) -> bool:
        return now_s - self.last_checkpoint_s >= CHECKPOINT_INTERVAL_S


def open_session(
    rx: Profile,
    sha256: str,
    time_scale: float,
    *,
    calibration: Calibration,
    limits: Limits,
    ledger: Ledger,
    now_s: float,
) -> ActiveSession:
    """Plan ``rx`` for this board, open its ledger row and return the session.

    The ledger's planned duration is in host seconds: crash recovery estimates dose per
    host second, and a time-scaled simulator delivers ``time_scale`` board seconds in
    each. ``LedgerError`` when the row cannot be written; ``StartRefusedError`` when the
    prescription cannot be planned on this board.
    """
    plan = plan_from_profile(rx, calibration)
    by_wavelength = rx.planned_fluence_j_cm2
    planned = {c.channel: by_wavelength[c.wavelength_nm] for c in plan.channels}
    session_id = ledger.begin_session(
        rx.id, sha256, by_wavelength, planned_duration_s=rx.duration_s / time_scale
    )
    return ActiveSession(
        session_id,
        plan,
        DoseIntegrator(
            calibration,
            planned,
            rx.duration_s,
            uncertainty_fraction=CALIBRATION_UNCERTAINTY_FRACTION,
        ),
        time_scale,
        started_s=now_s,
        last_checkpoint_s=now_s,
        # every channel of the board: light on one the plan leaves dark is still recorded
        wavelength_by_channel={i: c.wavelength_nm for i, c in enumerate(calibration.channels)},
        max_dark_s=longest_dark_s(limits),
    )


def reopen_closed_session(
    record: SessionRecord,
    time_scale: float,
    *,
    calibration: Calibration,
    limits: Limits,
    now_s: float,
) -> ActiveSession | None:
    """A closed row, as a session that counts the light its board reports after the
    close, for a host started since (``safety.after_close``): its dose starts at the
    row's figures, on every channel of this board. None when the row holds a wavelength
    this board lacks (a raise would drop that figure from the row)."""
    channels = tuple(
        PlannedChannel(index, cal.wavelength_nm, 0.0)
        for index, cal in enumerate(calibration.channels)
    )
    wavelengths = {c.channel: c.wavelength_nm for c in channels}
    if not set(record.delivered_fluence_j_cm2) <= set(wavelengths.values()):
        return None
    duration_s = record.planned_duration_s or TELEMETRY_PERIOD_S
    plan = SessionPlan(channels, pulse_hz=0, duty_pct=100, ramp_s=0.0, duration_s=duration_s)
    planned = {ch: record.planned_fluence_j_cm2.get(nm, 0.0) for ch, nm in wavelengths.items()}
    dose = DoseIntegrator(
        calibration, planned, duration_s, uncertainty_fraction=CALIBRATION_UNCERTAINTY_FRACTION
    )
    for channel, nm in wavelengths.items():
        dose.delivered_j_cm2[channel] = record.delivered_fluence_j_cm2.get(nm, 0.0)
    return ActiveSession(
        record.id,
        plan,
        dose,
        time_scale,
        started_s=now_s,
        last_checkpoint_s=now_s,
        wavelength_by_channel=wavelengths,
        max_dark_s=longest_dark_s(limits),
    )
