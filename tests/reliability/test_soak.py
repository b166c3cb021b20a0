"""The bounded CI version of the virtual soak (``python -m hil.soak``).

Back-to-back sessions on one ledger and one virtual clock, with random simulator faults,
power cuts and contact losses between them; ``hil.invariants`` judges every tick and
the ledger. The long run (1,000 sessions) and the real-time run are documented in
docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

from hil.soak import main, run_virtual


def _args(tmp_path: Path, sessions: int, seed: int) -> object:
    import argparse

    return argparse.Namespace(
        sessions=sessions, seed=seed, session_min=1, fault_rate=0.4, state_dir=str(tmp_path)
    )


def test_back_to_back_sessions_with_faults_keep_every_invariant(tmp_path: Path) -> None:
    report = run_virtual(_args(tmp_path, 12, 3))  # type: ignore[arg-type]
    assert report["findings"] == [] and report["findings_count"] == 0
    assert report["missed_lease_renewals"] == 0
    assert report["sessions_in_ledger"] == 12, report
    assert report["outcomes"].get("completed", 0) >= 6, report  # faults do not end the course
    assert report["ledger_bytes"] > 0


def test_the_command_line_reports_and_exits_zero(tmp_path: Path, capsys: object) -> None:
    argv = ["--sessions", "2", "--session-min", "1", "--fault-rate", "0"]
    assert main([*argv, "--state-dir", str(tmp_path)]) == 0
