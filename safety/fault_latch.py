"""The fault latch: the one place a fault is held until a caregiver clears it.

Owns: the latched fault (the first one wins; later findings are counted as "also seen"
and logged once per shape; a later hazard to the patient, ``RECORDED_WHEN_SECOND``,
is also recorded once), the rule that a critical fault cuts the LED power rail
(``is_critical``; a later, worse finding still cuts it), the fault not yet announced
(taken once by the core, which records it and closes the session), the records the
ledger could not take yet (kept in order and written again, each at the wall-clock time
it happened, never at the time the write finally succeeds), and clearing the latch.

Does not own what makes a fault (``supervisor``, ``interlock``, ``core``), the serial
OFF (``interlock``), or when a clearing is allowed (``core``: the cause must be gone and
every record written). The interlock and the controller read the latch; nobody keeps a
copy. docs/architecture.md shows where it sits.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Final

from safety.core_events import FaultStatus
from safety.errors import LedgerError
from safety.faults import FAULT_MESSAGES, FaultCode
from safety.ledger import Ledger
from safety.rail import PowerRail, RailError

__all__ = [
    "LEDGER_RETRY_S",
    "RECORDED_WHEN_SECOND",
    "SECONDARY_LOG_MAX",
    "FaultLatch",
    "LedgerWrite",
    "fault_message",
    "is_critical",
]

log = logging.getLogger(__name__)

LEDGER_RETRY_S: Final = 1.0
"""Unwritten records are tried again on a tick at most this often (each try logs)."""
SECONDARY_LOG_MAX: Final = 16
"""Secondary findings logged per latch at most (each distinct one once); the rest counted."""
_FIGURES: Final = re.compile(r"\d+(?:\.\d+)?")

_CRITICAL: Final = frozenset(
    {
        FaultCode.STUCK_ON,
        FaultCode.TELEMETRY_STALE,
        FaultCode.BOARD_NOT_ANSWERING,
        FaultCode.BOARD_DISCONNECTED,
        FaultCode.BOARD_RESET,
        FaultCode.BOARD_FAULT,
        FaultCode.LEASE_EXPIRED,
        FaultCode.SKIN_OVERTEMP,
        FaultCode.BOARD_OVERTEMP,
        FaultCode.TEMP_RISE_RATE,
        FaultCode.IRRADIANCE_MISMATCH,
        FaultCode.IRRADIANCE_OVER_LIMIT,
        FaultCode.PROTOCOL_VERSION,
        FaultCode.CALIBRATION_CRC,
        FaultCode.BOARD_MISMATCH,
        FaultCode.RAIL_LOST,
        FaultCode.CONTROLLER_ERROR,
    }
)

RECORDED_WHEN_SECOND: Final = frozenset(
    {FaultCode.STUCK_ON, FaultCode.SKIN_OVERTEMP, FaultCode.BOARD_OVERTEMP}
)
"""Findings that are a hazard to the patient in their own right (light nobody commanded,
heat): found while another fault is latched, they get a fault row of their own (once per
latch), so the record shows them and not only the log. Consequences of the first fault
(stale telemetry after a lost link, unanswered commands) are counted, not recorded."""

LedgerWrite = Callable[[Ledger], None]
"""One record for the ledger, written when the ledger takes it."""


def is_critical(code: FaultCode) -> bool:
    """True when the serial OFF alone cannot be trusted, so the power rail is cut too.

    Critical: the board emits or heats beyond what was commanded, stopped answering or
    reporting, restarted, or cannot be understood; or the host itself stopped renewing
    the lease while treating (``LEASE_EXPIRED``). Not critical (OFF suffices): a refused
    command that was never sent, sensor faults, a ledger or self-test failure.
    """
    return code in _CRITICAL


def fault_message(code: FaultCode, detail: str) -> str:
    """The sentence for a person: the code's message, and the detail in brackets."""
    return f"{FAULT_MESSAGES[code]} ({detail})" if detail else FAULT_MESSAGES[code]


def cut_rail(rail: PowerRail) -> None:
    """Cut the LED power rail. The GPIO line is low even if a mirror listener failed."""
    try:
        rail.cut()
    except RailError:
        log.exception("rail cut: the GPIO line is low, but its mirror failed")


