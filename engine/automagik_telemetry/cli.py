"""The ``automagik-telemetry`` command: demo, schema, config, and bench (the harness of a checkout,
imported only by that command)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Final

from . import __version__
from .config import options_markdown


def _demo(args: argparse.Namespace) -> int:
    """Ship events, metrics and logs into the embedded engine, then show what landed."""
    from .demo import run

    return run(args)


def _schema(args: argparse.Namespace) -> int:
    from .config import TelemetryConfig
    from .sinks.clickhouse import schema_statements

    config = TelemetryConfig(project_name="schema", version=__version__, backend="clickhouse")
    statements = schema_statements(
        config.clickhouse_database,
        config.clickhouse_table,
        config.clickhouse_metrics_table,
        config.clickhouse_logs_table,
        legacy=args.legacy,
    )
    if not args.apply:
        print(";\n\n".join(statements) + ";")
        return 0
    import urllib3

    from .sinks.clickhouse import MIN_SCHEMA_VERSION, auth_headers, server_message

    http = urllib3.PoolManager()
    headers = auth_headers(config.clickhouse_username, config.clickhouse_password)
    endpoint = config.clickhouse_endpoint
    version = http.request("POST", f"{endpoint}/", body=b"SELECT version()", headers=headers)
    if version.status != 200:
        print(f"{endpoint}: {server_message(version.data)}", file=sys.stderr)
        return 1
    text = version.data.decode().strip()
    major = tuple(int(p) for p in text.split(".")[:2])
    if not args.legacy and major < MIN_SCHEMA_VERSION:
        need = ".".join(map(str, MIN_SCHEMA_VERSION))
        print(f"ClickHouse {text} at {endpoint} is too old for the schema (Map, DateTime64): it "
              f"needs {need} or newer; for this server use --legacy", file=sys.stderr)  # fmt: skip
        return 1
    for statement in statements:
        answer = http.request("POST", f"{endpoint}/", body=statement.encode(), headers=headers)
        if answer.status != 200:
            print(f"{endpoint}: {server_message(answer.data)}", file=sys.stderr)
            return 1
    print(f"applied {len(statements)} statements to ClickHouse {text} at {endpoint}")
    return 0


def _config(args: argparse.Namespace) -> int:
    print(options_markdown())
    return 0


HARNESS_MISSING: Final = """\
automagik-telemetry bench: the benchmark harness is not installed with this package.
It is not part of the package: it is bench/harness/ of a checkout of the automagik-telemetry
repository, found when the package is installed from that checkout in editable mode:

    cd automagik-telemetry            # a checkout
    pip install -e '.[bench]'         # the package, editable, and the harness's pinned peers
    automagik-telemetry bench
"""


def load_harness() -> ModuleType | None:
    """The benchmark harness, ``bench.harness`` of the checkout this package was imported from
    (an editable install, or ``engine/`` on ``PYTHONPATH``), with that checkout's root put on
    ``sys.path``; None when there is no such checkout (an installed wheel carries no harness)."""
    checkout = Path(__file__).resolve().parents[2]  # <checkout>/engine/automagik_telemetry/
    if not (checkout / "bench" / "harness" / "__init__.py").is_file():
        return None
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    return importlib.import_module("bench.harness")


def _bench(argv: Sequence[str]) -> int:
    harness = load_harness()
    if harness is None:
        print(HARNESS_MISSING, end="", file=sys.stderr)
        return 2
    code: int = harness.main(argv)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="automagik-telemetry")
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="ship a batch job's telemetry into the embedded engine")
    demo.add_argument("--events", type=int, default=1_000_000)
    demo.add_argument("--path", default=os.environ.get("AUTOMAGIK_TELEMETRY_EMBEDDED_PATH"))
    demo.add_argument("--ring-size", type=int, default=0, help="ring bytes (default 64 MiB)")
    demo.add_argument(
        "--no-peer", action="store_true", help="skip the hand-written chdb insert of the same rows"
    )
    demo.set_defaults(run=_demo)
    schema = commands.add_parser(
        "schema", help="print the ClickHouse schema, or --apply it to the configured server"
    )
    schema.add_argument("--apply", action="store_true")
    schema.add_argument("--legacy", action="store_true", help="tables for ClickHouse < 22.8")
    schema.set_defaults(run=_schema)
    config = commands.add_parser("config", help="print the table of options (Markdown)")
    config.set_defaults(run=_config)
    commands.add_parser(
        "bench",
        help="measure the backends and the peers on this machine and these servers (the "
        "harness of a checkout: bench/harness; see 'bench --help')",
        add_help=False,
    )
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:  # the harness parses its own arguments
        return _bench(arguments[1:])
    args = parser.parse_args(arguments)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
