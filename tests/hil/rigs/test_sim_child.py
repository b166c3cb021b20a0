"""hil.rigs.sim_child: the simulator child starts as the product starts it, and answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.rigs.sim_child import SimChild, sim_state

STRAY_READY = 'print(\'{"event": "ready", "port": "/stray", "t": 0}\', flush=True)\n'


def _stray_hil_package(folder: Path) -> None:
    """A ``hil.sim`` in the current directory that would win without ``python -P``."""
    sim = folder / "hil" / "sim"
    sim.mkdir(parents=True)
    (folder / "hil" / "__init__.py").write_text("")
    (sim / "__init__.py").write_text("")
    (sim / "__main__.py").write_text(STRAY_READY + "input()\n")


def test_a_stray_hil_in_the_current_directory_cannot_stand_in_for_the_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stray_hil_package(tmp_path)
    monkeypatch.chdir(tmp_path)
    sim = SimChild("--seed", "4", log_path=tmp_path / "sim.log")
    try:
        assert sim.port.startswith("/dev/pts/"), sim.ready
        assert sim.ready["seed"] == 4
        truth = sim_state(sim)
        assert truth["seed"] == 4 and truth["outputs_on"] is False
    finally:
        assert sim.close() == 0  # it obeyed the quit command
