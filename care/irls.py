"""The weekly IRLS: ten item scores, their total, severity band and subscales.

Owns: checking a set of item scores (exactly items 1-10, each a whole number 0-4), the
total (0-40), the severity band (0 none, 1-10 mild, 11-20 moderate, 21-30 severe,
31-40 very severe), the two subscales when the clinic states which items each holds,
the neutral item labels ("item 1 of 10, 0-4"), and reading the clinic's wording file.

The IRLS wording is licensed and is never shipped with nirpad: only item numbers and
scores are stored. A clinic that holds a licence can supply its text in a small TOML
file (docs/course.md, "The symptom diary"), named in the site configuration as
``[course] irls_wording = "..."``. The subscale split (symptom severity, symptom
impact) could not be confirmed from the published validation text available to us,
so nirpad computes subscales only from the split given in that file.

Does not own storage (``care.diary``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from care.diary_entry import check_score, check_text
from care.diary_schema import DiaryError
from profiles.errors import SiteFileError
from profiles.site_file import read_site_file

__all__ = [
    "ITEM_COUNT",
    "ITEM_MAX",
    "Band",
    "IrlsWording",
    "Subscales",
    "band_of",
    "check_items",
    "item_label",
    "read_wording",
    "wording_path",
]

ITEM_COUNT: Final = 10
ITEM_MAX: Final = 4
WORDING_MAX_CHARS: Final = 1000


class Band(enum.StrEnum):
    """The IRLS severity band of a total; the stored values are stable."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"
    VERY_SEVERE = "very severe"


_BAND_TOPS: Final = ((0, Band.NONE), (10, Band.MILD), (20, Band.MODERATE), (30, Band.SEVERE))


def band_of(total: int) -> Band:
    """The severity band of an IRLS total 0-40."""
    if not 0 <= total <= ITEM_COUNT * ITEM_MAX:
        raise ValueError(f"an IRLS total is 0-40, not {total}")
    for top, band in _BAND_TOPS:
        if total <= top:
            return band
    return Band.VERY_SEVERE


def check_items(items: Mapping[int, int]) -> dict[int, int]:
    """The scores of items 1-10 (sorted) if all ten are there, each 0-4; else DiaryError."""
    extra = sorted(k for k in items if not (type(k) is int and 1 <= k <= ITEM_COUNT))
    if extra:
        raise DiaryError(
            f"The IRLS has items 1 to {ITEM_COUNT}; there is no item {extra[0]!r}.",
            field="items",
        )
    missing = [k for k in range(1, ITEM_COUNT + 1) if k not in items]
    if missing:
        raise DiaryError(
            f"The IRLS needs all {ITEM_COUNT} item scores; {len(items)} given "
            f"(missing: item {', item '.join(map(str, missing))}).",
            field="items",
        )
    for number, score in items.items():
        check_score(score, 0, ITEM_MAX, field=f"item {number}")
    return {k: items[k] for k in range(1, ITEM_COUNT + 1)}


def item_label(number: int, wording: IrlsWording | None = None) -> str:
    """The clinic's text for an item if it supplied one, else a neutral label."""
    if wording is not None and number in wording.items:
        return f"{number}. {wording.items[number]} (0-{ITEM_MAX})"
    return f"item {number} of {ITEM_COUNT}, 0-{ITEM_MAX}"


@dataclass(frozen=True, slots=True)
class Subscales:
    """Which items each published subscale holds (from the clinic's wording file)."""

    symptom_severity: frozenset[int]
    symptom_impact: frozenset[int]

    def scores(self, items: Mapping[int, int]) -> dict[str, int]:
        """``{"symptom_severity": n, "symptom_impact": m}`` for a complete IRLS."""
        return {
            "symptom_severity": sum(items[k] for k in self.symptom_severity),
            "symptom_impact": sum(items[k] for k in self.symptom_impact),
        }


@dataclass(frozen=True, slots=True)
class IrlsWording:
    """A clinic's wording file: item texts and, optionally, the subscale split."""

    items: Mapping[int, str]
    subscales: Subscales | None


def wording_path(site_config: Path | None) -> Path | None:
    """The wording file named by ``[course] irls_wording`` in the site configuration
    (relative to that file's folder), or None when there is none."""
    if site_config is None:
        return None
    document = _load_toml(site_config, what="site configuration")
    course = document.get("course", {})
    name = course.get("irls_wording") if isinstance(course, dict) else None
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise DiaryError(
            f"In {site_config}, [course] irls_wording must be a file name.",
            field="irls_wording",
        )
    return (site_config.parent / name).expanduser()


def read_wording(path: Path) -> IrlsWording:
    """Read a wording file; raises DiaryError naming what is wrong with it."""
    document = _load_toml(path, what="IRLS wording file")
    table = document.get("items", {})
    if not isinstance(table, dict):
        raise DiaryError(f"In {path}, 'items' must be a table ([items]).", field="wording")
    texts: dict[int, str] = {}
    for key, text in table.items():
        if not (key.isdigit() and 1 <= int(key) <= ITEM_COUNT) or not isinstance(text, str):
            raise DiaryError(
                f"In {path}, [items] holds item numbers 1-{ITEM_COUNT} with text "
                f'(1 = "..."); {key!r} is not one.',
                field="wording",
            )
        texts[int(key)] = check_text(
            text, field=f"wording of item {key}", max_chars=WORDING_MAX_CHARS
        )
    return IrlsWording(texts, _subscales(path, document.get("subscales")))


def _subscales(path: Path, table: object) -> Subscales | None:
    if table is None:
        return None
    names = ("symptom_severity", "symptom_impact")
    if not isinstance(table, dict) or set(table) != set(names):
        raise DiaryError(
            f"In {path}, [subscales] must give symptom_severity and symptom_impact, "
            "each a list of item numbers.",
            field="wording",
        )
    split = [_item_set(path, name, table[name]) for name in names]
    if split[0] & split[1]:
        raise DiaryError(
            f"In {path}, an item cannot be in both subscales (item {min(split[0] & split[1])}).",
            field="wording",
        )
    return Subscales(split[0], split[1])


def _item_set(path: Path, name: str, value: object) -> frozenset[int]:
    if isinstance(value, list) and value:
        numbers = [v for v in value if type(v) is int and 1 <= v <= ITEM_COUNT]
        if len(numbers) == len(value):
            return frozenset(numbers)
    raise DiaryError(
        f"In {path}, [subscales] {name} must be a list of item numbers 1-{ITEM_COUNT}.",
        field="wording",
    )


def _load_toml(path: Path, *, what: str) -> dict[str, object]:
    """The TOML document at ``path``, read as the site configuration is read
    (``profiles.site_file``: a regular file, bounded, never blocking, others may not
    write it); a refusal is a ``DiaryError`` naming ``what`` it is."""
    try:
        return read_site_file(path)
    except SiteFileError as exc:
        raise DiaryError(exc.sentence(f"the {what}"), field="wording") from exc
