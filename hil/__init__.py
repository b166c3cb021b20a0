"""Hardware-in-the-loop: the simulated board and everything that runs nirpad against it.

Never imported by product code. Its parts, one folder each:

* ``sim``: the simulated LED driver board (firmware, physics, fault injection), in
  process on a virtual clock or as ``python -m hil.sim`` on a pseudo-terminal;
* ``rigs``: clocks, the in-process rigs, the simulator as a child process, board locking;
* ``suite``: the HIL test suite (``python -m pytest hil/suite``) and its judges;
* ``tools``: long runs and looking at runs (soak, fuzz, trace, plot);
* ``bench``: the performance report (``python -m hil.bench``).

The layout and the rules are in docs/hil.md.
"""
