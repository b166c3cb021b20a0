"""The status JSON: one dict that `nirpad status --json` and the control socket show.

Owns: the exact keys of the status document (docs/architecture.md) and how each is rendered
(wavelength keys as strings, ISO times to the second, messages in plain words via
``plain_text.plain``, ``null`` for "not known"). Does not own where
the figures come from: the controller passes its state and the safety core's snapshot.

Keys: ``state``, ``state_reason``, ``profile_id``, ``elapsed_s``, ``remaining_s``,
``fluence_j_cm2`` (delivered, all channels), ``planned_fluence_j_cm2``,
``irradiance_mw_cm2`` (per channel, keyed by wavelength as a string), ``skin_temp_c``,
``board_temp_c``, ``contact`` (the pad's readings: empty or null while its telemetry is
not current, the board lost or silent past the stale limit), ``fault`` (null or {code,
message, clear_refusal}: why acknowledging it would be refused now, in the words the
acknowledgement would use, or null when it would be tried), ``start_refusal`` (null or
why ``start`` would be refused now), ``next_start_allowed_at`` (ISO 8601, when the
schedule next allows a start; null when it allows one now, and null while an earlier
refusal stands that waiting would not cure: a fault, the clock, the prescription, the
record, the course, a running session; ``safety.start_guards`` decides), ``warnings`` (a
list of {code, message}), ``fault_also_seen`` ({code: count} of the other findings while
the fault is latched, each logged only once) and ``link`` (the serial link's counters
since connecting: ``frames_ok``, ``framing_errors``, ``crc_errors``, ``decode_errors``,
``version_errors``, ``sequence_gaps``, ``duplicates``, ``commands_sent``,
``lease_renewals``, ``command_retries``, ``command_timeouts``, ``naks`` ({code: count}),
and ``frames_last_min`` / ``dropped_last_min``, what the ``link_errors`` warning judges;
docs/protocol.md §2.2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from firmware_host.plain_text import plain
from safety.core_events import SafetySnapshot

__all__ = ["STATUS_KEYS", "StatusInputs", "build_status"]

STATUS_KEYS: Final = (
    "state",
    "state_reason",
    "profile_id",
    "elapsed_s",
    "remaining_s",
    "fluence_j_cm2",
    "planned_fluence_j_cm2",
    "irradiance_mw_cm2",
    "skin_temp_c",
    "board_temp_c",
    "contact",
    "fault",
    "start_refusal",
    "next_start_allowed_at",
    "warnings",
    "fault_also_seen",
    "link",
)


@dataclass(frozen=True)
class StatusInputs:
    """What the controller knows beyond the safety snapshot."""

    state: str
    state_reason: str | None
    profile_id: str | None
    planned_fluence_j_cm2: float | None  # of the prescription, when no session runs
    fault: tuple[str, str] | None  # (code, message) latched by the controller
    start_refusal: str | None
    next_start_allowed_at: datetime | None
    warnings: tuple[tuple[str, str], ...]  # (code, message) not in the snapshot
    fault_clear_refusal: str | None = None  # why an acknowledgement would be refused now


def build_status(inputs: StatusInputs, snap: SafetySnapshot) -> dict[str, Any]:
    """Render the status document; JSON-serialisable, keys exactly ``STATUS_KEYS``."""
    planned = snap.planned_total_j_cm2 if snap.session_active else inputs.planned_fluence_j_cm2
    fault = inputs.fault
    if fault is None and snap.fault is not None:
        fault = (str(snap.fault.code), snap.fault.message)
    warnings = [{"code": str(w.code), "message": plain(w.message)} for w in snap.warnings]
    warnings += [{"code": code, "message": plain(text)} for code, text in inputs.warnings]
    allowed_at = inputs.next_start_allowed_at
    return {
        "state": inputs.state,
        "state_reason": plain(inputs.state_reason),
        "profile_id": inputs.profile_id,
        "elapsed_s": round(snap.elapsed_s, 3),
        "remaining_s": round(snap.remaining_s, 3),
        "fluence_j_cm2": round(snap.delivered_total_j_cm2, 4),
        "planned_fluence_j_cm2": None if planned is None else round(planned, 4),
        "irradiance_mw_cm2": {str(wl): round(v, 3) for wl, v in snap.irradiance_mw_cm2.items()},
        "skin_temp_c": _rounded(snap.skin_temp_c),
        "board_temp_c": _rounded(snap.board_temp_c),
        "contact": snap.contact,
        "fault": None if fault is None else _fault(fault, inputs.fault_clear_refusal),
        "start_refusal": plain(inputs.start_refusal),
        "next_start_allowed_at": _iso_seconds(allowed_at),
        "warnings": warnings,
        "fault_also_seen": {str(code): n for code, n in snap.fault_also_seen.items()},
        "link": asdict(snap.link),
    }


def _fault(fault: tuple[str, str], clear_refusal: str | None) -> dict[str, Any]:
    return {"code": fault[0], "message": plain(fault[1]), "clear_refusal": plain(clear_refusal)}


def _iso_seconds(when: datetime | None) -> str | None:
    """ISO time to the second, rounded up: a start time shown is never too early."""
    if when is None:
        return None
    if when.microsecond:
        when = when.replace(microsecond=0) + timedelta(seconds=1)
    return when.isoformat(timespec="seconds")


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
