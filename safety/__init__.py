"""nirpad's safety layer: the only way from the controller to the light.

The controller holds one ``SafetyCore`` (``safety.core``) and the ``PowerRail`` it was
given; everything else here is reached through them. See docs/architecture.md.
"""

from safety.board_kind import REAL_BOARD, BoardKind, check_time_scale
from safety.core import BoardConnectError, SafetyCore
from safety.core_events import (
    ButtonEdge,
    ContactLost,
    ContactRegained,
    FaultLatched,
    FaultStatus,
    SafetyEvent,
    SafetySnapshot,
    SafetyWarning,
    SessionFinished,
)
from safety.errors import (
    InterlockRefusedError,
    LedgerError,
    LimitError,
    SafetyError,
    StartRefusedError,
)
from safety.fault_latch import is_critical
from safety.faults import FAULT_MESSAGES, FaultCode, Outcome, WarningCode
from safety.rail import PowerRail, RailError, make_rail

__all__ = [
    "FAULT_MESSAGES",
    "REAL_BOARD",
    "BoardConnectError",
    "BoardKind",
    "ButtonEdge",
    "ContactLost",
    "ContactRegained",
    "FaultCode",
    "FaultLatched",
    "FaultStatus",
    "InterlockRefusedError",
    "LedgerError",
    "LimitError",
    "Outcome",
    "PowerRail",
    "RailError",
    "SafetyCore",
    "SafetyError",
    "SafetyEvent",
    "SafetySnapshot",
    "SafetyWarning",
    "SessionFinished",
    "StartRefusedError",
    "WarningCode",
    "check_time_scale",
    "is_critical",
    "make_rail",
]
