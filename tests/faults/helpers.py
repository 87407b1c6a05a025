"""What every fault scenario does: number rows, track them without letting anything raise into
the test, wait for them to land, and count them (present, duplicated, missing)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.local_clickhouse import LocalClickHouse
from tests.support import ClickHouseDatabase, process_alive

# Small, fast settings: several batches per scenario, failures noticed within a second.
FAST: dict[str, Any] = {
    "batch_size": 200,
    "flush_interval": 0.05,
    "timeout": 1.0,
    "max_retries": 2,
    "retry_backoff_base": 0.05,
}
POLL = 0.05


def numbers(count: int, prefix: str = "n", start: int = 0) -> list[str]:
    return [f"{prefix}{i}" for i in range(start, start + count)]


@dataclass
class Tracker:
    """Tracks rows and keeps whatever a track call raised (nothing should)."""

    client: AutomagikTelemetry
    raised: list[BaseException] = field(default_factory=list)
    sent: int = 0

    def track(self, names: Iterable[str], *, pace_every: int = 0, pause: float = 0.0) -> None:
        """``track_event(name)`` for each name; with ``pace_every``, sleep ``pause`` after every
        that many calls (so the writer cuts several batches while the fault happens)."""
        for index, name in enumerate(names, 1):
            try:
                self.client.track_event(name)
            except BaseException as exc:  # the contract: nothing raises into the caller
                self.raised.append(exc)
            self.sent += 1
            if pace_every and index % pace_every == 0:
                time.sleep(pause)

    def call(self, what: Callable[[], Any]) -> Any:
        try:
            return what()
        except BaseException as exc:
            self.raised.append(exc)
            return None


@dataclass
class Tally:
    """Rows of the table against the numbers sent."""

    expected: int
    stored: int
    distinct: int
    duplicated_names: int  # names stored more than once
    missing: list[str]
    unexpected: list[str]

    @property
    def duplicates(self) -> int:
        """Extra copies: rows stored beyond one per name."""
        return self.stored - self.distinct

    @classmethod
    def of(cls, counts: Counter[str], expected: Iterable[str]) -> Tally:
        wanted = set(expected)
        return cls(
            expected=len(wanted),
            stored=sum(counts.values()),
            distinct=len(counts),
            duplicated_names=sum(1 for c in counts.values() if c > 1),
            missing=sorted(wanted - counts.keys(), key=_number_key),
            unexpected=sorted(counts.keys() - wanted, key=_number_key),
        )

    def summary(self) -> str:
        return (
            f"stored={self.stored} distinct={self.distinct} duplicates={self.duplicates} "
            f"missing={len(self.missing)} {self.missing[:10]} unexpected={self.unexpected[:10]}"
        )


def _number_key(name: str) -> tuple[str, int]:
    digits = name.lstrip("abcdefghijklmnopqrstuvwxyz")
    prefix = name[: len(name) - len(digits)]
    return (prefix, int(digits) if digits.isdigit() else -1)


class FaultDatabase(ClickHouseDatabase):
    """A fresh database with the legacy schema on a fault server, with exact row counts."""

    def names(self, table: str = "traces") -> Counter[str]:
        text = self.query(
            f"SELECT span_name, count() FROM {self.name}.{table} GROUP BY span_name "
            "FORMAT TabSeparated"
        )
        counts: Counter[str] = Counter()
        for line in text.splitlines():
            if line:
                name, count = line.rsplit("\t", 1)
                counts[name] = int(count)
        return counts

    def tally(self, expected: Iterable[str], table: str = "traces") -> Tally:
        """The counts, with the queries of the brief as a cross-check of the Python tally.
        Taken once the table's count stays the same for a second: an insert that timed out
        while the server was stopped may still land after the flush (at least once, 18.16)."""
        self.settle(table)
        tally = Tally.of(self.names(table), expected)
        stored, distinct = self.query(
            f"SELECT count(), uniqExact(span_name) FROM {self.name}.{table}"
        ).split("\t")
        repeated = self.query(
            f"SELECT span_name, count() FROM {self.name}.{table} GROUP BY span_name "
            "HAVING count() > 1"
        )
        assert (int(stored), int(distinct)) == (tally.stored, tally.distinct)
        assert len([x for x in repeated.splitlines() if x]) == tally.duplicated_names
        return tally

    def settle(self, table: str = "traces", timeout: float = 30.0) -> None:
        """Wait until the table's count has not changed for a second (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        last = self.query(f"SELECT count() FROM {self.name}.{table}")
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.query(f"SELECT count() FROM {self.name}.{table}")
            if now == last:
                return
            last = now

    def distinct(self, table: str = "traces") -> int:
        try:
            return int(self.query(f"SELECT uniqExact(span_name) FROM {self.name}.{table}"))
        except Exception:  # the server may be down or starting
            return -1

    def wait_distinct(self, count: int, timeout: float, table: str = "traces") -> float | None:
        """Seconds until ``count`` distinct names are queryable, None if not within timeout."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.distinct(table) >= count:
                return time.monotonic() - started
            time.sleep(POLL)
        return None


def ensure_running(server: LocalClickHouse) -> None:
    """Bring a fault server back to normal after a test that left it down or stopped."""
    if server.paused:
        server.resume()
    if not server.running:
        server.restart()


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = POLL) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def spool_files(spool_root: Path) -> list[Path]:
    """Batch files (claimed or not) under a spool root, all destinations."""
    if not spool_root.exists():
        return []
    return sorted(p for p in spool_root.rglob("*.batch*") if p.is_file())


def reap_writer(pid: int | None, timeout: float = 15.0) -> bool:
    """Wait for a writer process to exit; SIGKILL it (by its pid) if it outlives ``timeout``.
    True if it exited by itself."""
    if not pid:
        return True
    if wait_until(lambda: not process_alive(pid), timeout):
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return False


def embedded_tally(path: Path, expected: list[str]) -> Tally:
    """Count the rows of an embedded database (its writer must have exited: one process at a
    time may open it)."""
    from chdb import session as chdb_session

    open_session: Any = chdb_session.Session  # chdb ships no type information
    session = open_session(str(path))
    try:
        text = session.query(
            "SELECT span_name, count() FROM telemetry.traces GROUP BY span_name", "TabSeparated"
        ).bytes().decode()  # fmt: skip
        check = session.query(
            "SELECT count(), uniqExact(span_name) FROM telemetry.traces", "TabSeparated"
        ).bytes().decode()  # fmt: skip
    finally:
        session.close()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if line:
            name, count = line.rsplit("\t", 1)
            counts[name] = int(count)
    tally = Tally.of(counts, expected)
    assert tuple(int(x) for x in check.split()) == (tally.stored, tally.distinct)
    return tally
