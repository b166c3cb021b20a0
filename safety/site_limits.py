"""The site limits file: reading its ``[limits]`` table, tighten only.

Owns: parsing a site TOML file's ``[limits]`` table into a ``Limits`` record, and
refusing unknown keys, wrong types, non-finite numbers (and ones too long or too large
to read), inconsistent pairs, any value looser than the compiled-in hard limit and a
minimum interval above the week a prescription may ask for at most
(``profiles.schema.MIN_INTERVAL_MAX_H``). Other top-level tables (``[signing]`` …)
belong to other modules and are ignored here.

Does not own: the hard values themselves or the checks against them (``safety.limits``,
whose ``load_site_limits`` is the public entry point).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from profiles.errors import SiteFileError
from profiles.schema import MIN_INTERVAL_MAX_H
from profiles.site_file import read_site_file
from safety.errors import SiteLimitsError
from safety.limits import HARD_LIMITS, IRRADIANCE_TOLERANCE_FRACTION, Limits, _num

__all__ = ["read_site_limits", "unit_of"]

log = logging.getLogger(__name__)

# Limits whose larger value is the tighter one; for every other limit, smaller is tighter.
_RAISE_TO_TIGHTEN: Final = frozenset(
    {"irradiance_min_mw_cm2", "min_interval_h", "sensor_valid_min_c"}
    | {"pulse_hz_min", "duty_pct_min"}
)
_UNITS: Final[dict[str, str]] = {
    "mw_cm2": " mW/cm²",
    "fraction": "",
    "_s": " s",
    "_min": " min",
    "j_cm2": " J/cm²",
    "_h": " h",
    "_c": " °C",
    "c_per_min": " °C/min",
    "_ms": " ms",
    "hz_min": " Hz",
    "hz_max": " Hz",
    "pct_min": " %",
    "pct_max": " %",
}
_INT_LIMITS: Final = frozenset(f.name for f in dataclasses.fields(Limits) if f.type == "int")
_LIMIT_NAMES: Final = tuple(f.name for f in dataclasses.fields(Limits))
_PAIRS: Final = (
    ("irradiance_min_mw_cm2", "irradiance_max_mw_cm2"),
    ("pulse_hz_min", "pulse_hz_max"),
    ("duty_pct_min", "duty_pct_max"),
    ("sensor_valid_min_c", "sensor_valid_max_c"),
    ("skin_temp_warn_c", "skin_temp_stop_c"),
)


def unit_of(limit: str) -> str:
    """The unit suffix shown after a limit's value, e.g. `` mW/cm²``."""
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if limit.endswith(suffix):
            return _UNITS[suffix]
    return ""  # counts, e.g. sessions_per_week_max


def read_site_limits(path: Path) -> Limits:
    """The hard limits tightened by the ``[limits]`` table of the file at ``path``."""
    table = _read_limits_table(path)
    asked: dict[str, Any] = {
        name: _typed(path, name, value) for name, value in _known(path, table).items()
    }
    for name, value in asked.items():
        _refuse_loosening(path, name, value)
    _refuse_interval_beyond_a_week(path, asked.get("min_interval_h"))
    limits = dataclasses.replace(HARD_LIMITS, **asked)
    _refuse_inconsistent(path, limits)
    if asked:
        log.info("site limits from %s tighten: %s", path, ", ".join(sorted(asked)))
    return limits


def _read_limits_table(path: Path) -> Mapping[str, object]:
    try:
        document = read_site_file(path)
    except SiteFileError as exc:
        limit = exc.key if exc.key in _LIMIT_NAMES else None
        raise SiteLimitsError(
            exc.sentence("the site limits file"), limit=limit or "[limits]", path=path
        ) from exc
    table = document.get("limits", {})
    if not isinstance(table, dict):
        raise SiteLimitsError(
            f"In {path}, 'limits' must be a table ([limits]), not a single value.",
            limit="[limits]",
            path=path,
        )
    return table


