"""Engineers' tools around the rigs: long runs and looking at runs, never pass/fail tests.

``soak`` (many sessions, virtual or real time), ``fuzz`` (long fuzz runs),
``trace`` and ``plot`` (a run as CSV, and as a picture) and ``stall_monitor`` (this
machine's scheduling stalls during a real-time run). Each is ``python -m hil.tools.NAME``.
"""
