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
from typing import TYPE_CHECKING, Final

from . import __version__
from .config import options_markdown

if TYPE_CHECKING:
    from .config import TelemetryConfig


def _demo(args: argparse.Namespace) -> int:
    """Ship events, metrics and logs into the embedded engine, then show what landed."""
    from .demo import run

    return run(args)


def _schema(args: argparse.Namespace) -> int:
    from .config import TelemetryConfig
    from .sinks.clickhouse import schema_statements

    config = TelemetryConfig(project_name="schema", version=__version__, backend="clickhouse")
    if args.check:
        return _schema_check(config)
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

    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=60.0))
    headers = auth_headers(config.clickhouse_username, config.clickhouse_password)
    endpoint = config.clickhouse_endpoint
    try:
        version = http.request("POST", f"{endpoint}/", body=b"SELECT version()", headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        print(f"cannot reach ClickHouse at {endpoint}: {exc}. Fix: start it (cd infra && make "
              "start) or set AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT", file=sys.stderr)  # fmt: skip
        return 1
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


# --- doctor, spool, schema --check (the operator's side) ------------------------------------


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    """One ``--option-name`` per option of the table (over the environment and defaults)."""
    from .config import OPTIONS

    group = parser.add_argument_group("configuration (else AUTOMAGIK_TELEMETRY_*, else defaults)")
    for option in OPTIONS:
        flag = "--project-version" if option.name == "version" else f"--{option.name}"
        group.add_argument(flag.replace("_", "-"), dest=f"opt_{option.name}", metavar="VALUE",
                           default=None, help=option.help.replace("%", "%%"))  # fmt: skip


def _config_from(args: argparse.Namespace) -> TelemetryConfig:
    from .config import OPTIONS, TelemetryConfig

    given = {o.name: getattr(args, f"opt_{o.name}") for o in OPTIONS}
    options = {k: v for k, v in given.items() if v is not None}
    options.setdefault("project_name", "automagik-telemetry-cli")
    options.setdefault("version", __version__)
    config = TelemetryConfig(**options)
    for name in options:  # shown as given on the command line, or as this command's default
        if config.sources.get(name) == "code":
            config.sources[name] = "argument" if given.get(name) is not None else "command"
    return config


def _doctor(args: argparse.Namespace) -> int:
    import json

    from .config import ConfigError
    from .doctor import run

    try:
        config = _config_from(args)
    except ConfigError as exc:
        print(f"✘ configuration: {exc}", file=sys.stderr)
        return 2
    report = run(config, timeout=max(10.0, 2 * config.timeout))
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.text())
    return 0 if report.ok else 1