def _known(path: Path, table: Mapping[str, object]) -> Mapping[str, object]:
    for name in table:
        if name not in _LIMIT_NAMES:
            close = difflib.get_close_matches(name, _LIMIT_NAMES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SiteLimitsError(
                f"In {path}, [limits] has an unknown limit '{name}'.{hint}",
                limit=name,
                path=path,
            )
    return table


def _typed(path: Path, name: str, value: object) -> float:
    whole = name in _INT_LIMITS
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (whole and not isinstance(value, int))
    ):
        wanted = "a whole number" if whole else "a number"
        raise SiteLimitsError(
            f"In {path}, [limits] {name} = {value!r}: must be {wanted}.",
            limit=name,
            path=path,
            asked=value,
        )
    try:
        finite = math.isfinite(value)
    except OverflowError as exc:  # an integer too large for a float (hundreds of digits)
        digits = len(str(abs(value)))
        raise SiteLimitsError(
            f"In {path}, [limits] {name} is far too large a number ({digits} digits).",
            limit=name,
            path=path,
        ) from exc
    if not finite:
        raise SiteLimitsError(
            f"In {path}, [limits] {name} = {value!r}: must be a finite number.",
            limit=name,
            path=path,
            asked=value,
        )
    return value


def _refuse_loosening(path: Path, name: str, asked: float) -> None:
    hard: float = getattr(HARD_LIMITS, name)
    unit = unit_of(name)
    if name in _RAISE_TO_TIGHTEN:
        looser, allowed = asked < hard, f"{_num(hard)}{unit} or higher"
    else:
        looser, allowed = asked > hard, f"{_num(hard)}{unit} or lower"
        if asked <= 0:
            raise SiteLimitsError(
                f"In {path}, [limits] {name} = {_num(asked)}{unit}: must be more than 0.",
                limit=name,
                path=path,
                asked=asked,
                hard=hard,
            )
    if looser:
        raise SiteLimitsError(
            f"In {path}, [limits] {name} = {_num(asked)}{unit} would loosen the hard limit "
            f"of {_num(hard)}{unit}. A site may only tighten it ({allowed}).",
            limit=name,
            path=path,
            asked=asked,
            hard=hard,
        )


def _refuse_interval_beyond_a_week(path: Path, asked: float | None) -> None:
    """A site minimum interval above the longest a prescription may ask for
    (``MIN_INTERVAL_MAX_H``, the schema's bound) would refuse every prescription."""
    if asked is not None and asked > MIN_INTERVAL_MAX_H:
        raise SiteLimitsError(
            f"In {path}, [limits] min_interval_h = {_num(asked)} h: must be at most "
            f"{_num(MIN_INTERVAL_MAX_H)} h (a week), the longest interval a prescription "
            f"may ask for.",
            limit="min_interval_h",
            path=path,
            asked=asked,
        )


def _refuse_inconsistent(path: Path, limits: Limits) -> None:
    for low_name, high_name in _PAIRS:
        low: float = getattr(limits, low_name)
        high: float = getattr(limits, high_name)
        if low > high:
            raise SiteLimitsError(
                f"In {path}, [limits] {low_name} ({_num(low)}{unit_of(low_name)}) is above "
                f"{high_name} ({_num(high)}{unit_of(high_name)}); nothing could satisfy both.",
                limit=low_name,
                path=path,
                asked=low,
            )
    low, top = limits.irradiance_min_mw_cm2, limits.prescribable_max_mw_cm2
    if low > top:  # the prescribable top is the maximum less the output tolerance
        raise SiteLimitsError(
            f"In {path}, [limits] irradiance_min_mw_cm2 ({_num(low)} mW/cm²) is above the "
            f"highest irradiance a prescription may ask for ({_num(top)} mW/cm²: "
            f"irradiance_max_mw_cm2 less the ±{_num(IRRADIANCE_TOLERANCE_FRACTION * 100)} % "
            f"output tolerance); nothing could satisfy both.",
            limit="irradiance_min_mw_cm2",
            path=path,
            asked=low,
        )
