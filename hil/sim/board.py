"""SimBoard: the simulated LED driver board, driven by explicit times.

Owns: board time (uptime from its own start, reset on reset), the schedule of
firmware work (received frames, lease and on-time deadlines, the 20 ms telemetry and
sensor sampling, button changes), the wiring of firmware, drive, physics, sensors and
the paced link, fault injection, and the record of the truth (``state()``, including
the delivered fluence) and of the JSON events (``pop_events()``), and the model of
the HAT's dead-man hold circuit in front of the board's rail input (``rail_hold_s``:
the rail is the enable line AND a heartbeat seen within the hold, on the board's own
clock; docs/hardware.md). Does not own the clock: callers pass monotonic seconds.
Protocol timing is real time; physics and the maximum on-time run ``time_scale``
times faster.
"""

from __future__ import annotations

import random
from typing import Final

from drivers.protocol import (
    SIM_TIME_SCALE_MAX,
    SIM_TIME_SCALE_MIN,
    BoardFault,
    ChannelSetpoint,
    Event,
    EventKind,
    FrameDecoder,
    Message,
    MsgType,
    ResetReason,
    TelemetryFlag,
    encode_frame,
    frame_bytes,
    telemetry_channel_records,
    telemetry_payload,
)
from hil.sim.button import Button
from hil.sim.drive import DriveState, compute_drive
from hil.sim.faults import ActiveInjections, FaultKind, parse_injection
from hil.sim.firmware import BoardStatus, Firmware, Readings, fault_causes
from hil.sim.link import LinkFaults, PacedLink
from hil.sim.physics import CALIBRATION, Optics, ThermalModel
from hil.sim.sensors import sample_readings

TELEMETRY_PERIOD_S: Final = 0.020
RAIL_HOLD_S: Final = 0.3
"""The hold time of the pad's HAT (docs/hardware.md); the rigs that build the real
stack pass it as ``rail_hold_s``. Real seconds: the circuit is on the host's side."""
_OUTPUT_ON: Final = TelemetryFlag.OUTPUT_ON.value
_CONTACT: Final = TelemetryFlag.CONTACT.value
_BUTTON: Final = TelemetryFlag.BUTTON.value
_RAIL: Final = TelemetryFlag.RAIL_ENABLED.value
_TELEMETRY: Final = MsgType.TELEMETRY.value


def flag_names(flags: BoardFault) -> list[str]:
    return [f.name.lower() for f in BoardFault if f and f in flags and f.name]