class FaultLatch:
    """Holds the first fault until ``clear``; cuts the rail for critical ones."""

    def __init__(
        self,
        rail: PowerRail,
        ledger: Callable[[], Ledger],
        wall_clock: Callable[[], datetime],
        *,
        outputs_off: Callable[[], None],
    ) -> None:
        """``ledger`` returns the ledger to write to, or raises ``LedgerError``;
        ``outputs_off`` sends the serial OFF (the interlock's) when a fault latches."""
        self._rail = rail
        self._outputs_off = outputs_off
        self._ledger = ledger
        self._wall_clock = wall_clock
        self.status: FaultStatus | None = None
        self._unannounced: tuple[FaultCode, str] | None = None
        self._also_seen: dict[FaultCode, int] = {}
        self._also_last: dict[FaultCode, str] = {}  # the detail last seen, per code
        self._also_logged: set[tuple[FaultCode, str]] = set()  # (code, detail's shape)
        self._also_recorded: set[FaultCode] = set()  # hazards given a ledger row
        self._unwritten: list[LedgerWrite] = []
        self._next_retry_s = -math.inf

    # ------------------------------------------------------------ the latch

    @property
    def code(self) -> FaultCode | None:
        """The latched fault's code, or None."""
        return None if self.status is None else self.status.code

    @property
    def also_seen(self) -> dict[FaultCode, int]:
        """How often each other finding was found while the current fault is latched."""
        return self._also_seen

    def latch(self, code: FaultCode, detail: str) -> None:
        """Latch ``code`` if nothing is latched: outputs off, and the rail cut if it is
        critical. A later finding is counted, and still cuts the rail if critical."""
        status = self.status
        if status is None:
            log.error("fault latched: %s: %s", code, detail)
            self.status = FaultStatus(code, fault_message(code, detail))
            self._unannounced = (code, detail)
            try:
                self._outputs_off()
            finally:  # the rail is cut even if the serial OFF could not be sent
                if is_critical(code):
                    cut_rail(self._rail)
            return
        if is_critical(code) and self._rail.enabled:
            cut_rail(self._rail)
        if status.code is not code:
            self._also(status.code, code, detail)
            if code in RECORDED_WHEN_SECOND and code not in self._also_recorded:
                self._also_recorded.add(code)
                self.record_fault(code, f"found while {status.code} was latched: {detail}", None)

    def take_unannounced(self) -> tuple[FaultCode, str] | None:
        """The fault latched since the last call (code, detail), once; else None."""
        news, self._unannounced = self._unannounced, None
        return news

    def cut_rail(self) -> None:
        cut_rail(self._rail)

    def clear(self) -> None:
        """Clear the latch (the core has checked the cause is gone and the board reset)."""
        if self.status is not None:
            log.info("fault %s acknowledged%s", self.status.code, self._also_summary())
        self.status = None
        self._unannounced = None
        self._also_seen = {}
        self._also_last.clear()
        self._also_logged.clear()
        self._also_recorded.clear()

    def _also(self, latched: FaultCode, code: FaultCode, detail: str) -> None:
        """Count a secondary finding; log it only if its shape is new in this latch."""
        self._also_seen[code] = self._also_seen.get(code, 0) + 1
        if self._also_last.get(code) == detail:
            return  # the same text as last time (a flag reported in every frame)
        self._also_last[code] = detail
        key = (code, _FIGURES.sub("#", detail))
        if key in self._also_logged or len(self._also_logged) >= SECONDARY_LOG_MAX:
            return
        self._also_logged.add(key)
        log.info("while %s is latched, also: %s: %s", latched, code, detail)

    def _also_summary(self) -> str:
        if not self._also_seen:
            return ""
        counts = ", ".join(f"{c} {n} times" for c, n in sorted(self._also_seen.items()))
        return f"; while it was latched also seen: {counts}"

    # ------------------------------------------------------------ records not yet written

    @property
    def unwritten(self) -> int:
        """How many records wait for the ledger."""
        return len(self._unwritten)

    def record_fault(self, code: FaultCode, detail: str, session_id: int | None) -> None:
        """The fault's ledger row, at the time it latched; kept to retry (marked late,
        still at that time) if the ledger refuses it."""
        at = self._wall_clock()
        problem = self.write(lambda ledger: ledger.record_fault(code, detail, session_id, at=at))
        if problem is not None:
            log.error("fault %s not recorded yet (kept to retry): %s", code, problem)
            late = f"{detail} [latched at {at.isoformat(timespec='seconds')}; recorded late]"
            self._unwritten[-1] = lambda ledger: ledger.record_fault(code, late, session_id, at=at)

    def write(self, write: LedgerWrite) -> str | None:
        """Write to the ledger after anything still unwritten; None, or why it is kept."""
        self._unwritten.append(write)
        return self.write_unwritten()

    def write_unwritten(self) -> str | None:
        """Write the kept records in order; None once all are in, else the ledger's error."""
        while self._unwritten:
            try:
                self._unwritten[0](self._ledger())
            except LedgerError as exc:
                return str(exc)
            self._unwritten.pop(0)
        return None

    def retry_unwritten(self, now_s: float) -> None:
        """On a tick: try the kept records again, at most every ``LEDGER_RETRY_S``."""
        if self._unwritten and now_s >= self._next_retry_s:
            self._next_retry_s = now_s + LEDGER_RETRY_S
            if self.write_unwritten() is None:
                log.info("the records kept while the ledger could not be written are in")
