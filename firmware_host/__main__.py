"""``python -m firmware_host``: the same as the ``nirpad`` console script."""

from __future__ import annotations

import sys

from firmware_host.console import run

if __name__ == "__main__":
    sys.exit(run())
