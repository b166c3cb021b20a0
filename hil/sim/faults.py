"""Fault-injection vocabulary of the simulated board.

Owns: the names of the injectable faults (stable strings, used on the JSON-line
interface and in docs/hil.md), their parameters with defaults and checks, and the set
of active injections. Does not own what a fault does: the board, the sensors and the
link read the active set and act on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final


class FaultKind(StrEnum):
    SKIN_OVERTEMP = "skin_overtemp"
    NTC_OPEN = "ntc_open"
    NTC_SHORT = "ntc_short"
    NTC_DRIFT = "ntc_drift"
    LED_OPEN = "led_open"
    LED_SHORT = "led_short"
    CURRENT_GAIN = "current_gain"
    STUCK_ON = "stuck_on"
    BOARD_OVERTEMP = "board_overtemp"
    CONTACT_LOST = "contact_lost"
    LINK_DROP = "link_drop"
    LINK_CORRUPT = "link_corrupt"
    LINK_DELAY = "link_delay"
    LINK_DUPLICATE = "link_duplicate"
    BROWNOUT = "brownout"
    DISCONNECT = "disconnect"
    BUTTON_STUCK = "button_stuck"
    BUTTON_BOUNCE = "button_bounce"


class InjectionError(ValueError):
    """An unknown fault kind or a bad parameter. Carries ``kind`` and ``param``."""

    def __init__(self, message: str, kind: str, param: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.param = param


SENSORS: Final = ("skin_a", "skin_b", "board")

# kind -> {canonical param: default}; a None default means "not applicable".
_PARAMS: Final[dict[FaultKind, dict[str, object]]] = {
    FaultKind.NTC_OPEN: {"sensor": "skin_a"},
    FaultKind.NTC_SHORT: {"sensor": "skin_a"},
    FaultKind.NTC_DRIFT: {"sensor": "skin_a", "rate_c_per_min": 1.0},
    FaultKind.LED_OPEN: {"channel": 0},
    FaultKind.LED_SHORT: {"channel": 0},
    FaultKind.CURRENT_GAIN: {"percent": 9.0},
    FaultKind.LINK_DROP: {"duration_ms": 200.0},
    FaultKind.LINK_CORRUPT: {"rate": 0.01},
    FaultKind.LINK_DELAY: {"delay_ms": 50.0},
}
_ALIASES: Final = {"rate": "rate_c_per_min"}
# Momentary faults act once and are not kept in the active set.
MOMENTARY: Final = frozenset({FaultKind.BROWNOUT})


@dataclass(frozen=True, slots=True)
class Injection:
    kind: FaultKind
    params: dict[str, object] = field(default_factory=dict)
    t_s: float = 0.0  # protocol time of the injection
    physics_s: float = 0.0  # physics time of the injection (drifts run on it)

    def number(self, name: str) -> float:
        value = self.params[name]
        assert isinstance(value, int | float)
        return float(value)


def parse_injection(
    kind: str, params: dict[str, object], t_s: float = 0.0, physics_s: float = 0.0
) -> Injection:
    """Validate ``kind`` and ``params`` and fill in defaults; raise InjectionError."""
    try:
        fault = FaultKind(kind)
    except ValueError as exc:
        raise InjectionError(f"unknown fault kind {kind!r}", kind) from exc
    allowed = _PARAMS.get(fault, {})
    resolved = dict(allowed)
    for name, value in params.items():
        canonical = _canonical(fault, name, allowed)
        resolved[canonical] = _check(fault, canonical, value)
    return Injection(fault, resolved, t_s, physics_s)


def _canonical(fault: FaultKind, name: str, allowed: dict[str, object]) -> str:
    if name in allowed:
        return name
    if name == "ms":
        for candidate in ("duration_ms", "delay_ms"):
            if candidate in allowed:
                return candidate
    alias = _ALIASES.get(name)
    if alias is not None and alias in allowed:
        return alias
    raise InjectionError(f"{fault.value} takes no parameter {name!r}", fault.value, name)


def _check(fault: FaultKind, name: str, value: object) -> object:
    def bad(rule: str) -> InjectionError:
        return InjectionError(f"{fault.value}: {name}={value!r} {rule}", fault.value, name)

    if name == "sensor":
        if value not in SENSORS:
            raise bad(f"must be one of {', '.join(SENSORS)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad("must be a number")
    if name == "channel":
        if value not in (0, 1):
            raise bad("must be 0 (810 nm) or 1 (850 nm)")
        return int(value)
    if name == "rate" and not 0.0 <= value <= 1.0:
        raise bad("must be a probability between 0 and 1")
    if name in ("duration_ms", "delay_ms") and not 0.0 <= value <= 600_000.0:
        raise bad("must be between 0 and 600000 ms")
    if name == "rate_c_per_min" and not -60.0 <= value <= 60.0:
        raise bad("must be between -60 and 60 °C/min")
    if name == "percent" and not -90.0 <= value <= 100.0:
        raise bad("must be between -90 and 100 %")
    return float(value)


class ActiveInjections:
    """The injections in force, at most one per kind (a new one replaces the old)."""

    def __init__(self) -> None:
        self._by_kind: dict[FaultKind, Injection] = {}

    def add(self, injection: Injection) -> None:
        self._by_kind[injection.kind] = injection

    def get(self, kind: FaultKind) -> Injection | None:
        return self._by_kind.get(kind)

    def __bool__(self) -> bool:
        return bool(self._by_kind)

    def __contains__(self, kind: FaultKind) -> bool:
        return kind in self._by_kind

    def clear(self) -> list[Injection]:
        removed = list(self._by_kind.values())
        self._by_kind.clear()
        return removed

    def describe(self) -> list[dict[str, object]]:
        return [{"fault": inj.kind.value, **inj.params} for inj in self._by_kind.values()]

    def channel_has(self, kind: FaultKind, channel: int) -> bool:
        injection = self._by_kind.get(kind)
        return injection is not None and injection.params.get("channel") == channel
