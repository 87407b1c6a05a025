"""What the schema itself costs per inserted row on chdb: server-made row ids, bloom_filter skip
indexes, the ``timestamp`` default, the metrics' ``time_window_*`` defaults, each against the
schema as it is (``schema/clickhouse.sql``).

    python bench/bench_schema_costs.py [--rows 100000] [--repeat 5] [--md PATH]

Each variant is the schema's CREATE statements (``schema_statements``) with one string edit,
created in a fresh chdb directory under its own database name; an ``EmbeddedSink`` pointed at
that database inserts the rows the way the engine does (own fields, the shared columns as
query-parameter constants, read through ``file(path, JSONEachRow, structure)``). The rows are
those of ``bench_inserts.py`` (the harness's workload), one insert of ``--rows`` rows per kind.

Server CPU is this process's CPU time (chdb runs in-process, its threads included) spent inside
the chdb ``query`` call of the insert; rows/s is rows over that call's wall time. Variants are
alternated within each repeat (A B C ..., A B C ...) so machine load hits them alike; best
(least CPU, most rows/s) of ``--repeat``, and the median CPU to show the noise. Bytes on disk
are ``system.parts`` (active parts) ``bytes_on_disk / rows`` of the last repeat.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chdb import session as chdb_session

from automagik_telemetry.ring.layout import KINDS
from automagik_telemetry.sinks.clickhouse import schema_statements
from automagik_telemetry.sinks.embedded import EmbeddedSink
from bench.bench_inserts import NAMES, SUFFIXES, TABLES, own_rows

_CHDB: Any = chdb_session  # chdb ships no type information
#: chdb's directories: in memory when the system has it (less disk noise; sizes are the same)
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None

_ROW_ID = re.compile(
    r"\b(trace_id|span_id|metric_id|log_id) String DEFAULT lower\(hex\(randomString\(\d+\)\)\)"
)
_TIMESTAMP = re.compile(
    r"(?m)^(\s*)timestamp DateTime64\(9, 'UTC'\) DEFAULT "
    r"(fromUnixTimestamp64Nano\(toInt64\(timestamp_ns\), 'UTC'\))"
)
_WINDOW = re.compile(r"\b(time_window_start|time_window_end) DateTime DEFAULT now\(\)")


def _drop_index_lines(statement: str, types: tuple[str, ...]) -> str:
    """The statement without the ``INDEX`` lines of ``types``, the column list's commas kept
    right (the last entry before ``)`` has none)."""
    lines = [
        line
        for line in statement.splitlines()
        if not (line.lstrip().startswith("INDEX ") and any(f"TYPE {t}" in line for t in types))
    ]
    for i in range(len(lines) - 1):
        if lines[i + 1].strip().startswith(")") and lines[i].rstrip().endswith(","):
            lines[i] = lines[i].rstrip()[:-1]
    return "\n".join(lines)


def _ids_empty(s: str) -> str:
    return _ROW_ID.sub(r"\1 String DEFAULT ''", s)


def _no_bloom(s: str) -> str:
    return _drop_index_lines(s, ("bloom_filter",))


def _no_bloom_tokenbf(s: str) -> str:
    return _drop_index_lines(s, ("bloom_filter", "tokenbf_v1"))


def _ts_materialized(s: str) -> str:
    return _TIMESTAMP.sub(r"\1timestamp DateTime64(9, 'UTC') MATERIALIZED \2", s)


def _ts_now64(s: str) -> str:
    return _TIMESTAMP.sub(r"\1timestamp DateTime64(9, 'UTC') DEFAULT now64(9)", s)


def _window_plain(s: str) -> str:
    return _WINDOW.sub(r"\1 DateTime", s)


def _same(s: str) -> str:
    return s


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    edit: Callable[[str], str]
    #: the tables (of TABLES) the edit must change; the others are measured as they are
    changes: tuple[str, ...] = ()


VARIANTS = (
    Variant("base", "schema as it is", _same),
    Variant("ids", "row ids DEFAULT ''", _ids_empty, TABLES),
    Variant("nobloom", "no bloom_filter indexes", _no_bloom, TABLES),
    Variant("noskip", "no bloom_filter nor tokenbf_v1", _no_bloom_tokenbf, TABLES),
    Variant("tsmat", "timestamp MATERIALIZED", _ts_materialized, TABLES),
    Variant("tsnow", "timestamp DEFAULT now64(9)", _ts_now64, TABLES),
    Variant("window", "time_window_* no DEFAULT now()", _window_plain, ("metrics",)),
)


def variant_statements(variant: Variant, database: str) -> list[str]:
    """The schema's statements with the variant's edit; fails if an edit did not apply."""
    out = []
    for statement in schema_statements(database):
        edited = variant.edit(statement)
        table = next((t for t in TABLES if f"TABLE IF NOT EXISTS {database}.{t}" in statement), "")
        if table in variant.changes:
            assert edited != statement, (variant.key, table)
        out.append(edited)
    return out


class TimedSession:
    """A chdb session whose ``query`` calls add their CPU and wall time to ``cpu``/``wall``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.cpu = 0.0
        self.wall = 0.0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return self.inner.query(*args, **kwargs)
        finally:
            self.cpu += time.process_time() - cpu
            self.wall += time.perf_counter() - wall

    def close(self) -> None:
        self.inner.close()


