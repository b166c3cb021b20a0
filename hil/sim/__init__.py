"""The simulated LED driver board: firmware model, physics, fault injection, two runners.

Owns nothing itself. ``board.SimBoard`` is the model; ``inprocess`` runs it on a
virtual clock; ``python -m hil.sim`` (``pty_runner``) runs it on a pseudo-terminal.
Imports only the standard library, ``drivers.protocol`` and ``hil.rigs.clock``.
"""
