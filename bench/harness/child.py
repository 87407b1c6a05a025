"""A child process of the harness: ``python -m bench.harness.child``.

Reads its spec (JSON) on stdin, runs one phase of one system (``driver.run_child``), writes
progress lines on stderr and its result as one JSON line on stdout."""

from __future__ import annotations

import json
import sys

from . import workload
from .adapters import make_adapter
from .driver import run_child


def main() -> int:
    spec = json.loads(sys.stdin.read())
    result = run_child(spec, make_adapter, workload)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