def _spool(args: argparse.Namespace) -> int:
    import json

    from . import spool_admin
    from .config import ConfigError

    try:
        config = _config_from(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    directory = spool_admin.destination_directory(config)
    if not directory:
        print("no spool: spool_max_bytes is 0", file=sys.stderr)
        return 2
    if args.spool_command == "list":
        directories = spool_admin.all_directories(config) if args.all else [directory]
        found = [spool_admin.inventory(d) for d in directories]
        if args.json:
            print(json.dumps([f.as_dict() for f in found], indent=2))
            return 0
        for f in found:
            print(f.directory)
            for label, part in (("waiting", f.waiting), ("set aside (rejected/)", f.rejected),
                                ("corrupt (corrupt/)", f.corrupt)):  # fmt: skip
                age = "" if part.oldest_age_s is None else f", oldest {part.oldest_age_s:.0f} s"
                rows = "" if label.startswith("corrupt") else f", {part.rows} rows"
                claimed = f", {part.claimed} being sent" if part.claimed else ""
                print(f"  {label:<22} {part.batches} batches{rows}, {part.bytes} bytes"
                      f"{age}{claimed}")  # fmt: skip
        return 0
    if args.spool_command == "replay":
        spooled = spool_admin.inventory(directory)
        part = spooled.rejected if args.rejected else spooled.waiting
        unnamed = args.opt_project_name is None or args.opt_version is None
        if part.without_origin and unnamed:
            print(f"spool replay: {part.without_origin} of the {part.batches} batches were "
                  "written before spool files kept the columns a client adds to each row "
                  "(service, project, version, host, session): say whose rows they are with "
                  "--project-name APP --project-version VERSION", file=sys.stderr)  # fmt: skip
            return 2
        result = spool_admin.replay(config, rejected=args.rejected, directory=directory)
        if args.json:
            print(json.dumps(result.as_dict(), indent=2))
        else:
            print(f"replayed {result.batches} batches ({result.rows} rows) from "
                  f"{directory}{'/rejected' if args.rejected else ''}")  # fmt: skip
            if result.set_aside_batches:
                print(f"{result.set_aside_batches} batches refused for what they hold, kept in "
                      f"{directory}/rejected")  # fmt: skip
            for message in result.messages[:5]:
                print(f"  {message}")
            if result.error:
                print(f"stopped, {result.left_batches} batches left: {result.error}",
                      file=sys.stderr)  # fmt: skip
        return 1 if result.error or result.set_aside_batches else 0
    chosen = "rejected" if args.rejected else "corrupt" if args.corrupt else "waiting"
    removed = spool_admin.discard(directory, chosen)
    if args.json:
        print(json.dumps({"part": chosen, "directory": directory, "batches": removed.batches,
                          "rows": removed.rows, "bytes": removed.bytes}))  # fmt: skip
    else:
        rows = "" if chosen == "corrupt" else f" ({removed.rows} rows)"
        print(f"discarded {removed.batches} {chosen} batches{rows}, {removed.bytes} bytes, "
              f"from {directory}")  # fmt: skip
    return 0


def _schema_check(config: TelemetryConfig) -> int:
    """Compare the live tables with the columns the engine writes."""
    import urllib3

    from .doctor import _legacy_flag, check_tables
    from .schema_check import add_column_statements
    from .sinks.clickhouse import auth_headers, server_message

    endpoint = config.clickhouse_endpoint.rstrip("/")
    headers = auth_headers(config.clickhouse_username, config.clickhouse_password)
    http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=config.timeout))

    def query(sql: str) -> tuple[bool, str]:
        answer = http.request("POST", f"{endpoint}/", body=sql.encode(), headers=headers)
        if answer.status == 200:
            return True, answer.data.decode()
        return False, server_message(answer.data)

    try:
        ok, version = query("SELECT version()")
        if not ok:
            print(f"{endpoint}: {version}", file=sys.stderr)
            return 1
        tables = check_tables(config, query, version)
    except (urllib3.exceptions.HTTPError, RuntimeError) as exc:
        print(f"{endpoint}: {exc}", file=sys.stderr)
        return 1
    legacy = _legacy_flag(version) != ""
    problems = 0
    for kind, (table, missing_table, missing) in enumerate(tables):
        name = f"{config.clickhouse_database}.{table}"
        if missing_table:
            problems += 1
            print(f"✘ {name}: missing; fix: automagik-telemetry schema --apply"
                  f"{' --legacy' if legacy else ''}")  # fmt: skip
        elif missing:
            problems += 1
            print(f"✘ {name}: lacks {', '.join(missing)}; fix:")
            for statement in add_column_statements(name, kind, missing, legacy=legacy):
                print(f"    {statement};")
        else:
            print(f"✔ {name}: every column the engine writes")
    return 1 if problems else 0


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
    schema.add_argument(
        "--check", action="store_true", help="compare the live tables with what the engine writes"
    )
    schema.set_defaults(run=_schema)
    doctor = commands.add_parser("doctor", help="run the troubleshooting checklist")
    doctor.add_argument("--json", action="store_true", help="the report as JSON")
    _add_config_options(doctor)
    doctor.set_defaults(run=_doctor)
    spool = commands.add_parser("spool", help="the spool by hand: list, replay, discard")
    spool_commands = spool.add_subparsers(dest="spool_command", required=True)
    listing = spool_commands.add_parser("list", help="batches waiting, set aside and corrupt")
    listing.add_argument("--all", action="store_true", help="every destination's spool")
    replay = spool_commands.add_parser("replay", help="send the waiting batches now")
    replay.add_argument("--rejected", action="store_true", help="the set-aside ones instead")
    discard = spool_commands.add_parser("discard", help="delete batches of one part")
    which = discard.add_mutually_exclusive_group(required=True)
    which.add_argument("--rejected", action="store_true", help="the set-aside batches")
    which.add_argument("--corrupt", action="store_true", help="the unreadable files")
    which.add_argument("--waiting", action="store_true", help="the batches waiting")
    for command in (listing, replay, discard):
        command.add_argument("--json", action="store_true")
        _add_config_options(command)
        command.set_defaults(run=_spool)
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
