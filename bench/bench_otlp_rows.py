"""OTLP row encoders alone: ns per row, per encoding and per kind (the calling thread's work).

    python bench/bench_otlp_rows.py [--repeats 30] [--number 2000]

Each figure is the minimum over ``--repeats`` timeit repeats of ``--number`` rows (the least
disturbed run: this measures the code, not the machine's other load). Inputs:

* ``span 8 fixed``: one event with 8 attributes (str, int, bool, str, str, float, int, str), the
  same dict every call (every attribute value repeats, as most do in real telemetry);
* ``span workload``: the harness's events (``automagik_telemetry.benchmark.workload``): 8
  attributes, among them a unique ``request_id`` and a high-cardinality ``duration_ms``;
* ``metric workload`` / ``log workload``: the harness's metrics and logs (3 attributes each);
* ``span workload+UA``: the same with a 9th attribute, a user agent of 87 characters (a str
  too long to cache); the dict is copied in the loop (about 0.3 µs of the figure);
* ``span no attrs``: the part of a span that is not its attributes.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

from automagik_telemetry.benchmark.workload import EVENT, LOG, METRIC, Workload, operations
from automagik_telemetry.otlp_rows import OtlpJsonRows, OtlpProtobufRows
from automagik_telemetry.schema import LogSeverity, MetricType

NOW = time.time_ns()
FIXED: dict[str, Any] = {
    "http.method": "GET",
    "http.status_code": 200,
    "cache_hit": True,
    "http.route": "/v1/contacts/{id}",
    "user.tier": "pro",
    "duration_ms": 12.345,
    "worker": 3,
    "region": "eu-west-1",
}
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
KINDS = (MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM)
LEVELS = (LogSeverity.DEBUG, LogSeverity.INFO, LogSeverity.WARN, LogSeverity.ERROR)


def best_ns(fn: Callable[[], object], rows: int, repeats: int) -> float:
    """Minimum ns per row over ``repeats`` runs of ``fn`` (which encodes ``rows`` rows)."""
    fn()  # warm caches and the id pool
    return min(timeit.repeat(fn, number=1, repeat=repeats)) / rows * 1e9


def cases(encoder: OtlpJsonRows | OtlpProtobufRows, number: int) -> dict[str, Callable[[], None]]:
    ops = operations(Workload(count=number * 10))
    events = [op for op in ops if op[0] == EVENT][:number]
    metrics = [op for op in ops if op[0] == METRIC][:number]
    logs = [op for op in ops if op[0] == LOG][:number]
    span, metric, log = encoder.span, encoder.metric, encoder.log
    loop = range(number)

    def span_fixed() -> None:
        for _ in loop:
            span(NOW, "api.request", FIXED, None)

    def span_long() -> None:
        for _, name, _, _, attrs in events:
            span(NOW, name, {**attrs, "user_agent": USER_AGENT}, None)

    def span_workload() -> None:
        for _, name, _, _, attrs in events:
            span(NOW, name, attrs, None)

    def span_bare() -> None:
        for _ in loop:
            span(NOW, "api.request", None, None)

    def metric_workload() -> None:
        for _, name, value, level, attrs in metrics:
            metric(NOW, name, value, KINDS[level], attrs)

    def log_workload() -> None:
        for _, message, _, level, attrs in logs:
            log(NOW, message, LEVELS[level], attrs)

    return {
        "span 8 fixed": span_fixed,
        "span workload": span_workload,
        "span workload+UA": span_long,
        "span no attrs": span_bare,
        "metric workload": metric_workload,
        "log workload": log_workload,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    encoders: dict[str, OtlpJsonRows | OtlpProtobufRows] = {
        "json": OtlpJsonRows(),
        "protobuf": OtlpProtobufRows(),
    }
    table = {name: cases(encoder, args.number) for name, encoder in encoders.items()}
    print(f"ns per row, minimum of {args.repeats} repeats of {args.number} rows")
    print(f"{'case':18} " + " ".join(f"{name:>10}" for name in encoders))
    for case in table["json"]:
        figures = [best_ns(table[name][case], args.number, args.repeats) for name in encoders]
        print(f"{case:18} " + " ".join(f"{figure:10.0f}" for figure in figures))
    clock = best_ns(lambda: [time.time_ns() for _ in range(args.number)], args.number, 30)
    print(f"{'time.time_ns()':18} {clock:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
