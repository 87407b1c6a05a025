"""Server cost of one insert path against the other: CPU µs per row and wire bytes per row for
events, metrics and logs, on chdb (the embedded engine: a current ClickHouse) and on Debian's
clickhouse-server 18.16 (which has no ``input()``: the old path only), plus rows/s into the
embedded engine against a hand-written chdb ``INSERT ... FORMAT JSONEachRow`` of the full rows.

    python bench/bench_inserts.py [--rows 100000] [--repeat 3] [--md bench/results/inserts.md]

* old path: every row completed with the shared columns (``FORMAT JSONEachRow``);
* new path: the rows' own fields, the shared columns once as query-parameter constants
  (``INSERT ... SELECT ... FROM file()/input()``, see ``sinks/insert_plan.py``).

The rows are the harness's workload (``bench/harness/workload.py``) encoded by the client's
row encoder, with the shared columns of a detected resource. chdb runs in this process: its
CPU is this process's CPU time during the insert call (chdb's threads included). The 18.16
server's CPU is read from ``/proc/<pid>/stat`` around each insert. Best of ``--repeat``, each
repeat into fresh tables. The embedded rows/s compare the sink's insert (prepare + send, the
writer's whole work per batch) with the hand-written insert of the same full rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chdb import session as chdb_session

from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.resource import Resource
from automagik_telemetry.ring.layout import KINDS
from automagik_telemetry.rows.clickhouse import (
    ClickHouseRows,
    clickhouse_row_suffixes,
    complete_rows,
)
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.sinks.clickhouse import ClickHouseSink, schema_statements
from automagik_telemetry.sinks.embedded import EmbeddedSink
from automagik_telemetry.transport import HttpClient
from bench.harness.workload import EVENT, LOG, METRIC, Workload, operations

TABLES = ("traces", "metrics", "logs")
NAMES = ("events", "metrics", "logs")
METRIC_KINDS = (MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM)
SEVERITIES = (LogSeverity.DEBUG, LogSeverity.INFO, LogSeverity.WARN, LogSeverity.ERROR)
RESOURCE = Resource.detect("bench-inserts", "1.0.0", "namastex", "production")
SUFFIXES = clickhouse_row_suffixes(RESOURCE)


def own_rows(rows: int) -> tuple[bytes, bytes, bytes]:
    """``rows`` rows of each kind, from the harness's workload, as the ring holds them."""
    encoder = ClickHouseRows()
    out: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
    now = time.time_ns()
    offset = 0
    while min(len(k) for k in out) < rows:
        for i, (kind, name, value, level, attrs) in enumerate(
            operations(Workload(count=rows), offset=offset)
        ):
            t = now + offset + i
            if kind == EVENT and len(out[0]) < rows:
                out[0].append(bytes(encoder.span(t, name, attrs, None)))
            elif kind == METRIC and len(out[1]) < rows:
                out[1].append(bytes(encoder.metric(t, name, value, METRIC_KINDS[level], attrs)))
            elif kind == LOG and len(out[2]) < rows:
                out[2].append(bytes(encoder.log(t, name, SEVERITIES[level], attrs)))
        offset += rows
    return (b"".join(out[0]), b"".join(out[1]), b"".join(out[2]))


def _tables(path: str) -> None:
    session = chdb_session.Session(path)
    for statement in schema_statements():
        session.query(statement)
    session.close()


def chdb_path(
    bodies: tuple[bytes, ...], repeat: int, *, constants: bool
) -> list[tuple[float, float, float]]:
    """(CPU µs per row, wire bytes per row, rows/s) per kind, best of ``repeat``."""
    best = [(1e9, 0.0, 0.0)] * 3
    for r in range(repeat):
        path = tempfile.mkdtemp(prefix="bench-inserts-")
        sink = EmbeddedSink(path, "telemetry", dict(zip(KINDS, TABLES, strict=True)), TABLES,
                            SUFFIXES, constants=constants)  # fmt: skip
        assert sink.discover().ok
        for kind, body in enumerate(bodies):
            rows = body.count(b"\n")
            cpu, wall = time.process_time(), time.perf_counter()
            prepared = sink.prepare(kind, body, f"bench-{r}-{kind}")
            outcome = sink.send(prepared)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            assert outcome.ok, outcome.message
            if cpu / rows * 1e6 < best[kind][0]:
                best[kind] = (cpu / rows * 1e6, prepared.raw_bytes / rows, rows / wall)
        counts = [
            int(sink._session.query(f"SELECT count() FROM telemetry.{t}", "CSV").bytes())
            for t in TABLES
        ]
        assert counts == [b.count(b"\n") for b in bodies], counts
        sink.close()
    return best