@dataclass
class Result:
    cpu_us: list[float] = field(default_factory=list)  # per repeat
    rows_s: list[float] = field(default_factory=list)
    disk_bytes: float = 0.0  # per row, last repeat


def _query_text(session: Any, sql: str) -> str:
    return str(session.query(sql, "TabSeparated").bytes().decode())


def run_variant(
    variant: Variant,
    bodies: tuple[bytes, ...],
    r: int,
    results: dict[tuple[str, int], Result],
    settle: float,
) -> None:
    """One repeat of one variant: fresh directory, the variant's tables, one insert per kind."""
    path = tempfile.mkdtemp(prefix=f"bench-schema-{variant.key}-", dir=SCRATCH)
    database = f"v_{variant.key}"
    try:
        session: Any = _CHDB.Session(path)
        for statement in variant_statements(variant, database):
            session.query(statement)
        session.close()
        sink = EmbeddedSink(path, database, dict(zip(KINDS, TABLES, strict=True)), TABLES,
                            SUFFIXES)  # fmt: skip
        assert sink.discover().ok  # the variant's tables exist: its CREATEs change nothing
        timed = TimedSession(sink._session)
        sink._session = timed
        time.sleep(settle)  # the session's start-up work in chdb's threads is not counted
        for kind, body in enumerate(bodies):
            rows = body.count(b"\n")
            prepared = sink.prepare(kind, body, f"bench-{r}-{variant.key}-{kind}")
            timed.cpu = timed.wall = 0.0
            outcome = sink.send(prepared)
            assert outcome.ok, outcome.message
            result = results.setdefault((variant.key, kind), Result())
            result.cpu_us.append(timed.cpu / rows * 1e6)
            result.rows_s.append(rows / timed.wall)
        for kind, table in enumerate(TABLES):
            answer = _query_text(
                timed,
                "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE active AND "
                f"database = '{database}' AND table = '{table}'",
            )
            rows_text, size_text = answer.split()
            assert int(rows_text) == bodies[kind].count(b"\n"), (variant.key, table, answer)
            results[(variant.key, kind)].disk_bytes = int(size_text) / int(rows_text)
        sink.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)


#: the schema's default expressions alone, over ``numbers(N)`` (``ts`` stands for timestamp_ns)
EXPRESSIONS = (
    ("(nothing: the baseline)", "ts"),
    ("lower(hex(randomString(16)))", "lower(hex(randomString(16 + ts % 1)))"),
    ("lower(hex(randomString(8)))", "lower(hex(randomString(8 + ts % 1)))"),
    ("fromUnixTimestamp64Nano(toInt64(ts), 'UTC')", "fromUnixTimestamp64Nano(toInt64(ts), 'UTC')"),
    ("now64(9)", "now64(9)"),
    ("now()", "now()"),
)


