"""Plain sentences for schema errors: pydantic's error records → caregiver lines.

Owns: the wording of every structural problem (type, allowed value, range, missing or
unknown field with a "did you mean" suggestion) and how values are shown. Never uses
``str(ValidationError)``, which is written for programmers. Does not find line numbers
(``locator``) or decide what is valid (``schema``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from profiles.errors import Problem
from profiles.locator import KeyLocator, format_path, quoted
from profiles.schema import Profile

_UNITS = {
    "_nm": " nm",
    "_mw_cm2": " mW/cm²",
    "_min": " min",
    "_s": " s",
    "_h": " h",
    "_hz": " Hz",
    "_pct": " %",
    "_c": " °C",
    "_weeks": " weeks",
}
_MAX_SHOWN = 40
MAX_LISTED = 50
"""At most this many schema problems are listed; the rest are counted in one line."""


def unit_of(loc: Sequence[str | int]) -> str:
    name = next((p for p in reversed(loc) if isinstance(p, str)), "")
    return next((unit for suffix, unit in _UNITS.items() if name.endswith(suffix)), "")


def show_value(value: object) -> str | None:
    """A value as it would be written in TOML, shortened; None for tables and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str):
        shown = value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "…"
        return quoted(shown)
    return None


def _num(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return show_value(value) or str(value)


def _whole_number(err: ErrorDetails, loc: Sequence[str | int]) -> str:
    given = err.get("input")
    if isinstance(given, str):
        return "must be a whole number, without quotes"
    if isinstance(given, bool):
        return "must be a whole number, not true or false"
    if isinstance(given, float):
        return "must be a whole number, without a decimal point"
    return "must be a whole number"


def _model_at(loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The model whose fields are found at ``loc`` (Profile at the top)."""
    model: type[BaseModel] | None = Profile
    for part in loc:
        if model is None:
            return None
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = None if info is None else _find_model(info.annotation)
    return model


def _find_model(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Annotated, typing.Union, types.UnionType, tuple):
        for arg in typing.get_args(annotation):
            if found := _find_model(arg):
                return found
    return None


def _allowed(loc: Sequence[str | int]) -> list[str]:
    model = _model_at(loc[:-1])
    return sorted(model.model_fields) if model else []


def _suggestion(loc: Sequence[str | int]) -> str | None:
    close = difflib.get_close_matches(str(loc[-1]), _allowed(loc), n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown_field(loc: Sequence[str | int]) -> str:
    near = _suggestion(loc)
    if near:
        return f'unknown field — did you mean "{near}"?'
    return "unknown field; allowed here: " + ", ".join(_allowed(loc))


def _missing(loc: Sequence[str | int]) -> str:
    model = _model_at(loc[:-1])
    info = model.model_fields.get(str(loc[-1])) if model else None
    described = info.description if info is not None and info.description else ""
    return f"is missing ({described})" if described else "is missing"


def _literal(err: ErrorDetails, loc: Sequence[str | int]) -> str:
    expected = str(err.get("ctx", {}).get("expected", "")).replace("'", '"')
    return f"must be {expected}{unit_of(loc)}"


def _bound(word: str, key: str) -> Callable[[ErrorDetails, Sequence[str | int]], str]:
    return lambda err, loc: f"must be {word} {_num(err.get('ctx', {}).get(key))}{unit_of(loc)}"


_RULES: Mapping[str, Callable[[ErrorDetails, Sequence[str | int]], str]] = {
    "missing": lambda err, loc: _missing(loc),
    "extra_forbidden": lambda err, loc: _unknown_field(loc),
    "literal_error": _literal,
    "greater_than": _bound("more than", "gt"),
    "greater_than_equal": _bound("at least", "ge"),
    "less_than": _bound("less than", "lt"),
    "less_than_equal": _bound("at most", "le"),
    "int_type": _whole_number,
    "float_type": lambda err, loc: f"must be a number{unit_of(loc)}, without quotes",
    "string_type": lambda err, loc: "must be text in double quotes",
    "bool_type": lambda err, loc: "must be true or false",
    "date_type": lambda err, loc: "must be a date like 2026-11-01, without quotes",
    "finite_number": lambda err, loc: "must be a real number, not nan or inf",
    "string_too_short": lambda err, loc: "must not be empty",
    "string_too_long": lambda err, loc: (
        f"must be at most {err.get('ctx', {}).get('max_length')} characters"
    ),
    "too_short": lambda err, loc: (
        f"must have at least {err.get('ctx', {}).get('min_length')} entry"
    ),
    "too_long": lambda err, loc: (
        f"must have at most {err.get('ctx', {}).get('max_length')} entries"
    ),
    "string_pattern_mismatch": lambda err, loc: (
        "must be lowercase letters and digits with single dashes, like rls-810-standard"
    ),
    "model_type": lambda err, loc: "must be a table of settings",
    "model_attributes_type": lambda err, loc: "must be a table of settings",
    "dict_type": lambda err, loc: "must be a table of settings",
    "tuple_type": lambda err, loc: "must be a list of [[channels]] tables",
}


def schema_problems(
    errors: Sequence[ErrorDetails], raw: Mapping[str, Any], locator: KeyLocator
) -> list[Problem]:
    """Every pydantic error record as a caregiver line.

    The first ``MAX_LISTED`` are listed, then one line counts the rest. Two kinds of
    echo are dropped, so each mistake gives one line: the "too short"
    error pydantic adds to a list whose entries are wrong (it counts only the valid
    ones), and "missing" for a field whose misspelling is already reported.
    """
    hidden = len(errors) - MAX_LISTED
    errors = errors[:MAX_LISTED]  # bounds the work ("did you mean" is not cheap) and the output
    locs = [tuple(err["loc"]) for err in errors]
    misspelt = {
        (*loc[:-1], near)
        for err, loc in zip(errors, locs, strict=True)
        if err["type"] == "extra_forbidden" and (near := _suggestion(loc))
    }
    kept = [
        err
        for err, loc in zip(errors, locs, strict=True)
        if not (err["type"] == "too_short" and any(o[: len(loc)] == loc and o != loc for o in locs))
        and not (err["type"] == "missing" and loc in misspelt)
    ]
    problems = [schema_problem(err, raw, locator) for err in kept]
    if hidden > 0:
        problems.append(Problem("file", None, f"has {hidden} more problems, not listed"))
    return problems


def schema_problem(err: ErrorDetails, raw: Mapping[str, Any], locator: KeyLocator) -> Problem:
    """One pydantic error record as a caregiver line; the value is shown as written."""
    loc = tuple(err["loc"])
    kind = err["type"]
    rule_of = _RULES.get(kind)
    # Our own rules (schema.py) carry their sentence in msg; the fallback rewords pydantic's.
    rule = rule_of(err, loc) if rule_of else err["msg"].replace("Input should be", "must be")
    written = raw_value_at(raw, loc)
    shown = show_value(err.get("input") if written is None else written)
    value = None if kind in ("missing", "extra_forbidden") else shown
    return Problem(field=format_path(loc), value=value, rule=rule, line=locator.line_of(loc))


def raw_value_at(data: Mapping[str, Any], loc: Sequence[str | int]) -> object:
    """The value at ``loc`` in parsed TOML data, or None when there is none."""
    node: object = data
    for part in loc:
        found = (isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)) or (
            isinstance(node, dict) and part in node
        )
        if not found:
            return None
        node = node[part]  # type: ignore[index]
    return node
