"""The HIL suite: scenarios that run the whole stack against the simulated or a real board.

Its ``conftest`` picks the target (``--board-url``), ``test_*`` are the scenarios and the
fault matrix of docs/hil.md, and ``invariants`` judges a ``hil.rigs.harness.InProcessRig`` run
against the simulator's truth and the ledger. Run it with ``python -m pytest hil/suite``.
"""