def expressions(rows: int, repeat: int) -> list[tuple[str, float]]:
    """CPU µs per row of each default expression evaluated alone (best of ``repeat``, less the
    baseline's). The ``+ ts % 1`` keeps the random strings per row, as a column default is."""
    path = tempfile.mkdtemp(prefix="bench-schema-expr-", dir=SCRATCH)
    best = [1e9] * len(EXPRESSIONS)
    try:
        session: Any = _CHDB.Session(path)
        for _ in range(repeat):
            for i, (_, expr) in enumerate(EXPRESSIONS):
                sql = (
                    f"SELECT {expr} FROM (SELECT 1700000000000000000 + number AS ts "
                    f"FROM numbers({rows})) FORMAT Null"
                )
                cpu = time.process_time()
                session.query(sql)
                best[i] = min(best[i], (time.process_time() - cpu) / rows * 1e6)
        session.close()
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return [(name, b - best[0]) for (name, _), b in zip(EXPRESSIONS, best, strict=True)]


def table(results: dict[tuple[str, int], Result], rows: int, repeat: int, load: str) -> str:
    lines = [
        f"{rows:,} rows of each kind per insert (the harness's workload), best of {repeat}, "
        f"variants alternated within each repeat; {os.cpu_count()} cores, "
        f"`/proc/loadavg` at start and end: {load}",
        "",
        "| variant | rows | server CPU µs/row (best) | median | rows/s (best) "
        "| bytes on disk/row | Δ CPU µs/row vs schema | Δ CPU % | Δ bytes/row |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        for kind, name in enumerate(NAMES):
            if variant.changes and TABLES[kind] not in variant.changes:
                continue
            res, base = results[(variant.key, kind)], results[("base", kind)]
            cpu, base_cpu = min(res.cpu_us), min(base.cpu_us)
            delta = "" if variant.key == "base" else f"{cpu - base_cpu:+.2f}"
            pct = "" if variant.key == "base" else f"{(cpu - base_cpu) / base_cpu * 100:+.0f}%"
            dbytes = "" if variant.key == "base" else f"{res.disk_bytes - base.disk_bytes:+.1f}"
            lines.append(
                f"| {variant.label} | {name} | {cpu:.2f} | {statistics.median(res.cpu_us):.2f} "
                f"| {max(res.rows_s):,.0f} | {res.disk_bytes:.1f} | {delta} | {pct} | {dbytes} |"
            )
    return "\n".join(lines)


def expression_table(costs: list[tuple[str, float]], rows: int, repeat: int) -> str:
    lines = [
        f"Default expressions alone: `SELECT expr FROM numbers({rows:,}) FORMAT Null`, "
        f"best of {repeat}, CPU µs/row less the baseline's",
        "",
        "| expression | CPU µs/row |",
        "|---|---:|",
    ]
    lines += [f"| `{name}` | {cost:.3f} |" for name, cost in costs[1:]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of each kind")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--md", help="also write the table here (markdown)")
    parser.add_argument("--warmup", type=int, default=1, help="repeats run first, not counted")
    parser.add_argument("--settle", type=float, default=0.3, help="seconds between a session's "
                        "start and its first insert")  # fmt: skip
    parser.add_argument("--expr-rows", type=int, default=2_000_000)
    args = parser.parse_args(argv)

    load_start = Path("/proc/loadavg").read_text().strip()
    bodies = own_rows(args.rows)
    results: dict[tuple[str, int], Result] = {}
    for r in range(args.warmup + args.repeat):
        if r == args.warmup:
            results.clear()
        for variant in VARIANTS:
            run_variant(variant, bodies, r, results, args.settle)
        print(f"repeat {r + 1}/{args.warmup + args.repeat} done", file=sys.stderr)
    costs = expressions(args.expr_rows, args.repeat)
    load = f"`{load_start}` / `{Path('/proc/loadavg').read_text().strip()}`"
    text = (
        table(results, args.rows, args.repeat, load)
        + "\n\n"
        + expression_table(costs, args.expr_rows, args.repeat)
    )
    print(text)
    if args.md:
        Path(args.md).write_text(
            "# Schema costs per inserted row (chdb)\n\n"
            "`python bench/bench_schema_costs.py " + " ".join(argv or sys.argv[1:]) + "`\n\n"
            + text + "\n",
            encoding="utf-8",
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