class SimBoard:
    """Firmware + physics of one board. Call ``advance_to`` (or the I/O methods) in order."""

    def __init__(
        self,
        *,
        seed: int = 0,
        ambient_c: float = 22.0,
        time_scale: float = 1.0,
        baud: int = 115200,
        start_s: float = 0.0,
        serial: str = "SIM-0000001",
        info_claim: tuple[bool, float] | None = None,
        rail_hold_s: float | None = None,
    ) -> None:
        if not SIM_TIME_SCALE_MIN <= time_scale <= SIM_TIME_SCALE_MAX:
            raise ValueError(
                f"time_scale must be between {SIM_TIME_SCALE_MIN:g} and "
                f"{SIM_TIME_SCALE_MAX:g}, not {time_scale}"
            )
        self.seed, self.time_scale, self.baud, self.serial = seed, time_scale, baud, serial
        self.info_claim = info_claim  # (simulator flag, time scale) INFO reports; None: truth
        if rail_hold_s is not None and not rail_hold_s > 0:
            raise ValueError(f"rail_hold_s must be positive (or None: no hold), not {rail_hold_s}")
        self.rail_hold_s = rail_hold_s  # None: no hold circuit, the enable line alone rules
        self.optics = Optics(random.Random(f"nirpad-sim-unit-{seed}"), CALIBRATION)
        self.thermal = ThermalModel(ambient_c)
        self.injections = ActiveInjections()
        self._button = Button()
        self.disconnected = False
        self._noise = random.Random(f"nirpad-sim-noise-{seed}")
        self._link_faults = LinkFaults()
        link_rng = random.Random(f"nirpad-sim-link-{seed}")
        self._to_host = PacedLink(baud, link_rng, self._link_faults)
        self._to_board = PacedLink(baud, link_rng, self._link_faults)
        self._now_s = start_s
        self._physics_t_s = start_s  # protocol time up to which physics is integrated
        self._physics_s = 0.0
        self._contact_set = True
        self._contact = True
        self._rail_line = True  # the host's enable line (bare use: enabled)
        self._heartbeat_s: float | None = None  # board time of the last heartbeat
        self.heartbeats = 0
        self._rail = rail_hold_s is None  # with a hold circuit: off until a heartbeat
        self._button_reading = False
        self._stuck: tuple[ChannelSetpoint, ...] | None = None
        self._events: list[dict[str, object]] = []
        self._fluence_j_cm2 = [0.0] * len(CALIBRATION)
        self._output_reported: tuple[bool, tuple[float, ...]] = (False, (0.0,) * len(CALIBRATION))
        self._drive: DriveState = compute_drive((), True, self.injections, self.optics)
        self._telemetry_records: tuple[DriveState | None, bytes] = (None, b"")  # drive's tail
        self._due_s: float | None = None  # next_event_time's answer until something changes
        self._last_status = BoardStatus(False, False, BoardFault.NONE)  # see _status
        self._boot(ResetReason.POWER_ON)

    # ------------------------------------------------------------------ time

    def _boot(self, reason: ResetReason) -> None:
        self.firmware = Firmware(
            self.optics.calibration, self.time_scale, self.serial, self.info_claim
        )
        self._decoder = FrameDecoder()
        self._tx_seq = 0
        self._boot_s = self._now_s
        self._next_telemetry_s = self._now_s + TELEMETRY_PERIOD_S
        self._to_host.flush()
        self._to_board.flush()
        self._take_sample()
        self._send(Event(0, EventKind.BOARD_RESET, int(reason)))
        self._emit("reset", reason=reason.name.lower())
        self._reconcile()  # forgets the schedule

    def next_event_time(self) -> float:
        """When the board next has work to do (not counting bytes reaching the host).

        Kept until the schedule may have changed: everything that changes it (a frame
        from the host, a handled event, a heartbeat, a press, a reset, the drive being
        reconciled) ends by forgetting it (``_schedule_changed``).
        """
        due_s = self._due_s
        if due_s is None:
            due_s = self._due_s = self._next_due_s()
        return due_s

    def _schedule_changed(self) -> None:
        self._due_s = None

    def _next_due_s(self) -> float:
        due_s = self._next_telemetry_s
        frame_s = self._to_board.next_complete_s()
        if frame_s is not None and frame_s < due_s:
            due_s = frame_s
        deadline_s = self.firmware.next_deadline_s()
        if deadline_s is not None and deadline_s < due_s:
            due_s = deadline_s
        button_s = self._button.next_change_s()
        if button_s is not None and button_s < due_s:
            due_s = button_s
        hold_s = self._rail_drops_at_s()
        if hold_s is not None and hold_s < due_s:
            due_s = hold_s
        return due_s

    def advance_to(self, now_s: float) -> None:
        """Run firmware and physics up to ``now_s``, handling every event on its time."""
        if now_s <= self._now_s:
            return
        due_s = self._due_s
        if due_s is None:  # next_event_time() without the call: several times a period
            due_s = self._due_s = self._next_due_s()
        while due_s <= now_s:
            if due_s > self._now_s:
                self._now_s = due_s
            self._handle_due(self._now_s)  # ends by forgetting the schedule
            due_s = self._due_s = self._next_due_s()
        self._now_s = now_s

    def _settle_physics(self) -> None:
        """Integrate heat and fluence up to now with the drive in force since the last call.

        Physics is lazy: it is brought up to date only before the drive changes, before
        the sensors are sampled, and when the truth is read.
        """
        dt_s = self._now_s - self._physics_t_s
        if dt_s <= 0:
            return
        self._physics_t_s = self._now_s
        physics_dt_s = dt_s * self.time_scale
        drive = self._drive
        self.thermal.step(physics_dt_s, drive.board_heat_w, drive.skin_heat_w)
        if drive.driver_enabled:
            for channel, drive_ch in enumerate(drive.channels):
                self._fluence_j_cm2[channel] += drive_ch.irradiance_mw_cm2 * physics_dt_s / 1000.0
        self._physics_s += physics_dt_s

    def _handle_due(self, t_s: float) -> None:
        hold_s = self._rail_drops_at_s()
        if hold_s is not None and hold_s <= t_s:
            self._update_rail(cause="heartbeat_lost")
        complete = self._to_board.next_complete_s()
        if complete is not None and complete <= t_s:
            self._receive(t_s)
        while self._button.run_one_due(t_s):
            self._read_button()
        deadline = self.firmware.next_deadline_s()
        if deadline is not None and deadline <= t_s:
            self._deadline(t_s)
        if self._next_telemetry_s <= t_s:
            self._next_telemetry_s += TELEMETRY_PERIOD_S
            self._take_sample()
            self._protect()
            self._send_telemetry()
        self._schedule_changed()

    # ------------------------------------------------------------------ firmware

    def _receive(self, t_s: float) -> None:
        for frame in self._decoder.feed(self._to_board.receive(t_s)):
            status = self._status()
            before = self.firmware.setpoints
            self._send(self.firmware.handle(frame.message, frame.seq, t_s, status))
            if self.firmware.setpoints != before:
                self._reconcile()

    def _status(self) -> BoardStatus:
        """The hardware as the firmware sees it now; the last one while nothing changed."""
        status = self._last_status
        if (
            status.contact is not self._contact
            or status.rail_enabled is not self._rail
            or status.causes is not self._causes
        ):
            status = self._last_status = BoardStatus(self._contact, self._rail, self._causes)
        return status

    def _deadline(self, t_s: float) -> None:
        fw = self.firmware
        if fw.lease_deadline_s is not None and fw.lease_deadline_s <= t_s:
            fw.turn_off()
            self._send(Event(self._uptime_ms(), EventKind.LEASE_EXPIRED))
            self._emit("lease_expired")
        else:
            fw.turn_off()
            fw.latched |= BoardFault.MAX_ON_TIME
            self._send(Event(self._uptime_ms(), EventKind.MAX_ON_TIME))
            self._emit("max_on_time")
        self._reconcile()

    def _protect(self) -> None:
        if not self._causes:
            return  # nothing to latch (nearly every sample)
        new = self.firmware.latch(self._causes)
        if new:
            self.firmware.turn_off()
            latched = self.firmware.latched
            self._send(Event(self._uptime_ms(), EventKind.BOARD_FAULT, int(latched)))
            self._emit("board_fault", faults=flag_names(new), latched=flag_names(latched))
            self._reconcile()

    def _take_sample(self) -> None:
        """Sample the sensors now; the fault conditions they show go with them."""
        self._settle_physics()
        readings = sample_readings(
            self.thermal.skin_c, self.thermal.board_c, self.injections, self._physics_s, self._noise
        )
        self._readings: Readings = readings
        self._causes: BoardFault = fault_causes(readings)

    def _uptime_ms(self) -> int:
        return round((self._now_s - self._boot_s) * 1000.0)

    def _send_telemetry(self) -> None:
        """TELEMETRY of the drive and readings in force, packed straight into a frame."""
        if self.disconnected:
            return
        drive, fw, now_s = self._drive, self.firmware, self._now_s
        skin_a_c, skin_b_c, board_c = self._readings
        flags = (
            (_OUTPUT_ON if drive.driver_enabled else 0)
            | (_CONTACT if self._contact else 0)
            | (_BUTTON if self._button_reading else 0)
            | (_RAIL if self._rail else 0)
        )
        records = self._telemetry_records
        if records[0] is not drive:
            records = self._telemetry_records = (drive, telemetry_channel_records(drive.telemetry))
        payload = telemetry_payload(
            round((now_s - self._boot_s) * 1000.0),
            flags,
            int(fw.latched) | int(drive.flags),
            skin_a_c,
            skin_b_c,
            board_c,
            drive.supply_mv,
            fw.lease_remaining_ms(now_s),
            records[1],
        )
        self._to_host.send(frame_bytes(_TELEMETRY, self._tx_seq, payload), now_s)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF

    def _send(self, message: Message) -> None:
        if self.disconnected:
            return
        self._to_host.send(encode_frame(message, self._tx_seq), self._now_s)
        self._tx_seq = (self._tx_seq + 1) & 0xFFFF

    # ------------------------------------------------------------------ hardware state

    def _reconcile(self) -> None:
        """Bring contact, button, drive and the output report in line with the state."""
        contact = self._contact_set and FaultKind.CONTACT_LOST not in self.injections
        if contact != self._contact:
            self._contact = contact
            self._emit("contact", contact=contact)
        if not contact or not self._rail:
            self.firmware.turn_off()  # no emission without contact; no drive without rail
        self._read_button()
        self._settle_physics()
        setpoints = self.firmware.setpoints
        if FaultKind.STUCK_ON in self.injections:
            if self._stuck is None and setpoints:
                self._stuck = setpoints
            if self._stuck is not None:
                setpoints = self._stuck
        self._drive = compute_drive(setpoints, self._rail, self.injections, self.optics)
        report = (
            self._drive.driver_enabled,
            tuple(round(x, 2) for x in self._drive.irradiance_mw_cm2),
        )
        if report != self._output_reported:
            self._output_reported = report
            self._emit("output", on=report[0], irradiance_mw_cm2=list(report[1]))
        self._schedule_changed()  # the firmware may have turned off: no lease deadline

    def _read_button(self) -> None:
        reading = self._button.reading
        if reading != self._button_reading:
            self._button_reading = reading
            kind = EventKind.BUTTON_DOWN if reading else EventKind.BUTTON_UP
            self._send(Event(self._uptime_ms(), kind))
            self._emit("button", down=reading)

    def _emit(self, event: str, **fields: object) -> None:
        self._events.append({"t": self._now_s, "event": event, **fields})

    # ------------------------------------------------------------------ wire (host side)

    def host_write(self, data: bytes, now_s: float) -> None:
        """Bytes from the host, put on the wire at ``now_s``; lost while disconnected."""
        if now_s > self._now_s:
            self.advance_to(now_s)
        if not self.disconnected:
            to_board = self._to_board
            to_board.send(data, now_s)
            # only the first frame in flight can be due first; it is this one or unchanged
            due_s, frame_s = self._due_s, to_board.next_complete_s()
            if due_s is not None and frame_s is not None and frame_s < due_s:
                self._due_s = frame_s

    def host_wait(self, now_s: float, deadline_s: float, min_bytes: int = 1) -> tuple[float, bytes]:
        """Run from ``now_s`` to the first time at which ``min_bytes`` have reached the
        host, or to ``deadline_s``; return that time and the bytes (``host_read`` at
        each time visited, joined).

        Times are visited as the host would poll: ``now_s``, then each board event and
        each frame's arrival in order, so bytes of a frame still arriving at an event are
        returned then. Stops early only once the board is disconnected.
        """
        to_host = self._to_host
        received = b""
        while True:
            if now_s > self._now_s:
                self.advance_to(now_s)
            data = to_host.receive(now_s)
            if data:
                received = received + data if received else data
                if len(received) >= min_bytes:
                    return now_s, received
            if self.disconnected or now_s >= deadline_s:
                return now_s, received
            target_s = self._due_s
            if target_s is None:  # next_event_time() without the call, as in advance_to
                target_s = self._due_s = self._next_due_s()
            frame_s = to_host.next_complete_s()
            if frame_s is not None and frame_s < target_s:
                target_s = frame_s
            if target_s > deadline_s:
                target_s = deadline_s
            if target_s > now_s:
                now_s = target_s

    def host_read(self, now_s: float) -> bytes:
        """Bytes whose last bit has reached the host by ``now_s``."""
        if now_s > self._now_s:
            self.advance_to(now_s)
        return self._to_host.receive(now_s)

    def host_read_whole(self, now_s: float) -> bytes:
        """Like ``host_read``, but only whole frames: a frame still arriving waits."""
        self.advance_to(now_s)
        return self._to_host.receive_whole(now_s)

    def next_output_time(self) -> float | None:
        """When the next byte reaches the host (None when nothing is in flight)."""
        return self._to_host.next_arrival_s()

    def next_frame_time(self) -> float | None:
        """When the last byte of the next frame in flight reaches the host."""
        return self._to_host.next_complete_s()

    # ------------------------------------------------------------------ the outside world

    def inject(self, kind: str, **params: object) -> None:
        """Inject a fault (see faults.FaultKind); raises faults.InjectionError."""
        injection = parse_injection(kind, params, self._now_s, self._physics_s)
        self._emit("injected", fault=injection.kind.value, params=injection.params)
        if injection.kind is FaultKind.BROWNOUT:
            self.reset("brownout")
            return
        self.injections.add(injection)
        self._apply_injections()

    def clear_injections(self) -> None:
        removed = self.injections.clear()
        self._stuck = None
        self._emit("cleared", faults=[inj.kind.value for inj in removed])
        self._apply_injections()

    def _apply_injections(self) -> None:
        inj = self.injections
        faults = self._link_faults
        faults.clear()
        drop = inj.get(FaultKind.LINK_DROP)
        if drop is not None:
            faults.drop_until_s = drop.t_s + drop.number("duration_ms") / 1000.0
        corrupt = inj.get(FaultKind.LINK_CORRUPT)
        faults.corrupt_rate = corrupt.number("rate") if corrupt is not None else 0.0
        delay = inj.get(FaultKind.LINK_DELAY)
        faults.delay_s = delay.number("delay_ms") / 1000.0 if delay is not None else 0.0
        faults.duplicate = FaultKind.LINK_DUPLICATE in inj
        disconnected = FaultKind.DISCONNECT in inj
        if disconnected and not self.disconnected:
            self._to_host.flush()
            self._to_board.flush()
        self.disconnected = disconnected
        self._button.stuck = FaultKind.BUTTON_STUCK in inj
        self._button.bounce = FaultKind.BUTTON_BOUNCE in inj
        self._take_sample()
        self._reconcile()
        self._protect()

    def set_ambient(self, ambient_c: float) -> None:
        self._settle_physics()
        self.thermal.ambient_c = float(ambient_c)

    def set_blanket(self, blanket: bool) -> None:
        self._settle_physics()
        self.thermal.blanket = bool(blanket)

    def set_contact(self, contact: bool) -> None:
        self._contact_set = bool(contact)
        self._reconcile()

    @property
    def rail_enabled(self) -> bool:
        """The rail at the board's input: the enable line AND (with a hold) the hold circuit."""
        return self._rail

    @property
    def rail_line(self) -> bool:
        """The host's enable line alone, as last set."""
        return self._rail_line

    def set_rail(self, enabled: bool) -> None:
        """The host's enable line; with a hold circuit the rail also needs a heartbeat."""
        self._rail_line = bool(enabled)
        if not self._update_rail():
            self._reconcile()

    def heartbeat(self, now_s: float | None = None) -> None:
        """One toggle of the host's heartbeat line (at ``now_s``, else the board's time):
        the hold circuit keeps the rail up for ``rail_hold_s`` from now."""
        if now_s is not None and now_s > self._now_s:
            self.advance_to(now_s)
        drop_before_s = self._rail_drops_at_s()
        self.heartbeats += 1
        self._heartbeat_s = self._now_s
        if self._rail_now() != self._rail:  # the rail changes (else the beat only extends the hold)
            self._update_rail()
        due_s = self._due_s  # the drop moves later; the schedule changes only through it
        if due_s is None:
            return
        if drop_before_s is None:  # the rail was down: its drop may now come first
            drop_s = self._rail_drops_at_s()
            if drop_s is not None and drop_s < due_s:
                self._due_s = drop_s
        elif drop_before_s <= due_s:
            self._schedule_changed()
        # else the drop was after the next event, and a beat only moves it later

    def _rail_now(self) -> bool:
        if not self._rail_line:
            return False
        if self.rail_hold_s is None:
            return True
        return self._heartbeat_s is not None and self._now_s < self._heartbeat_s + self.rail_hold_s

    def _rail_drops_at_s(self) -> float | None:
        """When the hold circuit drops a rail that is up, if no heartbeat comes first."""
        if not self._rail or self.rail_hold_s is None or self._heartbeat_s is None:
            return None
        return self._heartbeat_s + self.rail_hold_s

    def _update_rail(self, **why: object) -> bool:
        """Bring the rail in line with its inputs; True (and reconciled) if it changed."""
        rail = self._rail_now()
        if rail == self._rail:
            return False
        self._rail = rail
        self._emit("rail", enabled=rail, **why)
        self._reconcile()
        return True

    def press(self, kind: str) -> None:
        """A short (0.3 s) or long (2.5 s) press, starting now."""
        self._button.press(kind, self._now_s)
        self._schedule_changed()
        self._read_button()

    def button(self, down: bool) -> None:
        """Press (True) or release (False) the button and leave it there."""
        self._button.user_edge(bool(down), self._now_s)
        self._schedule_changed()
        self._read_button()

    def reset(self, reason: str | ResetReason = "brownout") -> None:
        """Reset the board: outputs off, faults and uptime cleared, bytes in flight lost."""
        if isinstance(reason, str):
            try:
                reason = ResetReason[reason.upper()]
            except KeyError as exc:
                raise ValueError(f"unknown reset reason {reason!r}") from exc
        self._boot(reason)

    # ------------------------------------------------------------------ the truth

    def pop_events(self) -> list[dict[str, object]]:
        events, self._events = self._events, []
        return events

    def state(self) -> dict[str, object]:
        self._settle_physics()
        fw, drive, readings = self.firmware, self._drive, self._readings
        return {
            "t": self._now_s,
            "uptime_ms": self._uptime_ms(),
            "outputs_on": drive.driver_enabled,
            "commanded_on": fw.output_on,
            "irradiance_mw_cm2": list(drive.irradiance_mw_cm2),
            "current_ma": [ch.current_ma for ch in drive.channels],
            "skin_c": self.thermal.skin_c,
            "board_c": self.thermal.board_c,
            "sensors_c": {
                "skin_a": readings.skin_a_c,
                "skin_b": readings.skin_b_c,
                "board": readings.board_c,
            },
            "ambient_c": self.thermal.ambient_c,
            "blanket": self.thermal.blanket,
            "contact": self._contact,
            "rail_enabled": self._rail,
            "rail_line": self._rail_line,
            "rail_hold_s": self.rail_hold_s,
            "heartbeats": self.heartbeats,
            "button_down": self._button_reading,
            "lease_remaining_ms": fw.lease_remaining_ms(self._now_s),
            "faults": flag_names(fw.latched | drive.flags),
            "injections": self.injections.describe(),
            "disconnected": self.disconnected,
            "delivered_fluence_j_cm2": list(self._fluence_j_cm2),
            "time_scale": self.time_scale,
            "seed": self.seed,
            "serial": self.serial,
        }
