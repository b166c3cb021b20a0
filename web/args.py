"""``nirpad web`` and ``nirpad web passwd`` on the command line: argparse only, no imports.

Owns: the options (``--listen``, ``--port``, ``--host-name``, ``--tls-cert``,
``--tls-key``, ``--site-config``, ``--tz``) and their help. What they do is ``web.serve``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Final

DEFAULT_LISTEN: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8480


def register(
    sub: Any, common: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]
) -> None:
    web = sub.add_parser(
        "web",
        parents=[common],
        help="serve the caregiver's page (127.0.0.1 by default; nirpad web --help)",
        description=(
            "Serve the caregiver's web page. On 127.0.0.1 a login is needed only once a "
            "password is set (nirpad web passwd; set one on a machine with other users); "
            "any other address needs --tls-cert, --tls-key and a password."
        ),
    )
    web.add_argument("action", nargs="?", choices=("passwd",), help="passwd: set the password")
    web.add_argument("--listen", metavar="ADDR", default=DEFAULT_LISTEN, help="default 127.0.0.1")
    web.add_argument("--port", metavar="N", type=int, default=DEFAULT_PORT, help="default 8480")
    web.add_argument(
        "--host-name", metavar="NAME", action="append",
        help="a name the browser uses for the pad (repeatable; off loopback the page answers "
        "only to these and the listen address)",
    )  # fmt: skip
    web.add_argument("--tls-cert", metavar="FILE", help="TLS certificate (PEM)")
    web.add_argument("--tls-key", metavar="FILE", help="TLS private key (PEM)")
    web.add_argument("--site-config", metavar="FILE", help="site limits and trusted keys")
    web.add_argument("--tz", metavar="ZONE", help="the patient's time zone (default: $TZ, system)")
    web.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING"))
    web.set_defaults(func=handler)
