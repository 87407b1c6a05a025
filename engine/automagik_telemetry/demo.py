"""The main job (``automagik-telemetry demo``, ``scripts/demo.sh``): a batch job's telemetry
into the embedded engine, a progress bar while it ships, and, in the same run, the peer a user
would write by hand: plain chdb ``INSERT ... FORMAT JSONEachRow`` of the same full rows.

The peer inserts the rows this run's client encodes, completed with the shared columns (what
lands in the tables is the same), in inserts of ``PEER_ROWS`` rows, into a fresh data directory
with the same schema; its time is only the inserts' (the rows are made beforehand), so the ratio
favours the peer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

PEER_ROWS = 100_000  # rows per hand-written insert
#: A batch job's ring: a batch is at most half a ring, and each insert into the embedded engine
#: is a part to write and merge; measured here (same machine, runs alternated): the 1.2 M rows
#: landed at 150,000 rows/s with the default 16 MiB ring (8 MiB, ~50,000-row inserts) and at
#: 214,000 to 224,000 with 64 MiB (16 MiB, ~100,000-row inserts). The price is 48 MiB more of
#: shared memory, which a job shipping a million rows can spare.
DEMO_RING_SIZE = 64 * 1024 * 1024


class Progress:
    """Tracked / landed / rate while the job ships: one line redrawn on a terminal, a plain
    line a second otherwise (a log file, a CI job)."""

    def __init__(
        self, status: Callable[[], dict[str, Any]], total: int, out: TextIO = sys.stderr
    ) -> None:
        self._status = status
        self._total = total
        self._out = out
        self._tty = out.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-progress", daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._draw(final=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2 if self._tty else 1.0):
            self._draw()

    def _draw(self, final: bool = False) -> None:
        status = self._status()
        tracked, landed = int(status.get("accepted", 0)), int(status.get("sent", 0))
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        width = 30
        done = int(width * min(landed / self._total, 1.0)) if self._total else width
        bar = "#" * done + "-" * (width - done)
        line = (
            f"[{bar}] tracked {tracked:>10,}  landed {landed:>10,} / {self._total:,}  "
            f"{landed / elapsed:>9,.0f} rows/s  spooled {int(status.get('spooled', 0)):,}"
        )
        if self._tty:
            self._out.write("\r" + line + ("\n" if final else ""))
        else:
            self._out.write(line + "\n")
        self._out.flush()


def run(args: argparse.Namespace) -> int:
    """Ship events, metrics and logs into the embedded engine, then show what landed."""
    from chdb import session as chdb_session

    from . import __version__
    from .client import AutomagikTelemetry
    from .schema import LogSeverity, MetricType

    path = args.path or tempfile.mkdtemp(prefix="automagik-telemetry-demo-")
    events, metrics, logs = args.events, args.events // 10, args.events // 10
    total = events + metrics + logs
    print(f"automagik-telemetry {__version__} demo: {events:,} events, {metrics:,} metrics and "
          f"{logs:,} logs into the embedded ClickHouse at {path}")  # fmt: skip
    client = AutomagikTelemetry(
        project_name="demo-batch-job", version=__version__, backend="embedded",
        embedded_path=path, ring_size=args.ring_size or DEMO_RING_SIZE,
    )  # fmt: skip
    status = client.get_status()
    if not status["enabled"]:
        print(f"telemetry is disabled here: {status['disabled_reason']}; nothing to ship")
        client.shutdown()
        return 1
    track_event, track_metric, track_log = client.track_event, client.track_metric, client.track_log
    kinds = (MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM)
    severities = (LogSeverity.DEBUG, LogSeverity.INFO, LogSeverity.WARN, LogSeverity.ERROR)
    slowest = 0
    with Progress(client.get_status, total):
        started = time.perf_counter()
        for i in range(events):
            t0 = time.perf_counter_ns()
            track_event("record.processed", {"record": i, "stage": "transform", "ok": i % 97 != 0})
            spent = time.perf_counter_ns() - t0
            if spent > slowest:
                slowest = spent
            if i % 10 == 0:
                j = i // 10
                track_metric("batch.latency_ms", (i % 1000) / 10, kinds[j % 3], {"worker": j % 4})
                track_log(f"processed record {i}", severities[j % 4], {"record": i})
        produced = time.perf_counter() - started
        delivered = client.flush(timeout=600)
        landed = time.perf_counter() - started
    status = client.get_status()
    client.shutdown()
    print(f"tracked {total:,} rows in {produced:.2f} s on the calling thread "
          f"({produced / total * 1e9:.0f} ns per call, "
          f"slowest event call {slowest / 1e3:.0f} µs)")  # fmt: skip
    print(f"all delivered: {delivered}; landed in {landed:.2f} s ({total / landed:,.0f} rows/s); "
          f"dropped: {status['dropped_total']}; "
          f"spooled on the way: {status['spooled']:,} rows")  # fmt: skip

    session = chdb_session.Session(path)
    try:
        counts = {}
        for table in ("traces", "metrics", "logs"):
            count = session.query(f"SELECT count() FROM telemetry.{table}", "CSV")
            counts[table] = int(count.bytes().decode())
            print(f"  telemetry.{table:<8} {counts[table]:>10,} rows")
        print("\nfailed records per stage, and log severities (a query on what landed):")
        result = session.query(
            "SELECT attributes['stage'] AS stage, countIf(attributes['ok'] = 'false') AS failed, "
            "count() AS records FROM telemetry.traces GROUP BY stage",
            "PrettyCompactNoEscapes",
        )
        print(result.bytes().decode())
        result = session.query(
            "SELECT severity_text, count() AS logs FROM telemetry.logs "
            "GROUP BY severity_text ORDER BY severity_text",
            "PrettyCompactNoEscapes",
        )
        print(result.bytes().decode())
    finally:
        session.close()
    complete = counts == {"traces": events, "metrics": metrics, "logs": logs}
    if not args.no_peer:
        peer = peer_rows_per_s(events)
        ours = total / landed
        print(f"hand-written chdb INSERT ... FORMAT JSONEachRow of the same full rows "
              f"({PEER_ROWS:,} per insert): {peer:,.0f} rows/s; this run: {ours:,.0f} rows/s "
              f"landed, {ours / peer:.1f}x the peer")  # fmt: skip
    return 0 if delivered and complete and status["dropped_total"] == 0 else 1


def peer_rows_per_s(events: int) -> float:
    """Rows/s of plain chdb inserts of the demo's rows, full (every shared column in every
    row), into a fresh data directory with the same schema: the inserts' time only."""
    from chdb import session as chdb_session

    from . import __version__
    from .resource import Resource
    from .rows.clickhouse import ClickHouseRows, clickhouse_row_suffixes, complete_rows
    from .schema import LogSeverity, MetricType
    from .sinks.clickhouse import schema_statements

    rows = ClickHouseRows()
    suffixes = clickhouse_row_suffixes(
        Resource.detect("demo-batch-job", __version__, "namastex", "production")
    )
    kinds = (MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM)
    severities = (LogSeverity.DEBUG, LogSeverity.INFO, LogSeverity.WARN, LogSeverity.ERROR)
    now = time.time_ns()
    chunks: list[tuple[str, str]] = []
    parts: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])

    def cut(kind: int, table: str, force: bool = False) -> None:
        if parts[kind] and (force or len(parts[kind]) >= PEER_ROWS):
            body = complete_rows(b"".join(parts[kind]), suffixes[kind])
            chunks.append((table, body.decode()))
            parts[kind].clear()

    for i in range(events):
        attrs: dict[str, object] = {"record": i, "stage": "transform", "ok": i % 97 != 0}
        parts[0].append(bytes(rows.span(now + i, "record.processed", attrs, None)))
        if i % 10 == 0:
            j = i // 10
            attrs = {"worker": j % 4}
            parts[1].append(
                bytes(
                    rows.metric(now + i, "batch.latency_ms", (i % 1000) / 10, kinds[j % 3], attrs)
                )
            )
            parts[2].append(
                bytes(rows.log(now + i, f"processed record {i}", severities[j % 4], {"record": i}))
            )
        cut(0, "traces")
        cut(1, "metrics")
        cut(2, "logs")
    for kind, table in enumerate(("traces", "metrics", "logs")):
        cut(kind, table, force=True)
    total = events + 2 * (events // 10)
    with tempfile.TemporaryDirectory(prefix="automagik-telemetry-peer-") as path:
        session = chdb_session.Session(path)
        try:
            for statement in schema_statements():
                session.query(statement)
            started = time.perf_counter()
            for table, body in chunks:
                session.query(f"INSERT INTO telemetry.{table} FORMAT JSONEachRow\n{body}")
            elapsed = time.perf_counter() - started
            stored = sum(
                int(session.query(f"SELECT count() FROM telemetry.{t}", "CSV").bytes())
                for t in ("traces", "metrics", "logs")
            )
        finally:
            session.close()
    if stored != total:
        raise RuntimeError(f"the peer stored {stored:,} rows of {total:,}")
    return total / elapsed
