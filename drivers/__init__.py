"""The driver layer: the wire protocol (``drivers.protocol``) and the host's board client.

Owns: everything that knows the bytes on the serial link. Imports only the standard
library and pyserial. Does not own any safety decision: ``safety`` holds the client and
is the only code that may command light through it.

Import from the submodules (``drivers.client``, ``drivers.errors``, ``drivers.protocol``).
This file re-exports nothing on purpose: the simulator imports ``drivers.protocol`` and
must not pull in the client or pyserial through the package.
"""
