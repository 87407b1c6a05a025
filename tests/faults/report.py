"""The fault suite's report: per scenario, rows sent, rows stored, duplicates, time to recover;
for the scenarios at speed also the rate held, the drops by reason, the spool's peak and the
time to drain; and the producer's cost per track call while the server is down against healthy.

Tests fill a :class:`ScenarioRecord` (the ``scenario`` fixture in ``conftest.py``) *before* they
assert, so a failing scenario still shows what happened. ``conftest.py`` adds each test's
outcome and, at the end of the session, :func:`write_markdown` writes ``bench/results/faults.md``:

    python -m pytest tests/faults -p no:cacheprovider
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
RESULTS: Final = ROOT / "bench" / "results" / "faults.md"


@dataclass
class ScenarioRecord:
    """What one fault scenario did. ``stored`` is count() of the table, ``distinct`` the numbers
    found (uniqExact), ``duplicates`` the extra copies (stored - distinct)."""

    nodeid: str
    title: str = ""
    backend: str = "clickhouse 18.16"
    guarantee: str = ""  # exactly once | at least once | ...
    sent: int | None = None
    stored: int | None = None
    distinct: int | None = None
    duplicates: int | None = None
    missing: int | None = None
    dropped: int | None = None  # rows the engine counted as dropped (spool full, ...)
    drops_by_reason: dict[str, int] | None = None  # get_status()["dropped"] at the end
    rate: float | None = None  # track_event calls per second the producer held (at speed)
    spool_peak_bytes: int | None = None  # the largest spool get_status() reported
    spool_peak_disk_bytes: int | None = None  # the largest spool sampled on disk
    recover_s: float | None = None  # fault cleared -> every number queryable
    recover_note: str = ""  # what the time to recover is measured from
    drain_s: float | None = None  # fault ended -> every number tracked by then queryable
    notes: list[str] = field(default_factory=list)
    outcome: str = "not run"

    def note(self, text: str) -> None:
        self.notes.append(text)


@dataclass
class ProducerCost:
    """Median nanoseconds per track_event, healthy and with the server down, same client."""

    healthy_ns: float
    down_ns: float
    calls: int  # calls measured per phase
    chunk: int  # calls per timed chunk (the median is over chunks)
    healthy_p90_ns: float = 0.0
    down_p90_ns: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.down_ns / self.healthy_ns if self.healthy_ns else float("inf")


class FaultReport:
    def __init__(self) -> None:
        self.scenarios: dict[str, ScenarioRecord] = {}
        self.producer: ProducerCost | None = None

    def scenario(self, nodeid: str, title: str) -> ScenarioRecord:
        record = self.scenarios.setdefault(nodeid, ScenarioRecord(nodeid, title))
        record.title = title
        return record

    def set_outcome(self, nodeid: str, outcome: str) -> None:
        record = self.scenarios.get(nodeid)
        if record is not None and record.outcome in ("not run", "passed"):
            record.outcome = outcome


REPORT: Final = FaultReport()


def median_and_p90(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def _reasons(drops: dict[str, int] | None) -> str:
    if drops is None:
        return "-"
    return ", ".join(f"{reason} {count}" for reason, count in sorted(drops.items())) or "none"


def _spool_peak(record: ScenarioRecord) -> str:
    engine, disk = record.spool_peak_bytes, record.spool_peak_disk_bytes
    if engine is None and disk is None:
        return "-"
    if engine is None:
        return f"{disk} (on disk; not in get_status)"
    return str(engine) if disk is None else f"{engine} (on disk {disk})"


def render_markdown(report: FaultReport) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Fault suite",
        "",
        f"`python -m pytest tests/faults -p no:cacheprovider`, {now}, {platform.node()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}. Written by "
        "`tests/faults/report.py`.",
        "",
        'Each scenario tracks uniquely numbered rows (`track_event(f"n{i}")`, column '
        "`span_name`) and counts them in the table: *stored* is `count()`, *distinct* "
        "`uniqExact(span_name)`, *duplicates* the extra copies (`stored - distinct`), *missing* "
        "the numbers sent and not found. *Time to recover*: from the moment the fault was "
        "cleared (server restarted or resumed, table created, ...) until every number was "
        "queryable, polled every 50 ms. Debian's ClickHouse 18.16 has no "
        "`insert_deduplication_token`, so scenarios that can re-send a batch after the server "
        "took it are at-least-once there; exactly-once cases run on the embedded engine (chdb) "
        "with the current schema too.",
        "",
        "The scenarios *at speed* (`test_at_speed.py`) track from one process at 50,000 events/s "
        "(bursts of 5,000 every 0.1 s, paced against the clock) with default settings: *rate* "
        'is the calls per second the producer held, *drops by reason* `get_status()["dropped"]` '
        "at the end, *spool peak* the largest spool `get_status()` reported while sampled every "
        "0.5 s (and the largest sampled on disk), *drain* the seconds from the end of the fault "
        "until every number tracked by then was queryable (the producer goes on tracking).",
        "",
        "| scenario | backend | guarantee | rate (events/s) | rows sent | rows stored | distinct "
        "| duplicates | missing | dropped (counted) | drops by reason | spool peak (bytes) "
        "| time to recover (s) | drain (s) | result | notes |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for record in report.scenarios.values():
        recover = _cell(record.recover_s)
        if record.recover_note and record.recover_s is not None:
            recover += f" ({record.recover_note})"
        lines.append(
            "| "
            + " | ".join(
                [
                    _cell(record.title or record.nodeid),
                    _cell(record.backend),
                    _cell(record.guarantee),
                    "-" if record.rate is None else f"{record.rate:,.0f}",
                    _cell(record.sent),
                    _cell(record.stored),
                    _cell(record.distinct),
                    _cell(record.duplicates),
                    _cell(record.missing),
                    _cell(record.dropped),
                    _cell(_reasons(record.drops_by_reason)),
                    _cell(_spool_peak(record)),
                    recover,
                    _cell(record.drain_s),
                    _cell(record.outcome.upper() if record.outcome != "passed" else "passed"),
                    _cell("; ".join(record.notes)),
                ]
            )
            + " |"
        )
    cost = report.producer
    lines += ["", "## Producer cost per track_event while the server is down", ""]
    if cost is None:
        lines.append("Not measured in this run.")
    else:
        verdict = "within" if cost.ratio <= 2.0 else "NOT within"
        lines += [
            f"Same client, same run: {cost.calls} calls per phase, timed in chunks of "
            f"{cost.chunk} calls (`time.perf_counter_ns` around each chunk); the figure is the "
            "median over chunks of nanoseconds per call. The server is a Debian ClickHouse "
            "18.16 on the same 2-core machine (healthy: it takes CPU inserting; down: it was "
            "SIGKILLed and the writer spools to disk).",
            "",
            "| phase | median ns/call | p90 ns/call |",
            "|---|---:|---:|",
            f"| server healthy | {cost.healthy_ns:.0f} | {cost.healthy_p90_ns:.0f} |",
            f"| server down (writer spooling) | {cost.down_ns:.0f} | {cost.down_p90_ns:.0f} |",
            "",
            f"Ratio down / healthy: **{cost.ratio:.2f}x** ({verdict} the 2x bound).",
        ]
        lines += [f"- {note}" for note in cost.notes]
    return "\n".join(lines) + "\n"


def write_markdown(report: FaultReport = REPORT, path: Path = RESULTS) -> Path | None:
    if not report.scenarios and report.producer is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(report), encoding="utf-8")
    return path
