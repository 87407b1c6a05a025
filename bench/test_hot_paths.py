"""Micro-benchmarks of the hot pieces, for comparing one change with another.

    pytest bench/test_hot_paths.py --benchmark-only --benchmark-autosave
    # change something, then
    pytest bench/test_hot_paths.py --benchmark-only --benchmark-autosave
    pytest-benchmark compare --group-by=group --columns=median,iqr,ops 0001 0002

(``--benchmark-json=bench/results/hot-paths.json`` writes one run where you want it.) Every
benchmark has explicit rounds and warm-up rounds (``pedantic``), so two runs do the same work.
The inputs are the harness's own workload (``bench.harness.workload``): the rows
the engine really encodes, not toy ones. Each round does ``ROWS`` rows (or one batch); the
per-row time is in ``extra_info["ns_per_row"]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from automagik_telemetry.resource import Resource
from automagik_telemetry.ring.layout import KIND_TRACE
from automagik_telemetry.ring.segment import create_segment
from automagik_telemetry.ring.spsc import RingReader, RingWriter
from automagik_telemetry.rows.clickhouse import (
    ClickHouseRows,
    clickhouse_row_suffixes,
    complete_rows,
)
from automagik_telemetry.rows.framing import split_lines
from automagik_telemetry.schema import MetricType
from automagik_telemetry.transport import codec
from bench.harness.workload import EVENT, METRIC, Workload, operations

ROWS = 1000
ROUNDS = 200
WARMUP = 20
NOW = time.time_ns()
OPS = operations(Workload(count=20_000))
EVENTS = [op for op in OPS if op[0] == EVENT][:ROWS]
METRICS = [op for op in OPS if op[0] == METRIC][:ROWS]
RESOURCE = Resource.detect("bench", "1.0.0", "namastex", "bench")
KINDS = (MetricType.GAUGE, MetricType.COUNTER, MetricType.HISTOGRAM)


def per_row(benchmark: Any, fn: Callable[[], object], rows: int, rounds: int = ROUNDS) -> None:
    benchmark.pedantic(fn, rounds=rounds, warmup_rounds=WARMUP, iterations=1)
    benchmark.extra_info["rows_per_round"] = rows
    benchmark.extra_info["ns_per_row"] = benchmark.stats.stats.median / rows * 1e9


def clickhouse_batch(rows: int = 10_000) -> bytes:
    """A batch of ClickHouse rows as the ring holds them (without the shared columns)."""
    encoder = ClickHouseRows()
    ops = [op for op in operations(Workload(count=rows * 2)) if op[0] == EVENT][:rows]
    return b"".join(bytes(encoder.span(NOW, name, attrs, None)) for _, name, _, _, attrs in ops)


# --- row encoding -----------------------------------------------------------------------------


@pytest.mark.benchmark(group="encode a row")
def test_encode_clickhouse_event(benchmark: Any) -> None:
    span = ClickHouseRows().span

    def run() -> None:
        for _, name, _, _, attrs in EVENTS:
            span(NOW, name, attrs, None)

    per_row(benchmark, run, len(EVENTS))


@pytest.mark.benchmark(group="encode a row")
def test_encode_clickhouse_metric(benchmark: Any) -> None:
    metric = ClickHouseRows().metric

    def run() -> None:
        for _, name, value, level, attrs in METRICS:
            metric(NOW, name, value, KINDS[level], attrs)

    per_row(benchmark, run, len(METRICS))


@pytest.mark.benchmark(group="encode a row")
def test_encode_otlp_json_event(benchmark: Any) -> None:
    from automagik_telemetry.rows.otlp_json import OtlpJsonRows

    span = OtlpJsonRows().span

    def run() -> None:
        for _, name, _, _, attrs in EVENTS:
            span(NOW, name, attrs, None)

    per_row(benchmark, run, len(EVENTS))


@pytest.mark.benchmark(group="encode a row")
def test_encode_otlp_protobuf_event(benchmark: Any) -> None:
    from automagik_telemetry.rows.otlp_protobuf import OtlpProtobufRows

    span = OtlpProtobufRows().span

    def run() -> None:
        for _, name, _, _, attrs in EVENTS:
            span(NOW, name, attrs, None)

    per_row(benchmark, run, len(EVENTS))


@pytest.mark.benchmark(group="encode a row")
def test_encode_otlp_compact_event(benchmark: Any) -> None:
    """What the calling thread does for OTLP (``otlp_encode_in="writer"``, the default)."""
    from automagik_telemetry.rows.compact import CompactRows

    span = CompactRows().span

    def run() -> None:
        for _, name, _, _, attrs in EVENTS:
            span(NOW, name, attrs, None)

    per_row(benchmark, run, len(EVENTS))


# --- the ring ---------------------------------------------------------------------------------


@pytest.mark.benchmark(group="ring put")
def test_ring_put(benchmark: Any) -> None:
    segment = create_segment(64 * 1024 * 1024)
    writer, reader = RingWriter(segment), RingReader(segment)
    encoder = ClickHouseRows()
    rows = [bytes(encoder.span(NOW, name, attrs, None)) for _, name, _, _, attrs in EVENTS]
    append = writer.appenders[KIND_TRACE]

    def drain() -> None:
        _, head = reader.available(KIND_TRACE)
        reader.advance(KIND_TRACE, head)
        reader.commit(KIND_TRACE, head)

    def run() -> None:
        for row in rows:
            if not append(row):
                drain()
                append(row)

    try:
        per_row(benchmark, run, len(rows))
    finally:
        writer.release()
        reader.release()
        segment.close()
        segment.unlink()


# --- batch framing ----------------------------------------------------------------------------


@pytest.mark.benchmark(group="frame a batch (10,000 rows)")
def test_frame_clickhouse_batch(benchmark: Any) -> None:
    body = clickhouse_batch()
    suffix = clickhouse_row_suffixes(RESOURCE)[KIND_TRACE]
    per_row(benchmark, lambda: complete_rows(body, suffix), 10_000, rounds=50)


@pytest.mark.benchmark(group="frame a batch (10,000 rows)")
def test_cut_batch_at_row_boundary(benchmark: Any) -> None:
    body = clickhouse_batch()
    per_row(benchmark, lambda: split_lines(body, len(body) // 2), 10_000, rounds=50)


@pytest.mark.benchmark(group="frame a batch (10,000 rows)")
def test_frame_otlp_json_batch(benchmark: Any) -> None:
    from automagik_telemetry.rows.otlp_json import OtlpJsonRows, json_resource, json_scope
    from automagik_telemetry.sinks.otlp.framing import frame_json, json_envelope

    encoder = OtlpJsonRows()
    ops = [op for op in operations(Workload(count=20_000)) if op[0] == EVENT][:10_000]
    body = b"".join(bytes(encoder.span(NOW, n, a, None)) for _, n, _, _, a in ops)
    prefix, suffix = json_envelope(KIND_TRACE, json_resource(RESOURCE), json_scope())
    per_row(benchmark, lambda: frame_json(prefix, suffix, body), 10_000, rounds=50)


@pytest.mark.benchmark(group="frame a batch (10,000 rows)")
@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
def test_frame_otlp_compact_batch(benchmark: Any, protocol: str) -> None:
    """The writer's side of compact rows: decode the batch, spell every row out, frame."""
    from automagik_telemetry.rows.compact import CompactRows
    from automagik_telemetry.rows.otlp_json import json_resource
    from automagik_telemetry.rows.otlp_protobuf import protobuf_resource
    from automagik_telemetry.settings import OtlpSettings, WriterSettings
    from automagik_telemetry.sinks.otlp.sink import OtlpSink
    from automagik_telemetry.transport import HttpClient

    protobuf = protocol == "http/protobuf"
    otlp = OtlpSettings(
        endpoints=("http://r/v1/traces", "http://r/v1/metrics", "http://r/v1/logs"),
        protocol=protocol,
        resource=protobuf_resource(RESOURCE) if protobuf else json_resource(RESOURCE),
    )
    settings = WriterSettings(
        segment="unused", producer_pid=1, sink=otlp, batch_size=100, flush_interval=1.0,
        max_batch_bytes=64 << 20, timeout=5.0, max_retries=1, retry_backoff_base=0.1,
        compression="none", compression_threshold=1024, record_format="sized",
    )  # fmt: skip
    sink = OtlpSink.from_settings(settings, HttpClient(5.0))
    encoder = CompactRows()
    ops = [op for op in operations(Workload(count=20_000)) if op[0] == EVENT][:10_000]
    body = b"".join(bytes(encoder.span(NOW, n, a, None)) for _, n, _, _, a in ops)
    per_row(benchmark, lambda: sink.frame(KIND_TRACE, body), 10_000, rounds=20)
    sink.close()


# --- codecs -----------------------------------------------------------------------------------


@pytest.mark.benchmark(group="compress a batch (10,000 ClickHouse rows, shared columns added)")
@pytest.mark.parametrize("name", ["none", "gzip", "lz4", "zstd"])
def test_codec(benchmark: Any, name: str) -> None:
    body = complete_rows(clickhouse_batch(), clickhouse_row_suffixes(RESOURCE)[KIND_TRACE])
    compress = codec(name).compress
    wire = compress(body)
    per_row(benchmark, lambda: compress(body), 10_000, rounds=20)
    benchmark.extra_info["ratio"] = len(body) / len(wire)
    benchmark.extra_info["mb_per_s"] = len(body) / benchmark.stats.stats.median / 1e6
