"""OTLP row encoders alone: ns per row, per encoding and per kind (the calling thread's work).

    python bench/bench_otlp_rows.py [--events 20000] [--repeats 3]
    python bench/bench_otlp_rows.py --compare /path/to/old/otlp_rows.py   # A/B, interleaved

Each figure is the minimum, over many timed chunks of 1,000 rows, of the process CPU time per
row (CPU time: another process on the machine does not count; the minimum: the least disturbed
chunk). With ``--compare``, an older ``otlp_rows.py`` (loaded under another name) is timed in the
same process, chunk for chunk in random order, so both meet the same machine. Inputs:

* ``span 8 repeated``: one event with 8 attributes (str, int, bool, str, str, float, int, str),
  the same dict every call: every value repeats, as most attribute values do;
* ``span workload``: ``--events`` distinct events of the harness's workload
  (``bench.harness.workload``): 8 attributes, among them a unique
  ``request_id`` and a high-cardinality ``duration_ms``;
* ``span workload+UA``: the same with a 9th attribute, a user agent of 84 characters;
* ``span no attrs``: the part of a span that is not its attributes;
* ``metric workload`` / ``log workload``: the harness's metrics and logs (3 attributes each,
  the logs' ``request_id`` unique).

These figures are the encoder in a loop that does nothing else: its data stays in the CPU's
caches. They do not predict a change's effect on ``track_event`` (the client also takes a lock,
reads the clock, copies the row into the ring, and the caller builds the next attributes): a
cache of attribute fragments measured 35% faster here and 10 to 20% slower per call in the
client (``otlp_rows``'s docstring). Check a change with ``bench/test_producer_cost.py`` and the
harness (``automagik-telemetry bench``) too.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: bench.harness

from automagik_telemetry.rows.otlp_json import OtlpJsonRows
from automagik_telemetry.rows.otlp_protobuf import OtlpProtobufRows
from automagik_telemetry.schema import LogSeverity, MetricType
from bench.harness.workload import EVENT, LOG, METRIC, Workload, operations

NOW = time.time_ns()
CHUNK = 1000
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
Case = Callable[[int], None]  # encodes chunk number i


def cases(module: Any, encoding: str, events: int) -> dict[str, Case]:
    """The cases, each a function encoding one chunk of rows with a fresh encoder of
    ``module`` (``otlp_rows``, or an older copy of it)."""
    encoder = module.OtlpJsonRows() if encoding == "json" else module.OtlpProtobufRows()
    ops = operations(Workload(count=events * 10 // 8 + 10))
    spans = [op for op in ops if op[0] == EVENT][:events]
    with_ua = [(name, {**attrs, "user_agent": USER_AGENT}) for _, name, _, _, attrs in spans]
    metrics = [op for op in ops if op[0] == METRIC]
    logs = [op for op in ops if op[0] == LOG]
    span, metric, log = encoder.span, encoder.metric, encoder.log

    def chunk_of(rows: list[Any], i: int) -> list[Any]:
        start = i * CHUNK % max(len(rows) - CHUNK, 1)
        return rows[start : start + CHUNK]

    def span_fixed(i: int) -> None:
        for _ in range(CHUNK):
            span(NOW, "api.request", FIXED, None)

    def span_workload(i: int) -> None:
        for _, name, _, _, attrs in chunk_of(spans, i):
            span(NOW, name, attrs, None)

    def span_ua(i: int) -> None:
        for name, attrs in chunk_of(with_ua, i):
            span(NOW, name, attrs, None)

    def span_bare(i: int) -> None:
        for _ in range(CHUNK):
            span(NOW, "api.request", None, None)

    def metric_workload(i: int) -> None:
        for _, name, value, level, attrs in chunk_of(metrics, i):
            metric(NOW, name, value, KINDS[level], attrs)

    def log_workload(i: int) -> None:
        for _, message, _, level, attrs in chunk_of(logs, i):
            log(NOW, message, LEVELS[level], attrs)

    return {
        "span 8 repeated": span_fixed,
        "span workload": span_workload,
        "span workload+UA": span_ua,
        "span no attrs": span_bare,
        "metric workload": metric_workload,
        "log workload": log_workload,
    }


def load(path: str) -> Any:
    """An older ``otlp_rows.py`` as a module of its own (its relative imports resolved
    against the installed package)."""
    spec = importlib.util.spec_from_file_location("automagik_telemetry._otlp_rows_compared", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="distinct events (20,000)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over them (3)")
    parser.add_argument("--compare", metavar="PATH", help="an older otlp_rows.py to time too")
    args = parser.parse_args()
    now = types.SimpleNamespace(OtlpJsonRows=OtlpJsonRows, OtlpProtobufRows=OtlpProtobufRows)
    modules: dict[str, Any] = {"now": now}
    if args.compare:
        modules = {"before": load(args.compare), **modules}
    chunks = max(args.events // CHUNK, 1) * args.repeats
    table: dict[tuple[str, str, str], list[float]] = {}
    runs: list[tuple[tuple[str, str, str], Case]] = []
    for label, module in modules.items():
        for encoding in ("json", "protobuf"):
            for case, fn in cases(module, encoding, args.events).items():
                fn(0)  # warm: caches, the id pool
                table[case, encoding, label] = []
                runs.append(((case, encoding, label), fn))
    for i in range(chunks):
        random.shuffle(runs)
        for key, fn in runs:
            start = time.process_time_ns()
            fn(i)
            table[key].append((time.process_time_ns() - start) / CHUNK)
    print(f"ns per row: minimum over {chunks} chunks of {CHUNK} rows (process CPU time)")
    columns = [(encoding, label) for encoding in ("json", "protobuf") for label in modules]
    print(f"{'case':18} " + " ".join(f"{e + ' ' + lb:>16}" for e, lb in columns))
    for case in cases(modules["now"], "json", CHUNK + 10):
        row = [min(table[case, encoding, label]) for encoding, label in columns]
        print(f"{case:18} " + " ".join(f"{figure:16.0f}" for figure in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
