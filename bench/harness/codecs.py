"""Bytes on the wire per codec, for this workload's own rows.

The rows are encoded by the engine's encoders (ClickHouse JSONEachRow rows completed with the
shared columns, as the writer sends them; OTLP/JSON rows), cut into batches, and compressed with
the engine's codecs (``transport.codec``: gzip level 1, lz4 frame, zstd level 1). This is the
"bandwidth saved" figure for every codec, including those the server in use does not read
(Debian's 18.16 reads only gzip and deflate; the loopback OTLP receiver likewise)."""

from __future__ import annotations

import time
from typing import Any

from automagik_telemetry.resource import Resource
from automagik_telemetry.rows.clickhouse import (
    ClickHouseRows,
    clickhouse_row_suffixes,
    complete_rows,
)
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.transport import codec

from .workload import EVENT, LOG_LEVELS, METRIC, METRIC_TYPES, Op, Workload, operations

CODECS = ("none", "gzip", "lz4", "zstd")


def _clickhouse_rows(ops: list[Op]) -> list[list[bytes]]:
    rows = ClickHouseRows()
    suffixes = clickhouse_row_suffixes(Resource.detect("bench", "1.0.0", "namastex", "bench"))
    metric_types = [MetricType(n) for n in METRIC_TYPES]
    levels = [LogSeverity[n.upper()] for n in LOG_LEVELS]
    out: list[list[bytes]] = [[], [], []]
    now = time.time_ns()
    for kind, name, value, level, attrs in ops:
        if kind == EVENT:
            row = bytes(rows.span(now, name, attrs, None))
        elif kind == METRIC:
            row = bytes(rows.metric(now, name, value, metric_types[level], attrs))
        else:
            row = bytes(rows.log(now, name, levels[level], attrs))
        out[kind].append(complete_rows(row, suffixes[kind]))
    return out


def _otlp_json_rows(ops: list[Op]) -> list[list[bytes]] | None:
    try:
        from automagik_telemetry.config import TelemetryConfig
        from automagik_telemetry.sinks.otlp.encode import otlp_row_encoder

        config = TelemetryConfig(
            project_name="bench", version="1.0.0", backend="otlp",
            endpoint="http://127.0.0.1:4318", otlp_protocol="http/json", enabled=False,
        )  # fmt: skip
        resource = Resource.detect("bench", "1.0.0", "namastex", "bench")
        rows: Any = otlp_row_encoder(config, resource)
    except Exception:
        return None
    metric_types = [MetricType(n) for n in METRIC_TYPES]
    levels = [LogSeverity[n.upper()] for n in LOG_LEVELS]
    out: list[list[bytes]] = [[], [], []]
    now = time.time_ns()
    try:
        for kind, name, value, level, attrs in ops:
            if kind == EVENT:
                row = bytes(rows.span(now, name, attrs, None))
            elif kind == METRIC:
                row = bytes(rows.metric(now, name, value, metric_types[level], attrs))
            else:
                row = bytes(rows.log(now, name, levels[level], attrs))
            out[kind].append(row)
    except Exception:
        return None
    return out


def _batches(per_kind: list[list[bytes]], rows_per_batch: int) -> list[bytes]:
    batches = []
    for rows in per_kind:
        for i in range(0, len(rows), rows_per_batch):
            batches.append(b"".join(rows[i : i + rows_per_batch]))
    return batches


def codec_table(workload: Workload, sample: int = 20_000) -> list[dict[str, Any]]:
    """One row per (format, batch size, codec): ratio, bytes per event, saving, speed."""
    ops = operations(workload, count=min(sample, max(workload.count, 1000)))
    formats = {"ClickHouse JSONEachRow": _clickhouse_rows(ops)}
    otlp = _otlp_json_rows(ops)
    if otlp is not None:
        formats["OTLP/JSON"] = otlp
    table: list[dict[str, Any]] = []
    for fmt, per_kind in formats.items():
        events = sum(len(rows) for rows in per_kind)
        for rows_per_batch in sorted({workload.batch_size, 10_000}):
            batches = _batches(per_kind, rows_per_batch)
            raw = sum(len(b) for b in batches)
            for name in CODECS:
                try:
                    compress = codec(name).compress
                except Exception as exc:  # zstandard missing
                    table.append({"format": fmt, "codec": name, "error": str(exc)})
                    continue
                started = time.perf_counter()
                wire = sum(len(compress(b)) for b in batches)
                elapsed = time.perf_counter() - started
                table.append(
                    {
                        "format": fmt,
                        "batch_rows": rows_per_batch,
                        "codec": name,
                        "raw_bytes_per_event": raw / events,
                        "wire_bytes_per_event": wire / events,
                        "ratio": raw / wire if wire else float("nan"),
                        "saved_percent": 100.0 * (1 - wire / raw) if raw else float("nan"),
                        "compress_ns_per_event": elapsed / events * 1e9,
                        "compress_mb_per_s": raw / elapsed / 1e6 if elapsed else float("nan"),
                    }
                )
    return table