def hand_written(bodies: tuple[bytes, ...], repeat: int) -> list[float]:
    """Rows/s of plain chdb ``INSERT ... FORMAT JSONEachRow`` of the full rows (made before)."""
    full = [complete_rows(b, SUFFIXES[k]).decode() for k, b in enumerate(bodies)]
    best = [0.0] * 3
    for _ in range(repeat):
        path = tempfile.mkdtemp(prefix="bench-inserts-peer-")
        _tables(path)
        session = chdb_session.Session(path)
        for kind, text in enumerate(full):
            wall = time.perf_counter()
            session.query(f"INSERT INTO telemetry.{TABLES[kind]} FORMAT JSONEachRow\n{text}")
            wall = time.perf_counter() - wall
            best[kind] = max(best[kind], bodies[kind].count(b"\n") / wall)
        session.close()
    return best


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_18_16(bodies: tuple[bytes, ...], repeat: int) -> list[tuple[float, float]]:
    """(server CPU µs per row, wire bytes per row) per kind on Debian's 18.16, old path."""
    best = [(1e9, 0.0)] * 3
    with LocalClickHouse(username="bench") as server:
        for r in range(repeat):
            database = f"bench_{r}"
            for statement in schema_statements(database, legacy=True):
                server.query(statement)
            sink = ClickHouseSink(
                endpoint=server.url, database=database,
                tables=dict(zip(KINDS, TABLES, strict=True)), username=server.username,
                password=server.password, http=HttpClient(60.0, pool_size=2),
                compression="none", row_suffixes=SUFFIXES,
            )  # fmt: skip
            assert sink.discover().ok and not sink.facts.has_input
            for kind, body in enumerate(bodies):
                rows = body.count(b"\n")
                prepared = sink.prepare(kind, body, f"bench-{r}-{kind}")
                cpu = _server_cpu(server.pid)
                outcome = sink.send(prepared)
                cpu = _server_cpu(server.pid) - cpu
                assert outcome.ok, outcome.message
                if cpu / rows * 1e6 < best[kind][0]:
                    best[kind] = (cpu / rows * 1e6, len(prepared.wire) / rows)
            sink.close()
            for t, body in zip(TABLES, bodies, strict=True):
                stored = int(server.query(f"SELECT count() FROM {database}.{t}"))
                assert stored == body.count(b"\n"), (t, stored)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of each kind")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--md", help="also write the table here (markdown)")
    parser.add_argument("--no-server", action="store_true", help="skip Debian's 18.16")
    args = parser.parse_args(argv)

    bodies = own_rows(args.rows)
    old = chdb_path(bodies, args.repeat, constants=False)
    new = chdb_path(bodies, args.repeat, constants=True)
    peer = hand_written(bodies, args.repeat)
    legacy = None if args.no_server else server_18_16(bodies, args.repeat)

    lines = [
        f"{args.rows:,} rows of each kind (the harness's workload), best of {args.repeat}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        "",
        "| rows | engine | path | server CPU µs/row | wire bytes/row | rows/s |",
        "|---|---|---|---:|---:|---:|",
    ]
    for kind, name in enumerate(NAMES):
        lines.append(f"| {name} | chdb | old: full rows | {old[kind][0]:.2f} | "
                     f"{old[kind][1]:.0f} | {old[kind][2]:,.0f} |")  # fmt: skip
        lines.append(f"| {name} | chdb | new: own fields + constants | {new[kind][0]:.2f} | "
                     f"{new[kind][1]:.0f} | {new[kind][2]:,.0f} |")  # fmt: skip
        if legacy is not None:
            lines.append(f"| {name} | 18.16 | old: full rows (no input()) | "
                         f"{legacy[kind][0]:.2f} | {legacy[kind][1]:.0f} | |")  # fmt: skip
    lines += [
        "",
        "| rows | new path rows/s (sink) | hand-written chdb INSERT rows/s | ratio | CPU old/new |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, name in enumerate(NAMES):
        lines.append(f"| {name} | {new[kind][2]:,.0f} | {peer[kind]:,.0f} | "
                     f"{new[kind][2] / peer[kind]:.1f}x | "
                     f"{old[kind][0] / new[kind][0]:.1f}x |")  # fmt: skip
    text = "\n".join(lines)
    print(text)
    if args.md:
        Path(args.md).write_text(
            "# Insert paths: server cost per row\n\n"
            "`python bench/bench_inserts.py "
            + " ".join(argv or sys.argv[1:])
            + "`\n\n"
            + text
            + "\n",
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
