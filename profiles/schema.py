"""The treatment-profile schema: what a prescription file may contain.

Owns: the pydantic models (``Profile`` and its parts), their structural rules (types,
allowed values, the format's bounds on every number, consistency between fields, text
a terminal shows as written) and the quantities computed from a profile (planned
fluence, validity on a date). The format's bounds say what a prescription can mean at
all (an interval of at most a week, a course of at most a year, …; the reasons are in
docs/profiles.md); they keep every figure computed from a profile finite and every
installed profile startable. Does not own the device's numeric limits (10–50 mW/cm²,
30 min, 90 J/cm², ≥ 20 h, …): those live in ``safety.limits`` and are applied by the
loader's ``extra_checks`` hook, so those numbers exist in one place.
Does not read files (``loader``) or check signatures (``signing``).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

SCHEMA_VERSION = 1
_STRICT = ConfigDict(strict=True, frozen=True, extra="forbid", allow_inf_nan=False)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Control, format (bidirectional overrides, zero-width), surrogate and line-break
characters: a terminal would act on them instead of showing them."""
EXPIRY_MAX_YEARS = 2
"""A prescription is valid for at most two years from its issue date."""
MIN_INTERVAL_MAX_H: Final = 168
"""The longest interval between sessions a prescription may ask for: a week. A site's
``[limits] min_interval_h`` may not be above it either (``safety.site_limits``)."""


def _list_to_tuple(value: object) -> object:
    """TOML gives arrays as lists; strict mode only takes tuples for tuple fields."""
    return tuple(value) if isinstance(value, list) else value


def _only_real_date(value: object) -> object:
    """Refuse a TOML date-time (a ``datetime``, which is also a ``date``) for a date."""
    if isinstance(value, dt.datetime):
        raise PydanticCustomError("date_not_datetime", "must be a date like 2026-11-01, no time")
    return value


def _hhmm(value: object) -> object:
    if isinstance(value, str) and not _HHMM.match(value):
        raise PydanticCustomError("hhmm", 'must be a 24-hour time in quotes, like "19:00"')
    return value


def _whole_number(value: object) -> object:
    """An integer field takes an integer only: ``810.0`` or ``true`` is refused."""
    if isinstance(value, bool | float):
        raise PydanticCustomError("int_type", "must be a whole number")
    return value


def _whole_valued(value: object) -> object:
    """A number the board takes as a whole number (``10`` or ``10.0``, not ``10.7``)."""
    if isinstance(value, float) and not value.is_integer():
        raise PydanticCustomError(
            "whole_number", "must be a whole number (the board has no fractions)"
        )
    return value


def _printable(value: object) -> object:
    """Free text without characters a terminal would act on (escape codes, bidi…)."""
    if isinstance(value, str):
        bad = next((c for c in value if unicodedata.category(c) in _UNPRINTABLE), None)
        if bad is not None:
            raise PydanticCustomError(
                "printable",
                "must not contain control characters (found U+{code})",
                {"code": f"{ord(bad):04X}"},
            )
    return value


def add_years(day: dt.date, years: int) -> dt.date:
    """``day`` moved ``years`` on (29 February → 28 February); ``date.max`` past 9999."""
    if day.year + years > dt.MAXYEAR:
        return dt.date.max
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


TomlDate = Annotated[dt.date, BeforeValidator(_only_real_date)]
HhMm = Annotated[str, BeforeValidator(_hhmm)]
Text = Annotated[str, BeforeValidator(_printable)]
Wavelength = Annotated[Literal[810, 850], BeforeValidator(_whole_number)]
WholeValued = Annotated[float, BeforeValidator(_whole_valued)]


def _rule(loc: tuple[str | int, ...], value: object, message: str) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError("profile_rule", message), loc=loc, input=value)


def _raise_if(title: str, errors: list[InitErrorDetails]) -> None:
    if errors:
        raise ValidationError.from_exception_data(title, errors)


class ChannelSpec(BaseModel):
    """One LED channel of the prescription."""

    model_config = _STRICT
    wavelength_nm: Wavelength = Field(description="LED wavelength: 810 or 850")
    irradiance_mw_cm2: float = Field(gt=0, le=1000, description="irradiance at the skin, in mW/cm²")


class Mode(BaseModel):
    """Continuous (``cw``) or pulsed light; pulse settings are given iff pulsed."""

    model_config = _STRICT
    kind: Literal["cw", "pulsed"] = Field(description='"cw" (continuous) or "pulsed"')
    pulse_hz: WholeValued | None = Field(
        default=None, ge=1, le=1000, description="pulse frequency in Hz, a whole number"
    )
    duty_pct: WholeValued | None = Field(
        default=None, ge=1, le=100, description="share of each pulse the light is on, %"
    )

    @model_validator(mode="after")
    def _pulse_settings_iff_pulsed(self) -> Self:
        errors: list[InitErrorDetails] = []
        for name in ("pulse_hz", "duty_pct"):
            value = getattr(self, name)
            if self.kind == "pulsed" and value is None:
                errors.append(_rule((name,), None, 'is required when kind = "pulsed"'))
            if self.kind == "cw" and value is not None:
                errors.append(_rule((name,), value, 'is only allowed when kind = "pulsed"'))
        _raise_if("Mode", errors)
        return self

    @property
    def duty_fraction(self) -> float:
        """Average share of time the light is on: 1.0 for CW."""
        return 1.0 if self.duty_pct is None else self.duty_pct / 100.0


