"""The measuring loop, run inside each system's own process (one child process per system).

Standard library only: the child of the original automagik-telemetry 0.1.4 loads this file by
path from its own virtual environment. A system is an *adapter* (see ``Adapter``) that turns an
operation of the workload into a call of that system's API; this module times the calls on the
calling threads and reads the costs that only the process itself can see (its CPU time, its
peak memory). Counting what landed is done by the parent, at the destination.

Phases:

Every phase starts with a warm-up (calls outside the measurement, then a flush), so that the
system's threads, processes and connections are up before anything is timed.

* ``throughput``: every operation of the workload, from ``threads`` threads (paced at ``rate``
  if given), each call timed with ``perf_counter_ns`` (the median cost of an empty timed
  region is subtracted); then ``flush``.
* ``roundtrip``: ``rounds`` times, ``batch_size`` operations and a timed ``flush`` (the
  guide's "latency per batch": calls to confirmed delivery of one batch).
* ``latency``: probes at a fixed low rate, each stamped with its wall-clock send time; the
  parent polls the destination and notes when each became queryable. The child waits
  ``linger`` seconds after the last probe without flushing, so what is measured is what the
  system does on its own.
"""

from __future__ import annotations

import array
import gc
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Call = tuple[Callable[..., object], tuple[Any, ...]]
Op = tuple[int, str, float, int, dict[str, Any]]

PROGRESS_EVERY = 2048


class Adapter(Protocol):
    """One system under test, as seen by the driver."""

    def prepare(self, op: Op) -> Call:
        """The call (function and arguments) that sends ``op``; built before timing starts."""
        ...

    def flush(self, timeout: float) -> bool:
        """Deliver everything sent so far; whether the system says it did."""
        ...

    def writer_pid(self) -> int | None:
        """The process that delivers, when it is not this one (our writer), else None."""
        ...

    def stats(self) -> dict[str, Any]:
        """The system's own counters (drops, bytes...), read after the flush."""
        ...

    def close(self) -> None: ...


def progress(fraction: float) -> None:
    """Tell the parent how far this phase is (one line on stderr)."""
    sys.stderr.write(f"PROGRESS {fraction:.4f}\n")
    sys.stderr.flush()


