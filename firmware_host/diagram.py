"""The state diagram, generated from the machine's own transition table.

Owns: rendering ``firmware_host.machine.TRANSITIONS`` as a Mermaid ``stateDiagram-v2``
inside the Markdown page docs/state-diagram.md. Does not own the table itself.

Regenerate with ``python -m firmware_host.diagram > docs/state-diagram.md``; a test
fails when the committed page differs from what this module prints.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from firmware_host.machine import TRANSITIONS, State, TransitionSpec

__all__ = ["mermaid", "page"]

_HEADER = """\
# State diagram of the controller

Generated from `firmware_host/machine.py` by `python -m firmware_host.diagram`; do not
edit by hand (`tests/firmware_host/test_diagram.py` fails when this page is stale).
A label is `trigger [guard]`; `[else]` is taken when the guard of the row before fails.
Several triggers on one arrow are separated by `/`.
An arrow from a state to itself is an internal transition (no exit or entry actions).
A trigger not shown for a state is refused with a reason, never ignored.
"""


def _label(spec: TransitionSpec, guarded_before: bool) -> str:
    guard = spec.guard or ("else" if guarded_before else None)
    return spec.trigger.value if guard is None else f"{spec.trigger.value} [{guard}]"


def mermaid(transitions: Iterable[TransitionSpec] = TRANSITIONS) -> str:
    """The ``stateDiagram-v2`` text, one arrow per (source, destination)."""
    arrows: dict[tuple[State, State], list[str]] = {}
    guarded: set[tuple[State, str]] = set()
    for spec in transitions:
        dest = spec.source if spec.dest is None else spec.dest
        label = _label(spec, (spec.source, spec.trigger.value) in guarded)
        if spec.guard:
            guarded.add((spec.source, spec.trigger.value))
        labels = arrows.setdefault((spec.source, dest), [])
        if label not in labels:
            labels.append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {State.BOOTING.value}"]
    lines += [
        f"    {source.value} --> {dest.value} : {' / '.join(labels)}"
        for (source, dest), labels in arrows.items()
    ]
    return "\n".join(lines) + "\n"


def page() -> str:
    """The whole Markdown page: header and the fenced Mermaid block."""
    return f"{_HEADER}\n```mermaid\n{mermaid()}```\n"


def main() -> None:
    sys.stdout.write(page())


if __name__ == "__main__":
    main()