class TimeWindow(BaseModel):
    """Preferred local time of day for sessions; ``end`` before ``start`` spans midnight."""

    model_config = _STRICT
    start: HhMm = Field(description='earliest local start time, "HH:MM"')
    end: HhMm = Field(description='latest local time, "HH:MM"')

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            _raise_if("TimeWindow", [_rule(("end",), self.end, "must differ from start")])
        return self


class Signature(BaseModel):
    """An Ed25519 signature over the profile's canonical content (see ``canonical``)."""

    model_config = _STRICT
    key_id: Text = Field(min_length=1, max_length=64, description="id of the signing key")
    algorithm: Literal["ed25519"] = Field(description='must be "ed25519"')
    value: str = Field(min_length=1, max_length=200, description="the signature, base64")


class Profile(BaseModel):
    """A treatment prescription. Field names are part of the file format: never rename."""

    model_config = _STRICT
    schema_version: Annotated[Literal[1], BeforeValidator(_whole_number)] = Field(
        description="format version: 1"
    )
    id: str = Field(pattern=_SLUG, max_length=64, description="short id, like rls-810-standard")
    name: Text = Field(min_length=1, max_length=200, description="a name for people")
    prescriber: Text = Field(min_length=1, max_length=200, description="who prescribed it")
    issued: TomlDate = Field(description="date issued, like 2026-11-01")
    expires: TomlDate = Field(description="first day it is no longer valid, like 2027-02-01")
    channels: Annotated[tuple[ChannelSpec, ...], BeforeValidator(_list_to_tuple)] = Field(
        min_length=1, max_length=2, description="one or two [[channels]] tables"
    )
    mode: Mode = Field(description="a [mode] table")
    duration_min: int = Field(gt=0, le=120, description="session length in minutes")
    ramp_s: float = Field(ge=0, le=600, description="ramp-up time at the start, in seconds")
    sessions_per_week: int = Field(gt=0, le=7, description="sessions allowed per week")
    min_interval_h: float = Field(
        ge=0, le=MIN_INTERVAL_MAX_H, description="minimum hours between sessions"
    )
    course_weeks: int = Field(gt=0, le=52, description="length of the course in weeks")
    window: TimeWindow | None = Field(default=None, description="a [window] table")
    skin_temp_stop_c: float | None = Field(
        default=None, ge=35, le=45, description="a lower skin-temperature stop, in °C"
    )
    signature: Signature | None = Field(default=None, description="a [signature] table")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        errors: list[InitErrorDetails] = []
        if self.expires <= self.issued:
            errors.append(_rule(("expires",), self.expires, "must be after issued"))
        elif self.expires > (latest := add_years(self.issued, EXPIRY_MAX_YEARS)):
            rule = f"must be at most {EXPIRY_MAX_YEARS} years after issued ({latest.isoformat()})"
            errors.append(_rule(("expires",), self.expires, rule))
        wavelengths = [c.wavelength_nm for c in self.channels]
        if len(set(wavelengths)) != len(wavelengths):
            errors.append(
                _rule(
                    ("channels", 1, "wavelength_nm"),
                    wavelengths[-1],
                    "is already used by channels[0]",
                )
            )
        if self.ramp_s >= self.duration_s:
            errors.append(_rule(("ramp_s",), self.ramp_s, "must be shorter than the session"))
        _raise_if("Profile", errors)
        return self

    @property
    def duration_s(self) -> float:
        return float(self.duration_min * 60)

    @property
    def duty_fraction(self) -> float:
        return self.mode.duty_fraction

    @property
    def planned_fluence_j_cm2(self) -> dict[int, float]:
        """Planned fluence per wavelength: irradiance × duty × (duration − ramp/2) / 1000.

        The ramp is taken as linear from zero, so it delivers half its time's worth.
        """
        effective_s = self.duration_s - self.ramp_s / 2.0
        return {
            c.wavelength_nm: c.irradiance_mw_cm2 * self.duty_fraction * effective_s / 1000.0
            for c in self.channels
        }

    @property
    def planned_fluence_total_j_cm2(self) -> float:
        return sum(self.planned_fluence_j_cm2.values())

    def is_valid_on(self, day: dt.date) -> bool:
        """True from ``issued`` up to the day before ``expires``."""
        return self.issued <= day < self.expires

    def validity_problem(self, today: dt.date) -> str | None:
        """Why the prescription cannot be used on ``today``, or None if it can."""
        if today >= self.expires:
            return f"This prescription expired on {self.expires.isoformat()}."
        if today < self.issued:
            return f"This prescription is not valid before {self.issued.isoformat()}."
        return None

    def course_end(self, first_session: dt.date) -> dt.date:
        """The first day after the course: ``course_weeks`` weeks from the first session."""
        return first_session + dt.timedelta(weeks=self.course_weeks)

    def course_problem_at(self, first_session: dt.datetime | None, now: dt.datetime) -> str | None:
        """``course_problem`` on the patient's local dates, in this host's time zone, as
        the course follow-up counts its days (``care.course``): west of UTC an evening
        session falls on the next UTC date, which would end the course a night early."""
        first_day = None if first_session is None else first_session.astimezone().date()
        return self.course_problem(first_day, now.astimezone().date())

    def course_problem(self, first_session: dt.date | None, today: dt.date) -> str | None:
        """Why the course is over on ``today``, or None (also before the first session)."""
        if first_session is None or today < (end := self.course_end(first_session)):
            return None
        weeks = f"{self.course_weeks} week{'' if self.course_weeks == 1 else 's'}"
        return (
            f"The prescribed course of {weeks} from the first session "
            f"({first_session.isoformat()}) ended on {end.isoformat()}. "
            f"Ask the clinic to renew the prescription."
        )


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a profile, for clinic tools."""
    return Profile.model_json_schema()
