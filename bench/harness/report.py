"""Tables of the figures, each value also as a ratio to every peer measured in the same run.

Tables are Markdown (pipes), readable in a terminal and pasted as is into the README."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .peers import PEERS


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def fmt(value: Any, digits: int = 3) -> str:
    """A number with ``digits`` significant digits and thousands separators."""
    number = _num(value)
    if number is None:
        return "n/a" if value is None else str(value)
    if number == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(number)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{number:,.{decimals}f}"


@dataclass(frozen=True)
class Column:
    title: str
    get: Callable[[dict[str, Any]], Any]
    digits: int = 3


@dataclass(frozen=True)
class Figure:
    key: str
    title: str
    better: str  # "lower" or "higher": the direction of the first column
    columns: tuple[Column, ...]
    note: str = ""


def _get(*path: str) -> Callable[[dict[str, Any]], Any]:
    def get(system: dict[str, Any]) -> Any:
        value: Any = system
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    return get


def _mib(*path: str) -> Callable[[dict[str, Any]], Any]:
    get = _get(*path)

    def mib(system: dict[str, Any]) -> Any:
        value = _num(get(system))
        return None if value is None else value / 2**20

    return mib


FIGURES: tuple[Figure, ...] = (
    Figure(
        "producer",
        "Producer cost per call on the calling thread",
        "lower",
        (
            Column("median ns", _get("figures", "producer_ns_median")),
            Column("p99 ns", _get("figures", "producer_ns_p99")),
            Column("p99.9 ns", _get("figures", "producer_ns_p999")),
        ),
        "Every call timed with perf_counter_ns (the cost of an empty timed region subtracted).",
    ),
    Figure(
        "landed",
        "Events per second landed (counted at the destination)",
        "higher",
        (
            Column("events/s", _get("figures", "events_per_s_landed")),
            Column("sent", _get("figures", "calls")),
            Column("landed", _get("figures", "landed")),
            Column("lost", _get("figures", "lost")),
            Column("stored twice", _get("figures", "duplicates")),
            Column("drops it reported", _get("figures", "dropped_reported")),
        ),
        "Landed rows over the time from the first call until the destination's count reached "
        "its final value. Lost and stored twice: sent minus landed, counted at the "
        "destination. The floor's figure is its put rate (nothing lands anywhere).",
    ),
    Figure(
        "roundtrip",
        "Batch round trip: batch_size calls, then flush until the system confirms",
        "lower",
        (
            Column("p50 ms", _get("figures", "roundtrip_ms_p50")),
            Column("p99 ms", _get("figures", "roundtrip_ms_p99")),
        ),
    ),
    Figure(
        "latency",
        "Event-to-queryable latency at a fixed low rate (default settings, no flush)",
        "lower",
        (
            Column("p50 ms", _get("figures", "latency_ms_p50")),
            Column("p99 ms", _get("figures", "latency_ms_p99")),
            Column("seen", _get("figures", "latency_seen")),
        ),
        "Send time on the application's clock to the first poll of the destination that "
        "returned the event (ClickHouse polled every 10 ms; the receiver stamps arrivals).",
    ),
    Figure(
        "wire",
        "Bytes on the wire per event",
        "lower",
        (
            Column("bytes/event", _get("figures", "wire_bytes_per_event")),
            Column("codec", _get("figures", "codec")),
        ),
        "OTLP: request bodies counted by the receiver. ClickHouse: ours, the engine's count "
        "of request bodies; peers, every byte sent on their sockets (headers included). On "
        "loopback ours sends uncompressed by design (compression='auto'); see the codec table.",
    ),
    Figure(
        "cpu",
        "CPU per event",
        "lower",
        (
            Column("writer µs/event", _get("figures", "writer_cpu_us_per_event")),
            Column("total µs/event", _get("figures", "total_cpu_us_per_event")),
        ),
        "Writer: our writer process, or the peer's CPU outside the calling threads. Total: "
        "application process (calling threads included) plus writer process.",
    ),
    Figure(
        "memory",
        "Peak memory of the application process",
        "lower",
        (
            Column("peak RSS MiB", _mib("figures", "peak_rss_bytes")),
            Column("growth MiB", _mib("figures", "rss_growth_bytes")),
            Column("writer peak MiB", _mib("figures", "writer_peak_rss_bytes")),
        ),
        "Peak RSS of the process making the calls (VmHWM), and its growth over the RSS "
        "just before the first call (the workload's own data is in both). Ours maps the "
        "shared-memory ring (MAP_POPULATE) into the application, and delivers from a writer "
        "process shown separately.",
    ),
)


def ratio_peers(results: dict[str, Any]) -> list[str]:
    return [name for name in PEERS if name in results["systems"]]


def figure_table(figure: Figure, results: dict[str, Any]) -> str:
    systems: dict[str, dict[str, Any]] = results["systems"]
    peers = [p for p in ratio_peers(results) if _num(figure.columns[0].get(systems[p]))]
    arrow = "↓" if figure.better == "lower" else "↑"
    header = ["system", *(f"{c.title}" for c in figure.columns)]
    header += [f"÷ {p}" for p in peers]
    lines = [
        f"**{figure.title}** ({arrow} better; ratios: first column ÷ the peer's)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    for name, system in systems.items():
        values = [c.get(system) for c in figure.columns]
        if all(_num(v) is None for v in values[:1]):
            reason = system.get("figures", {}).get(f"{figure.key}_note")
            if not reason:
                continue
            cells = [name, reason] + [""] * (len(header) - 2)
            lines.append("| " + " | ".join(cells) + " |")
            continue
        first = _num(values[0])
        ratios = []
        for peer in peers:
            base = _num(figure.columns[0].get(systems[peer]))
            ratios.append(
                "—" if peer == name or first is None or not base else f"{first / base:.3g}×"  # noqa: RUF001
            )
        cells = [name, *(fmt(v, c.digits) for v, c in zip(values, figure.columns, strict=True))]
        lines.append("| " + " | ".join([*cells, *ratios]) + " |")
    if figure.note:
        lines += ["", figure.note]
    return "\n".join(lines)


def codec_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "**Compression per codec** (this workload's rows, engine codecs)",
        "",
        "| format | rows/batch | codec | bytes/event | ratio | saved | compress ns/event | MB/s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['format']} | | {row['codec']} | {row['error']} | | | | |")
            continue
        lines.append(
            f"| {row['format']} | {row['batch_rows']:,} | {row['codec']} | "
            f"{fmt(row['wire_bytes_per_event'])} | {fmt(row['ratio'])} | "
            f"{row['saved_percent']:.0f}% | {fmt(row['compress_ns_per_event'])} | "
            f"{fmt(row['compress_mb_per_s'])} |"
        )
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    """Every table of a run, with the run's context first."""
    w = results["workload"]
    pace = "unthrottled" if not w["rate"] else f"{w['rate']:,.0f} calls/s"
    parts = [
        f"Machine: {results['machine']['summary']}.",
        "Destinations: " + "; ".join(results["destinations"].values()) + ".",
        f"Workload: {w['count']:,} calls ({results['workload_counts']}), "
        f"{pace}, {w['threads']} "
        f"thread(s), batch_size {w['batch_size']}; round trips: {results['options']['rounds']} "
        f"batches; latency: {results['options']['latency_rate']:g}/s for "
        f"{results['options']['latency_seconds']:g} s.",
    ]
    for figure in FIGURES:
        parts.append(figure_table(figure, results))
    if results.get("codecs"):
        parts.append(codec_markdown(results["codecs"]))
    if results.get("skipped"):
        parts.append(
            "Not measured: "
            + "; ".join(f"{name}: {why}" for name, why in results["skipped"].items())
            + "."
        )
    if results.get("problems"):
        parts.append("Problems seen: " + "; ".join(results["problems"]) + ".")
    return "\n\n".join(parts) + "\n"