def timer_overhead_ns() -> int:
    """Median cost of an empty timed region (two ``perf_counter_ns`` calls)."""
    clock = time.perf_counter_ns
    samples = []
    for _ in range(20_000):
        t0 = clock()
        t1 = clock()
        samples.append(t1 - t0)
    samples.sort()
    return samples[len(samples) // 2]


def percentile(sorted_values: Sequence[int] | Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return float(sorted_values[index])


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak RSS of this process image: VmHWM (``ru_maxrss`` would carry the parent's peak
    across fork and exec)."""
    peak = process_peak_rss(os.getpid())
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process (from /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_peak_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _producer(
    calls: Sequence[Call],
    rate: float,
    start_at: float,
    out: array.array[int],
    cpu: list[float],
    done: list[int],
    slot: int,
) -> None:
    clock = time.perf_counter_ns
    append = out.append
    cpu_start = time.thread_time()
    if rate > 0:
        interval = 1.0 / rate
        for i, (fn, args) in enumerate(calls):
            wait = start_at + i * interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t0 = clock()
            fn(*args)
            append(clock() - t0)
            if not i % PROGRESS_EVERY:
                done[slot] = i
    else:
        for i, (fn, args) in enumerate(calls):
            t0 = clock()
            fn(*args)
            append(clock() - t0)
            if not i % PROGRESS_EVERY:
                done[slot] = i
    done[slot] = len(calls)
    cpu[slot] = time.thread_time() - cpu_start


def _watch(done: list[int], total: int, stop: threading.Event) -> None:
    while not stop.wait(0.25):
        progress(sum(done) / max(total, 1))


def run_throughput(
    adapter: Adapter,
    ops: Sequence[Op],
    *,
    threads: int,
    rate: float,
    flush_timeout: float,
) -> dict[str, Any]:
    calls = [adapter.prepare(op) for op in ops]
    overhead = timer_overhead_ns()
    shares = [calls[k::threads] for k in range(threads)]
    samples: list[array.array[int]] = [array.array("q") for _ in range(threads)]
    thread_cpu = [0.0] * threads
    done = [0] * threads
    per_thread_rate = rate / threads if rate > 0 else 0.0
    writer = adapter.writer_pid()
    writer_cpu_before = process_cpu(writer) if writer else 0.0
    gc.collect()
    rss_before = rss_bytes()
    stop_watch = threading.Event()
    watcher = threading.Thread(target=_watch, args=(done, len(calls), stop_watch), daemon=True)
    watcher.start()
    cpu_before = time.process_time()
    wall_start = time.time()
    started = time.perf_counter()
    if threads == 1:
        _producer(shares[0], per_thread_rate, started, samples[0], thread_cpu, done, 0)
    else:
        workers = [
            threading.Thread(
                target=_producer,
                args=(shares[k], per_thread_rate, started, samples[k], thread_cpu, done, k),
                name=f"bench-producer-{k}",
            )
            for k in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    produced = time.perf_counter() - started
    flush_ok = adapter.flush(flush_timeout)
    flushed = time.perf_counter() - started
    cpu_total = time.process_time() - cpu_before
    stop_watch.set()
    watcher.join()
    progress(1.0)
    writer_cpu = process_cpu(writer) - writer_cpu_before if writer else None
    producer_cpu = sum(thread_cpu)
    in_process_delivery = cpu_total - producer_cpu
    costs = sorted(max(0, v - overhead) for s in samples for v in s)
    return {
        "calls": len(calls),
        "wall_start": wall_start,
        "produce_seconds": produced,
        "flush_ok": flush_ok,
        "flush_seconds_after_start": flushed,
        "timer_overhead_ns": overhead,
        "producer_ns_median": percentile(costs, 0.5),
        "producer_ns_p99": percentile(costs, 0.99),
        "producer_ns_p999": percentile(costs, 0.999),
        "producer_ns_max": float(costs[-1]) if costs else float("nan"),
        "producer_ns_mean": sum(costs) / len(costs) if costs else float("nan"),
        "producer_thread_cpu_seconds": producer_cpu,
        "app_cpu_seconds": cpu_total,
        # CPU spent delivering: the writer process when there is one, else this process's
        # CPU outside the calling threads (the peer's export threads, GC...)
        "writer_cpu_seconds": writer_cpu if writer_cpu is not None else in_process_delivery,
        "writer_is_process": writer is not None,
        "total_cpu_seconds": cpu_total + (writer_cpu or 0.0),
        "rss_before_bytes": rss_before,
    }


def run_roundtrip(
    adapter: Adapter,
    ops: Sequence[Op],
    *,
    batch_size: int,
    rounds: int,
    flush_timeout: float,
) -> dict[str, Any]:
    """``rounds`` batches of ``batch_size`` calls, each followed by a timed flush (the first,
    a warm-up, is not counted)."""
    calls = [adapter.prepare(op) for op in ops]
    times: list[float] = []
    failures = 0
    for r in range(rounds + 1):
        for fn, args in calls[r * batch_size : (r + 1) * batch_size]:
            fn(*args)
        t0 = time.perf_counter()
        ok = adapter.flush(flush_timeout)
        elapsed = time.perf_counter() - t0
        if r:
            times.append(elapsed)
            failures += not ok
        progress((r + 1) / (rounds + 1))
    times.sort()
    return {
        "rounds": rounds,
        "batch_size": batch_size,
        "roundtrip_ms_p50": percentile(times, 0.5) * 1e3,
        "roundtrip_ms_p99": percentile(times, 0.99) * 1e3,
        "roundtrip_ms_max": times[-1] * 1e3 if times else float("nan"),
        "roundtrip_failures": failures,
    }


def run_latency(
    adapter: Adapter,
    probes: Sequence[Op],
    *,
    rate: float,
    linger: float,
) -> dict[str, Any]:
    calls = [adapter.prepare(op) for op in probes]
    sent_ns: list[int] = []
    start = time.perf_counter()
    for i, (fn, args) in enumerate(calls):
        wait = start + i / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent_ns.append(time.time_ns())
        fn(*args)
        if not i % 10:
            progress(i / len(calls) * 0.7)
    end = time.perf_counter() + linger
    while (left := end - time.perf_counter()) > 0:
        time.sleep(min(left, 0.25))
        progress(0.7 + 0.3 * (1 - left / linger))
    return {"sent_ns": sent_ns, "rate": rate, "linger": linger}


def finish(adapter: Adapter, result: dict[str, Any]) -> dict[str, Any]:
    """Add the process's peak memory and the system's counters, then close the system."""
    result["peak_rss_bytes"] = peak_rss_bytes()
    writer = adapter.writer_pid()
    result["writer_peak_rss_bytes"] = process_peak_rss(writer) if writer else None
    result["stats"] = adapter.stats()
    started = time.perf_counter()
    adapter.close()
    result["close_seconds"] = time.perf_counter() - started
    return result


def warm_up(adapter: Adapter, ops: Sequence[Op], flush_timeout: float) -> dict[str, Any]:
    """Calls outside the measurement, then a flush: the system's threads, processes and
    connections are up, and its code paths warm, before anything is timed."""
    started = time.perf_counter()
    for fn, args in [adapter.prepare(op) for op in ops]:
        fn(*args)
    ok = adapter.flush(flush_timeout)
    return {
        "warmup_calls": len(ops),
        "warmup_ok": ok,
        "warmup_seconds": time.perf_counter() - started,
    }


def run_child(
    spec: dict[str, Any],
    make_adapter: Callable[[dict[str, Any]], Adapter],
    workload_module: Any,
) -> dict[str, Any]:
    """A child process's whole job: build the system, warm it up, run the phase, report.

    ``workload_module`` is ``workload.py`` (passed in because the original SDK's child loads it
    by path)."""
    workload = workload_module.Workload.from_dict(spec["workload"])
    phase = spec["phase"]
    result: dict[str, Any] = {"system": spec["system"], "phase": phase}
    started = time.perf_counter()
    adapter = make_adapter(spec)
    result["start_seconds"] = time.perf_counter() - started
    flush_timeout = spec["flush_timeout"]
    closed = False
    try:
        warm = warmup_count(workload.count) if phase == "throughput" else 10
        far = workload.count + 10_000_000  # operations no phase uses
        result.update(
            warm_up(adapter, workload_module.operations(workload, warm, far), flush_timeout)
        )
        if phase == "throughput":
            ops = workload_module.operations(workload)
            result.update(
                run_throughput(
                    adapter,
                    ops,
                    threads=workload.threads,
                    rate=workload.rate,
                    flush_timeout=flush_timeout,
                )
            )
            del ops
        elif phase == "roundtrip":
            rounds = int(spec["rounds"])
            ops = workload_module.operations(workload, (rounds + 1) * workload.batch_size)
            result.update(
                run_roundtrip(
                    adapter,
                    ops,
                    batch_size=workload.batch_size,
                    rounds=rounds,
                    flush_timeout=flush_timeout,
                )
            )
        else:
            latency = spec["latency"]
            count = max(1, int(latency["rate"] * latency["seconds"]))
            probes = [workload_module.probe(i) for i in range(count)]
            result.update(
                run_latency(adapter, probes, rate=latency["rate"], linger=latency["linger"])
            )
        closed = True
        finish(adapter, result)
    finally:
        if not closed:
            adapter.close()
    return result


def warmup_count(count: int) -> int:
    return min(1000, max(100, count // 10))
