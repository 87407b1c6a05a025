"""What an outage costs at speed, side by side in one run against Debian's ClickHouse (18.16):

    python bench/bench_faults.py [--rate 50000] [--healthy 10] [--freeze 15] [--down 15]
                                 [--markdown bench/results/faults-bench.md]

One client with default settings tracks numbered events from one thread at ``--rate`` events a
second (bursts every 0.1 s, paced against the clock), every call timed on its own, through
these phases, one after the other, in one process:

* healthy: the server answers;
* frozen: the server SIGSTOPped for ``--freeze`` seconds (it accepts connections and never
  answers), then SIGCONT; the producer goes on while the backlog drains, and the time from
  SIGCONT until every row tracked before it is queryable is the drain time;
* down: the server SIGKILLed for ``--down`` seconds, then restarted on the same data; meanwhile
  the spool is sampled on disk (the spill rate), and after the restart the rows landing per
  second (the replay rate) until every row tracked before the restart is queryable.

It prints a table (median, p99 and max ns per ``track_event`` per phase, and their ratios to
healthy), the spill and replay rates against the bytes the producer writes per second, and
writes the same as Markdown. Rows dropped during a phase are shown beside its figures: a dropped
call is cheap, so a phase that drops can look fast.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import os
import platform
import secrets
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.rows.clickhouse import ClickHouseRows
from automagik_telemetry.sinks.clickhouse import schema_statements

RESULTS = Path(__file__).resolve().parent / "results" / "faults-bench.md"
BURST_INTERVAL = 0.1  # s between bursts
SLOW_NS = 1_000_000  # a call this long waited (for room in the ring)


@dataclass
class Phase:
    name: str
    samples: list[int] = field(default_factory=list)  # ns per call
    dropped: int = 0  # rows dropped (counted) while the phase ran
    started: float = 0.0
    ended: float = 0.0


class Producer:
    """Tracks ``n0``, ``n1``, ... from a thread of its own at ``rate`` calls/s until stopped,
    timing each call into the current phase."""

    def __init__(self, client: AutomagikTelemetry, rate: int, overhead_ns: int) -> None:
        self.client = client
        self.burst = max(1, int(rate * BURST_INTERVAL))
        self.overhead_ns = overhead_ns
        self.phase: Phase | None = None
        self.sent = 0
        self.raised = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-producer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        track = self.client.track_event
        clock = time.perf_counter_ns
        overhead = self.overhead_ns
        started = time.monotonic()
        k = 0
        while not self._stop.is_set():
            delay = started + k * BURST_INTERVAL - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            k += 1
            phase = self.phase
            samples = phase.samples if phase is not None else []
            append = samples.append
            first = self.sent
            for i in range(first, first + self.burst):
                name = f"n{i}"
                began = clock()
                try:
                    track(name)
                except Exception:
                    self.raised += 1
                append(clock() - began - overhead)
            self.sent = first + self.burst


def timer_overhead_ns(rounds: int = 200_000) -> int:
    """Median ns of an empty timed region (two perf_counter_ns calls)."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(rounds):
        began = clock()
        samples.append(clock() - began)
    return int(statistics.median(samples))


def percentile(ordered: list[int], fraction: float) -> int:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0


def spool_bytes(root: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if ".tmp-" not in name:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(folder, name)).st_size
    return total


