"""Events per second landing in the Debian ClickHouse server, from one producer process.

    python bench/bench_clickhouse.py [--events 1000000] [--json bench/results/clickhouse.json]

Starts a fresh local server (Debian's clickhouse-server), sends the events from this process
through a default-configured client, waits until ``flush()`` says they are queryable, checks the
count by query, and prints the rate next to ``queue.SimpleQueue.put`` of the same tuple measured
in the same run (the floor of any in-process hand-off), plus the producer's peak memory."""

from __future__ import annotations

import argparse
import json
import queue
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.localservers.clickhouse import LocalClickHouse
from automagik_telemetry.sinks.clickhouse import schema_statements


def floor_put(n: int) -> float:
    q: queue.SimpleQueue[tuple[str, dict[str, int]]] = queue.SimpleQueue()
    put = q.put
    started = time.perf_counter()
    for i in range(n):
        put(("bench.event", {"i": i}))
    return time.perf_counter() - started


def run(events: int) -> dict[str, float]:
    with LocalClickHouse() as server:
        database = "bench_" + secrets.token_hex(3)
        for statement in schema_statements(database, legacy=True):
            server.query(statement)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        client = AutomagikTelemetry(
            project_name="bench", version="1", backend="clickhouse",
            clickhouse_endpoint=server.url, clickhouse_database=database,
            clickhouse_username=server.username, clickhouse_password=server.password,
        )  # fmt: skip
        track = client.track_event
        started = time.perf_counter()
        for i in range(events):
            track("bench.event", {"i": i})
        produced = time.perf_counter() - started
        ok = client.flush(timeout=600)
        landed = time.perf_counter() - started
        status = client.get_status()
        client.shutdown()
        count = int(server.query(f"SELECT count() FROM {database}.traces"))
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        floor = statistics.median(floor_put(events) for _ in range(3))
        server_version = server.version()
    return {
        "server": f"ClickHouse {server_version} (Debian)",
        "events": events,
        "landed_rows": count,
        "flush_ok": ok,
        "dropped": status["dropped_total"],
        "producer_seconds": produced,
        "producer_ns_per_event": produced / events * 1e9,
        "landed_seconds": landed,
        "events_per_second_landed": count / landed,
        "simple_queue_put_ns": floor / events * 1e9,
        "ratio_to_simple_queue_put": produced / floor,
        "producer_peak_rss_mib_growth": (rss_after - rss_before) / 1024,
        "batches": status["batches_sent"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.events)
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["landed_rows"] == args.events and result["flush_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
