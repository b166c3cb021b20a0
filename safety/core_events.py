"""What the safety core tells the controller: events and the status snapshot.

Owns: the ``SafetyEvent`` types returned by ``SafetyCore.poll``/``tick`` and the frozen
``SafetySnapshot``. Pure data; no behaviour. Does not own the state machine that
reacts to them (``firmware_host``) or how they are produced (``safety.core``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from safety.faults import FaultCode, Outcome, WarningCode

__all__ = [
    "ButtonEdge",
    "ContactLost",
    "ContactRegained",
    "FaultLatched",
    "FaultStatus",
    "LinkHealth",
    "SafetyEvent",
    "SafetySnapshot",
    "SafetyWarning",
    "SessionFinished",
]


@dataclass(frozen=True, slots=True)
class FaultLatched:
    """A fault latched: the outputs are off (and the rail cut if it is critical)."""

    code: FaultCode
    message: str


@dataclass(frozen=True, slots=True)
class ContactLost:
    """Skin contact was lost while treating; the outputs are already off (paused)."""


@dataclass(frozen=True, slots=True)
class ContactRegained:
    """Skin contact is back; the controller may resume."""


@dataclass(frozen=True, slots=True)
class SessionFinished:
    """The session ended and its ledger row is closed with ``outcome``."""

    outcome: Outcome


@dataclass(frozen=True, slots=True)
class ButtonEdge:
    """The pad's button went down or up, at board-reported time ``t_s`` (host clock)."""

    down: bool
    t_s: float


@dataclass(frozen=True, slots=True)
class SafetyWarning:
    """A condition to show the user that does not stop the session by itself."""

    code: WarningCode
    message: str


SafetyEvent = (
    FaultLatched | ContactLost | ContactRegained | SessionFinished | ButtonEdge | SafetyWarning
)


@dataclass(frozen=True, slots=True)
class FaultStatus:
    code: FaultCode
    message: str


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """The serial link since connecting (``safety.link_health``; docs/protocol.md §2.2).

    Frames the decoder dropped, by cause (each dropped frame in exactly one counter),
    sequence gaps and duplicates among the good frames, output commands sent, lease
    renewals (SET_OUTPUT), resends and commands never answered, NAKs by code name, and
    the frames seen and dropped over the last minute (what the warning judges).
    """

    frames_ok: int = 0
    framing_errors: int = 0
    crc_errors: int = 0
    decode_errors: int = 0
    version_errors: int = 0
    sequence_gaps: int = 0
    duplicates: int = 0
    commands_sent: int = 0
    lease_renewals: int = 0
    command_retries: int = 0
    command_timeouts: int = 0
    naks: dict[str, int] = field(default_factory=dict)
    frames_last_min: int = 0
    dropped_last_min: int = 0


@dataclass(frozen=True, slots=True)
class SafetySnapshot:
    """State-independent figures for status displays and the control socket.

    Fluence and irradiance are keyed by wavelength (nm). The pad's readings (the
    irradiance, temperatures and ``contact``) are empty or None while its telemetry is
    not current (before the first frame, unplugged, silent): not known, never the last
    ones seen. ``skin_temp_c`` is the higher of the two skin sensors.
    ``fault_also_seen`` counts the other findings while the fault is latched (logged
    once each, see ``safety.supervisor``).
    """

    session_active: bool
    delivered_fluence_j_cm2: dict[int, float] = field(default_factory=dict)
    planned_fluence_j_cm2: dict[int, float] = field(default_factory=dict)
    delivered_total_j_cm2: float = 0.0
    planned_total_j_cm2: float = 0.0
    elapsed_s: float = 0.0
    remaining_s: float = 0.0
    irradiance_mw_cm2: dict[int, float] = field(default_factory=dict)
    skin_temp_c: float | None = None
    board_temp_c: float | None = None
    contact: bool | None = None
    rail_enabled: bool = False
    self_test_passed: bool = False
    fault: FaultStatus | None = None
    warnings: tuple[SafetyWarning, ...] = ()
    fault_also_seen: dict[FaultCode, int] = field(default_factory=dict)
    link: LinkHealth = field(default_factory=LinkHealth)
