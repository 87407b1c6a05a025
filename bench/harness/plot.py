"""The README's picture: events/s landed and producer cost per call, per system (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .adapters import FLOOR, OURS


def _color(name: str) -> str:
    if name in OURS:
        return "#2b6cb0"
    if name == FLOOR:
        return "#a0aec0"
    return "#dd6b20"


def plot(results: dict[str, Any], path: Path) -> Path:
    """Two horizontal bar charts (log scale). Needs matplotlib (a pinned peer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems: dict[str, dict[str, Any]] = results["systems"]
    names = list(systems)
    figs = [systems[n].get("figures", {}) for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.45 * len(names) + 2.2))
    y = list(range(len(names)))[::-1]

    rates = [f.get("events_per_s_landed") or 0 for f in figs]
    left.barh(y, rates, color=[_color(n) for n in names])
    left.set_xscale("log")
    left.set_yticks(y, names)
    left.set_xlabel("events per second landed (log scale; floor: put rate)")
    for yi, rate in zip(y, rates, strict=True):
        if rate:
            left.text(rate, yi, f" {rate:,.0f}", va="center", fontsize=8)
    if any(rates):
        left.set_xlim(right=max(rates) * 8)

    medians = [f.get("producer_ns_median") or 0 for f in figs]
    p99s = [f.get("producer_ns_p99") or 0 for f in figs]
    right.barh(y, medians, color=[_color(n) for n in names], label="median")
    right.scatter(p99s, y, color="black", marker="|", s=120, label="p99", zorder=3)
    right.set_xscale("log")
    right.set_yticks(y, [""] * len(names))
    right.set_xlabel("producer cost per call, ns (log scale; bar: median, tick: p99)")
    right.legend(loc="lower right", fontsize=8)
    for yi, median, p99 in zip(y, medians, p99s, strict=True):
        if median:
            right.text(max(median, p99) * 1.15, yi, f"{median:,.0f}", va="center", fontsize=8)
    if any(p99s):
        right.set_xlim(right=max(p99s) * 12)

    w = results["workload"]
    fig.suptitle(
        f"automagik-telemetry bench: {w['count']:,} calls, batch_size {w['batch_size']}, "
        f"{w['threads']} thread(s) — {results['machine']['summary']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
