"""``python -m hil.bench [protocol|ledger|profiles|report]``: run one benchmark, or the full report.

Owns: the dispatch only. Each benchmark module has ``main(argv) -> int``.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "protocol": "hil.bench.protocol",
    "ledger": "hil.bench.ledger",
    "profiles": "hil.bench.profiles",
    "report": "hil.bench.report",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    name = args.pop(0) if args and not args[0].startswith("-") else "report"
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(BENCHMARKS[name])
        result: int = module.main(args)
    except KeyboardInterrupt:  # each benchmark closes its children on the way out
        print("python -m hil.bench: interrupted; nothing was written", file=sys.stderr)
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
