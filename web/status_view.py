"""The status document in a caregiver's words: what the live part of the page shows.

Owns: turning the controller's status JSON (``firmware_host.status``; the keys are
stable) into the words and figures of the status page: the state in one or two words,
time left and the share done, delivered against planned fluence, temperatures, skin
contact (not known while the pad's readings are not current: unplugged or silent), the
fault with what to do about it, why a start would be refused and when the
next one is allowed (local time, as ``nirpad status`` shows it).
Does not own any rule: everything shown is what the controller said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

STATE_WORDS: Final = {
    "booting": "Starting up",
    "self_test": "Checking the pad",
    "idle": "No prescription",
    "ready": "Ready",
    "treating": "Treating",
    "paused": "Paused",
    "complete": "Session over",
    "fault": "Fault",
}
RUNNING: Final = frozenset({"treating", "paused"})
CHECK_AND_ACK: Final = (
    "Check the pad: it lies flat on the skin, its cable is in, nothing covers it. When "
    "the cause is gone, press “Acknowledge fault”. If the fault comes back, stop using "
    "the pad and call the clinic."
)
HAVE_IT_CHECKED: Final = (
    "Do not use the pad until it has been checked: call the clinic or the service "
    "number on the pad. “Acknowledge fault” works only once the cause has cleared."
)
FAULT_ADVICE: Final = {
    "skin_overtemp": (
        "Take the pad off and let the skin cool. Look for redness; if the skin is red or "
        "sore, do not restart tonight and tell the clinic. Then press “Acknowledge fault”."
    ),
    "temp_rise_rate": (
        "Take the pad off and let the skin cool. Check that nothing covers the pad, then "
        "press “Acknowledge fault”."
    ),
    "board_overtemp": (
        "Let the pad cool down for a few minutes, with nothing covering it, then press "
        "“Acknowledge fault”."
    ),
    "board_disconnected": "Check the pad's cable at both ends, then press “Acknowledge fault”.",
    "stuck_on": HAVE_IT_CHECKED,
    "irradiance_over_limit": HAVE_IT_CHECKED,
    "irradiance_mismatch": HAVE_IT_CHECKED,
    "rail_lost": HAVE_IT_CHECKED,
    "calibration_crc": HAVE_IT_CHECKED,
    "protocol_version": HAVE_IT_CHECKED,
    "board_mismatch": HAVE_IT_CHECKED,
}


@dataclass(frozen=True)
class StatusView:
    state_code: str
    state_word: str
    state_reason: str | None
    running: bool
    time_left: str | None
    progress_pct: int | None
    fluence: str
    planned: str
    skin_temp: str
    board_temp: str
    contact: str
    fault_code: str | None
    fault_message: str | None
    fault_action: str | None
    fault_not_yet: str | None  # why an acknowledgement would be refused now
    start_refusal: str | None
    next_start: str | None
    warnings: tuple[str, ...]
    profile_id: str | None


def status_view(data: dict[str, Any]) -> StatusView:
    state = str(data.get("state") or "unknown")
    running = state in RUNNING
    fault = data.get("fault") if isinstance(data.get("fault"), dict) else None
    code = None if fault is None else str(fault.get("code") or "")
    next_start = data.get("next_start_allowed_at")
    return StatusView(
        state_code=state,
        state_word=STATE_WORDS.get(state, state.replace("_", " ").capitalize()),
        state_reason=_text(data.get("state_reason")),
        running=running,
        time_left=_minutes(data.get("remaining_s")) if running else None,
        progress_pct=_progress(data) if running else None,
        fluence=_figure(data.get("fluence_j_cm2"), "J/cm²"),
        planned=_figure(data.get("planned_fluence_j_cm2"), "J/cm²"),
        skin_temp=_figure(data.get("skin_temp_c"), "°C"),
        board_temp=_figure(data.get("board_temp_c"), "°C"),
        contact=_contact(data.get("contact"), readings_current=_is_figure(data.get("skin_temp_c"))),
        fault_code=code,
        fault_message=None if fault is None else _fault_words(fault.get("message"), code),
        fault_action=None if code is None else FAULT_ADVICE.get(code, CHECK_AND_ACK),
        fault_not_yet=None if fault is None else _text(fault.get("clear_refusal")),
        start_refusal=_text(data.get("start_refusal")),
        next_start=local_time(next_start) if isinstance(next_start, str) else None,
        warnings=tuple(
            str(w.get("message")) for w in data.get("warnings") or () if isinstance(w, dict)
        ),
        profile_id=_text(data.get("profile_id")),
    )


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _fault_words(message: Any, code: str | None) -> str:
    """The fault's message; never none while a fault is latched (the page shows the fault
    and what to do only with words to show)."""
    named = f" ({code})" if code else ""
    return _text(message) or f"The pad reports a fault{named}."


def _minutes(value: Any) -> str | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    minutes, seconds = divmod(max(0, round(value)), 60)
    return f"{minutes}:{seconds:02d}"


def _progress(data: dict[str, Any]) -> int | None:
    elapsed, remaining = data.get("elapsed_s"), data.get("remaining_s")
    if not isinstance(elapsed, int | float) or not isinstance(remaining, int | float):
        return None
    total = elapsed + remaining
    return None if total <= 0 else max(0, min(100, round(100 * elapsed / total)))


def _is_figure(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _figure(value: Any, unit: str) -> str:
    if not _is_figure(value):
        return "not known"
    return f"{value:.1f} {unit}"


def _contact(value: Any, *, readings_current: bool) -> str:
    """The pad's contact; not known while its readings are not current (the status
    document then has no temperatures, and ``contact`` false whatever the pad lies on)."""
    if not readings_current:
        return "Not known"
    if value is True:
        return "On the skin"
    if value is False:
        return "Not on the skin"
    return "Not known"


def local_time(iso: str) -> str:
    """An ISO 8601 time in local time to the second, as ``nirpad status`` shows it
    (``2026-11-24 20:01:05 CET``; the controller already rounded it up)."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone()
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or ''}".rstrip()
