"""The rigs: what runs the nirpad stack around a simulated (or real) board.

``clock`` (the virtual and the wall clock), the one in-process rig ``harness`` (the whole
stack over the in-process simulator on one virtual clock, with the host's lives in
``host``), ``sim_child`` and ``controller_child`` (the one way ``hil`` and the tests
start ``python -m hil.sim`` and ``nirpad run`` as child processes), ``process_rig``
(the simulator and ``nirpad run`` as two real processes), ``targets`` (the simulator,
or a real board only when asked) and ``locking`` (one run per real board). Nothing here
judges a run or decides anything about safety.
"""