def disk_write_mb_s(directory: Path, total: int = 64 << 20, chunk: int = 4 << 20) -> float:
    """Write ``total`` bytes in files of ``chunk`` bytes, each fsynced (as the spool writes its
    batches), in ``directory``: MB/s."""
    directory.mkdir(parents=True, exist_ok=True)
    block = os.urandom(chunk)
    started = time.perf_counter()
    for index in range(total // chunk):
        path = directory / f"disk-test-{index}"
        with open(path, "wb") as out:
            out.write(block)
            out.flush()
            os.fsync(out.fileno())
    took = time.perf_counter() - started
    for index in range(total // chunk):
        (directory / f"disk-test-{index}").unlink()
    return total / took / 1e6


class Table:
    """Counts in the database, by query."""

    def __init__(self, server: LocalClickHouse, database: str) -> None:
        self.server = server
        self.table = f"{database}.traces"

    def query(self, sql: str) -> str | None:
        try:
            return self.server.query(sql, timeout=10).strip()
        except Exception:
            return None

    def count(self) -> int | None:
        text = self.query(f"SELECT count() FROM {self.table}")
        return None if text is None else int(text)

    def distinct_below(self, mark: int) -> int | None:
        text = self.query(
            f"SELECT uniqExact(span_name) FROM {self.table} "
            f"WHERE toUInt64OrZero(substring(span_name, 2)) < {mark}"
        )
        return None if text is None else int(text)

    def totals(self) -> tuple[int, int]:
        text = self.query(f"SELECT count(), uniqExact(span_name) FROM {self.table}")
        assert text is not None, "the server does not answer"
        stored, distinct = text.split("\t")
        return int(stored), int(distinct)


def wait_landed(
    table: Table, client: AutomagikTelemetry, mark: int, since: float, timeout: float
) -> tuple[float | None, list[tuple[float, int]]]:
    """Poll until every row below ``mark`` is queryable (or counted as dropped); the seconds
    from ``since`` until then (None if not within ``timeout``) and the (time, count()) samples."""
    counts: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    last_exact = 0.0
    while time.monotonic() < deadline:
        count = table.count()
        now = time.monotonic()
        if count is not None:
            counts.append((now, count))
            dropped = int(client.get_status()["dropped_total"])
            if count >= mark - dropped and now - last_exact >= 0.5:
                below = table.distinct_below(mark)
                last_exact = time.monotonic()
                if below is not None and below >= mark - dropped:
                    return last_exact - since, counts
        time.sleep(0.2)
    return None, counts


def status_of(client: AutomagikTelemetry) -> dict[str, Any]:
    return client.get_status()


def run(args: argparse.Namespace) -> dict[str, Any]:
    overhead = timer_overhead_ns()
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    spool = work / "spool"
    disk_mb_s = disk_write_mb_s(work / "disk")
    encoder = ClickHouseRows()
    row_bytes = statistics.mean(
        len(encoder.span(time.time_ns(), f"n{i}", None, None)) for i in range(500_000, 501_000)
    )
    with LocalClickHouse() as server:
        database = "bench_" + secrets.token_hex(3)
        for statement in schema_statements(database, legacy=True):
            server.query(statement)
        table = Table(server, database)
        client = AutomagikTelemetry(
            project_name="bench-faults", version="1.0.0", backend="clickhouse",
            clickhouse_endpoint=server.url, clickhouse_database=database,
            clickhouse_username=server.username, clickhouse_password=server.password,
            spool_dir=str(spool),
        )  # fmt: skip
        producer = Producer(client, args.rate, overhead)
        phases = {name: Phase(name) for name in ("healthy", "frozen", "down")}
        result: dict[str, Any] = {
            "rate": args.rate,
            "ring_row_bytes": row_bytes,
            "disk_write_mb_s": disk_mb_s,
            "timer_overhead_ns": overhead,
        }
        try:
            producer.start()
            time.sleep(2.0)  # warm-up: connected, pages touched
            client.flush(timeout=30)

            def phase(name: str, seconds: float) -> Phase:
                current = phases[name]
                before = status_of(client)["dropped_total"]
                current.started = time.monotonic()
                producer.phase = current
                time.sleep(seconds)
                producer.phase = None
                current.ended = time.monotonic()
                current.dropped = status_of(client)["dropped_total"] - before
                return current

            phase("healthy", args.healthy)

            server.pause()
            phase("frozen", args.freeze)
            server.resume()
            resumed, mark = time.monotonic(), producer.sent
            drain, _ = wait_landed(table, client, mark, resumed, timeout=120)
            result["freeze_drain_s"] = drain
            result["freeze_dropped"] = phases["frozen"].dropped

            # down: the spool sampled every 0.5 s
            spill: list[tuple[float, int, int, Any]] = []
            stop_sampling = threading.Event()

            def sample() -> None:
                while not stop_sampling.wait(0.5):
                    status = status_of(client)
                    spill.append((time.monotonic(), spool_bytes(spool), int(status["spooled"]),
                                  status.get("spill_bytes_per_s")))  # fmt: skip

            sampler = threading.Thread(target=sample, daemon=True)
            server.kill()
            sampler.start()
            phase("down", args.down)
            stop_sampling.set()
            sampler.join(5)
            server.restart()
            restarted, mark = time.monotonic(), producer.sent
            before_replay = table.distinct_below(mark) or 0
            replay, counts = wait_landed(table, client, mark, restarted, timeout=180)
            landed_below = table.distinct_below(mark) or 0
            result["spill"] = spill
            result["replay_s"] = replay
            result["replay_rows"] = landed_below - before_replay
            if counts:
                window = [c for c in counts if c[0] >= restarted]
                if len(window) >= 2:
                    result["landed_rows_per_s"] = (window[-1][1] - window[0][1]) / (
                        window[-1][0] - window[0][0]
                    )
        finally:
            producer.stop()
            flushed = client.flush(timeout=60)
            status = status_of(client)
            client.shutdown(timeout=30)
        stored, distinct = table.totals()
    shutil.rmtree(work, ignore_errors=True)
    result.update(
        phases=phases, sent=producer.sent, raised=producer.raised, stored=stored,
        distinct=distinct, flushed=flushed, dropped=status["dropped"],
        dropped_total=status["dropped_total"], spooled=status.get("spooled"),
    )  # fmt: skip
    return result


def report(result: dict[str, Any]) -> str:
    phases: dict[str, Phase] = result["phases"]
    figures = {}
    waits: dict[str, tuple[int, float]] = {}  # calls over SLOW_NS, seconds spent in them
    for name, phase in phases.items():
        ordered = sorted(phase.samples)
        figures[name] = (len(ordered), statistics.median(ordered) if ordered else 0.0,
                         percentile(ordered, 0.99), ordered[-1] if ordered else 0)  # fmt: skip
        slow = [ns for ns in ordered if ns > SLOW_NS]
        waits[name] = (len(slow), sum(slow) / 1e9)
    base_median, base_p99 = figures["healthy"][1], figures["healthy"][2]
    rate, row_bytes = result["rate"], result["ring_row_bytes"]
    producer_mb_s = rate * row_bytes / 1e6
    labels = {"healthy": "healthy", "frozen": "frozen (SIGSTOP)", "down": "down (SIGKILL)"}
    lines = [
        "# Producer cost and the spool at speed, healthy against frozen and down",
        "",
        f"`python bench/bench_faults.py`, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; Debian's ClickHouse "
        "18.16 on loopback, one client with default settings tracking numbered events from one "
        f"thread at {rate:,} events/s (bursts every 0.1 s, paced against the clock), every "
        f"call timed on its own (the empty timed region, {result['timer_overhead_ns']} ns, "
        "subtracted). The phases follow each other in the same process.",
        "",
        "| phase | calls timed | median ns | p99 ns | max ns | median / healthy "
        "| p99 / healthy | calls over 1 ms (s in them) | rows dropped in the phase |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, (calls, median, p99, worst) in figures.items():
        lines.append(
            f"| {labels[name]} | {calls:,} | {median:,.0f} | {p99:,} | {worst:,} "
            f"| {median / base_median if base_median else 0:.2f}x "
            f"| {p99 / base_p99 if base_p99 else 0:.2f}x "
            f"| {waits[name][0]:,} ({waits[name][1]:.2f}) | {phases[name].dropped:,} |"
        )
    lines += ["", "Ratios (target of issue 11: at most 1.2x):", ""]
    for name in ("frozen", "down"):
        median, p99 = figures[name][1], figures[name][2]
        dropped = phases[name].dropped
        caveat = (
            f" ({dropped:,} rows dropped meanwhile: a dropped call costs less than a kept one)"
            if dropped
            else ""
        )
        lines.append(
            f"- {labels[name]} / healthy: median **{median / base_median:.2f}x**, p99 "
            f"{p99 / base_p99:.2f}x{caveat}"
        )
    spill = result.get("spill") or []
    lines += ["", "## The spool", ""]
    lines.append(
        f"- The producer writes {rate:,} rows/s of {row_bytes:.0f} B into the ring: "
        f"**{producer_mb_s:.2f} MB/s**."
    )
    if len(spill) >= 2:
        spooling = [s for s in spill if s[2] > 0] or spill
        first, last = spooling[0], spill[-1]
        span = max(last[0] - first[0], 1e-9)
        rows_per_s = (last[2] - first[2]) / span
        disk_per_s = (last[1] - first[1]) / span
        peaks = [(b[2] - a[2]) / (b[0] - a[0]) for a, b in itertools.pairwise(spill) if b[0] > a[0]]
        engine = [s[3] for s in spill if isinstance(s[3], int | float)]
        reported = (
            f"get_status spill_bytes_per_s peak {max(engine) / 1e6:.2f} MB/s."
            if engine
            else "get_status reports no spill_bytes_per_s."
        )
        lines.append(
            f"- Spill while down: {rows_per_s:,.0f} rows/s spooled (at most "
            f"{max(peaks, default=0):,.0f} rows/s over 0.5 s, catching up a backlog) = "
            f"**{rows_per_s * row_bytes / 1e6:.2f} MB/s** "
            f"of the ring's rows, {disk_per_s / 1e6:.2f} MB/s on disk (LZ4-framed); "
            f"{rows_per_s * row_bytes / 1e6 / producer_mb_s:.2f}x the producer's bytes/s; "
            f"the spool held {last[1]:,} B at the restart. {reported}"
        )
    lines.append(
        f"- This disk writes {result['disk_write_mb_s']:.0f} MB/s (4 MiB files, each fsynced, as "
        f"the spool writes its batches): {result['disk_write_mb_s'] / producer_mb_s:.0f}x the "
        "producer's bytes/s."
    )
    replay = result.get("replay_s")
    landed = result.get("landed_rows_per_s")
    took = f"in {replay:.1f} s" if replay is not None else "not all within 180 s"
    rate_then = (
        f"; {landed:,.0f} rows/s landed meanwhile (replay and the producer's {rate:,}/s), "
        f"{landed * row_bytes / 1e6:.2f} MB/s of ring rows, {landed / rate:.2f}x the "
        "producer's rate"
        if landed
        else ""
    )
    lines.append(
        f"- Replay after the restart: {result.get('replay_rows', 0):,} rows tracked before "
        f"the restart landed {took}{rate_then}."
    )
    drain = result.get("freeze_drain_s")
    lines.append(
        f"- A {phases['frozen'].ended - phases['frozen'].started:.0f} s freeze at {rate:,} "
        "events/s: every row tracked before SIGCONT queryable "
        + (f"**{drain:.1f} s** after it" if drain is not None else "not within 120 s")
        + f" ({result['freeze_dropped']:,} rows dropped during the freeze)."
    )
    lines += [
        "",
        f"In all: {result['sent']:,} tracked, {result['stored']:,} stored "
        f"({result['distinct']:,} distinct, {result['stored'] - result['distinct']:,} stored "
        f"twice), {result['dropped_total']:,} dropped ({result['dropped']}), "
        f"{result['sent'] - result['distinct']:,} missing; spooled {result['spooled']}; "
        f"{result['raised']} calls raised; the last flush: {result['flushed']}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=50_000, help="events per second")
    parser.add_argument("--healthy", type=float, default=10.0, help="seconds healthy")
    parser.add_argument("--freeze", type=float, default=15.0, help="seconds frozen")
    parser.add_argument("--down", type=float, default=15.0, help="seconds down")
    parser.add_argument("--markdown", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    text = report(run(args))
    print(text)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(text, encoding="utf-8")
    print(f"written to {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
