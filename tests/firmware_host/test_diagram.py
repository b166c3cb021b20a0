"""The committed state diagram is the one the machine definition generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from firmware_host.diagram import mermaid, page
from firmware_host.machine import TRANSITIONS, State, TransitionSpec, Trigger

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-diagram.md"


def test_committed_diagram_matches_the_machine() -> None:
    assert DOC.read_text(encoding="utf-8") == page(), (
        "docs/state-diagram.md is stale: run "
        "`python -m firmware_host.diagram > docs/state-diagram.md`"
    )


def test_every_transition_appears_as_an_arrow() -> None:
    text = mermaid()
    for spec in TRANSITIONS:
        dest = spec.source if spec.dest is None else spec.dest
        arrow = next(
            line
            for line in text.splitlines()
            if line.strip().startswith(f"{spec.source} --> {dest} :")
        )
        assert spec.trigger.value in arrow


def test_a_changed_table_changes_the_diagram() -> None:
    extra = (*TRANSITIONS, TransitionSpec(Trigger.START, State.IDLE, State.TREATING))
    assert mermaid(extra) != mermaid()
    assert "idle --> treating : start" in mermaid(extra)


@pytest.mark.slow
def test_module_prints_the_page() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "firmware_host.diagram"],
        capture_output=True,
        text=True,
        check=True,
        cwd=DOC.parents[1],
    ).stdout
    assert out == page()
