"""Traceability: every hazard in docs/hazards.md points at tests that exist.

Parses the Markdown table; for each hazard row (ID ``H<n>``), every `path::name` (or
`path::Class::name`) in the tests column must name a file in the repository whose
syntax tree (``ast``, not an import) defines that test: a ``test_*`` function, a
``Test*`` class, a method of it, or a ``Test*`` name assigned at module level (how a
hypothesis ``RuleBasedStateMachine.TestCase`` is exposed). A row without a test fails,
and the hazards the issue requires must each appear.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HAZARDS = ROOT / "docs" / "hazards.md"
ROW = re.compile(r"^\|\s*(H\d+)\s*\|")
REF = re.compile(r"`([\w./-]+\.py)::([\w:]+)`")
CONTROL_KINDS = ("SW:", "FW:", "HW:")
# The hazards the risk file must cover, each as words that must appear in some row.
REQUIRED = {
    "over-temperature": "over-temperature",
    "sensor fault": "sensor",
    "blanket or high ambient": "blanket",
    "stuck output": "stays on when commanded off",
    "timer": "timer",
    "double session": "second session",
    "reboot resetting the budget": "reboot",
    "clock faults": "clock fault",
    "eye exposure without contact": "eye exposure",
    "underdose": "underdose",
    "tampering": "tampered",
    "expiry": "expired",
    "typos": "typo",
    "data loss": "data loss",
    "lost link": "link fails",
    "host hang": "host hangs",
    "unauthorized socket control": "unauthorized control",
}


@dataclass(frozen=True)
class Hazard:
    id: str
    cells: list[str]
    refs: list[tuple[str, str]]


def parse_hazards(text: str) -> list[Hazard]:
    rows = []
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append(Hazard(match.group(1), cells, REF.findall(cells[-1])))
    return rows


@cache
def _defined(path: Path) -> frozenset[str]:
    """Every test name defined in ``path``: functions, classes, Class::method, assigns."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            )
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


def missing_refs(hazards: list[Hazard], root: Path) -> list[str]:
    problems = []
    for hazard in hazards:
        if not hazard.refs:
            problems.append(f"{hazard.id}: names no test")
        for file, name in hazard.refs:
            path = root / file
            leaf = name.rsplit("::", 1)[-1]
            if not path.is_file():
                problems.append(f"{hazard.id}: {file} does not exist")
            elif not path.name.startswith("test_"):
                problems.append(f"{hazard.id}: {file} is not a test file")
            elif name not in _defined(path):
                problems.append(f"{hazard.id}: {file}::{name} does not exist")
            elif not leaf.startswith(("test_", "Test")):
                problems.append(f"{hazard.id}: {file}::{name} is not a test")
    return problems


@pytest.fixture(scope="module")
def hazards() -> list[Hazard]:
    return parse_hazards(HAZARDS.read_text(encoding="utf-8"))


def test_every_named_test_exists(hazards: list[Hazard]) -> None:
    assert missing_refs(hazards, ROOT) == []


def test_rows_are_complete_and_ids_unique(hazards: list[Hazard]) -> None:
    assert len(hazards) >= len(REQUIRED) - 2  # some rows cover two required topics
    assert len({h.id for h in hazards}) == len(hazards)
    for hazard in hazards:
        assert len(hazard.cells) == 5, f"{hazard.id}: ID, hazard, cause, control, tests"
        assert all(hazard.cells), f"{hazard.id} has an empty cell"
        assert any(kind in hazard.cells[3] for kind in CONTROL_KINDS), hazard.id


@pytest.mark.parametrize("topic", sorted(REQUIRED))
def test_required_hazard_is_covered(hazards: list[Hazard], topic: str) -> None:
    words = REQUIRED[topic].lower()
    assert any(words in " ".join(h.cells[1:3]).lower() for h in hazards), topic


# ---------------------------------------------------------------- the checker can fail

_BAD = """\
| ID | Hazard | Cause | Control | Verifying tests |
|---|---|---|---|---|
| H01 | a | b | SW: c | `tests/reliability/test_hazards_trace.py::test_no_such_test` |
| H02 | a | b | SW: c | none yet |
| H03 | a | b | SW: c | `tests/nowhere/test_gone.py::test_x` |
| H04 | a | b | SW: c | `tests/reliability/test_hazards_trace.py::parse_hazards` |
| H05 | a | b | SW: c | `docs/hazards.md::test_x` |
| H06 | a | b | SW: c | `tests/reliability/test_hazards_trace.py::test_every_named_test_exists` |
"""


def test_the_checker_finds_each_kind_of_bad_reference() -> None:
    problems = missing_refs(parse_hazards(_BAD), ROOT)
    assert [p.split(":")[0] for p in problems] == ["H01", "H02", "H03", "H04", "H05"]
