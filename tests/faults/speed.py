"""What the scenarios at speed share: a producer thread that holds 50,000 track_event calls a
second against the clock, a sampler of ``get_status()`` and of the spool on disk, a watcher of
what lands at the destination, and a reader of the spool's files.

The producer numbers its rows (``n0``, ``n1``, ...) so that the destination can be counted by
query: missing rows, rows stored twice, and how long the rows tracked before some moment took to
become queryable.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import lz4.frame

from automagik_telemetry import AutomagikTelemetry
from tests.faults.helpers import FaultDatabase

RATE: Final = 50_000  # track_event calls per second
BURST: Final = 5_000  # calls per burst; a burst every BURST / RATE = 0.1 s
# Reasons for which the producer drops (the row never entered the ring), against those of the
# writer (the row was in the ring, or spooled, and was given up).
PRODUCER_REASONS: Final = frozenset({"ring_full", "writer_stuck", "writer_gone",
                                     "spool_unwritable"})  # fmt: skip
# A spool is replayed once a probe finds the destination back (README: probes pause up to
# 30 s): landing that stalls longer than this after a fault is given up on.
STALL_S: Final = 35.0
# get_status() keys of the spool that issue 11 adds (read with .get: absent before it lands)
SPOOL_KEYS: Final = ("spool_bytes", "spool_batches", "spool_peak_bytes", "spill_bytes_per_s",
                     "spooled_oldest_age_s", "resent_after_timeout")  # fmt: skip


class Producer:
    """``track_event(f"{prefix}{i}")`` from one thread, ``burst`` calls every ``burst / rate``
    seconds for ``seconds``, each burst due at a fixed time from the start (a burst that
    starts late is followed by the next at once, so the rate holds over the run unless the
    calls themselves wait). Whatever a call raises is kept in ``raised``."""

    def __init__(
        self, client: AutomagikTelemetry, seconds: float, *, rate: int = RATE,
        burst: int = BURST, prefix: str = "n",
    ) -> None:  # fmt: skip
        self.client = client
        self.burst = burst
        self.interval = burst / rate
        self.bursts = round(seconds * rate / burst)
        self.prefix = prefix
        self.sent = 0  # rows n0 .. n{sent-1} were tracked (set after each burst)
        self.raised: list[BaseException] = []
        self.longest_burst = 0.0  # seconds, of the slowest burst of calls
        self.busy = 0.0  # seconds spent inside track calls
        self.started = 0.0
        self.ended = 0.0
        self._thread = threading.Thread(target=self._run, name="at-speed-producer", daemon=True)

    def start(self) -> Producer:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def at(self, offset: float) -> float:
        """Sleep until ``offset`` seconds after the start; the time then."""
        delay = self.started + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return time.monotonic()

    def _run(self) -> None:
        track = self.client.track_event
        prefix, burst, raised = self.prefix, self.burst, self.raised
        clock = time.perf_counter
        for k in range(self.bursts):
            delay = self.started + k * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            first = self.sent
            began = clock()
            for i in range(first, first + burst):
                try:
                    track(f"{prefix}{i}")
                except BaseException as exc:  # the contract: nothing raises into the caller
                    raised.append(exc)
            took = clock() - began
            self.busy += took
            self.longest_burst = max(self.longest_burst, took)
            self.sent = first + burst
        # the run lasts at least its schedule (the last burst is due one interval before it ends)
        self.ended = max(time.monotonic(), self.started + self.bursts * self.interval)

    def join(self, timeout: float = 120.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the producer is still tracking after {timeout} s"

    @property
    def done(self) -> bool:
        return self.ended > 0

    @property
    def rate(self) -> float:
        """Calls per second over the run (from the first burst to the end of the schedule or of
        the last burst, whichever is later)."""
        return self.sent / (self.ended - self.started) if self.done else 0.0

    def names(self) -> list[str]:
        return [f"{self.prefix}{i}" for i in range(self.sent)]

    def summary(self) -> str:
        return (
            f"{self.sent} calls at {self.rate:,.0f}/s, {self.busy:.2f} s inside track calls, "
            f"slowest burst of {self.burst} {self.longest_burst:.3f} s"
        )


def directory_bytes(root: Path) -> int:
    """Bytes of the files under ``root``, as the spool counts them: batches waiting or claimed
    for replay, not the temporary ones being written."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if ".tmp-" in name:
                continue
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(folder, name)).st_size
    return total


@dataclass
class StatusSampler:
    """``get_status()`` and the spool directory, sampled every ``every`` seconds in a thread of
    its own while in its ``with`` block (and once more at its end): the spool's peak as the
    engine reports it and as it is on disk, the ring's peak fill, the sink states seen."""

    client: AutomagikTelemetry
    spool_root: Path
    every: float = 0.5
    disk_every: float = 1.0  # walking the spool costs the producer's GIL: less often
    raised: list[BaseException] = field(default_factory=list)
    engine_peak: int | None = None  # max of spool_peak_bytes / spool_bytes, None if absent
    disk_peak: int = 0
    ring_peak: float = 0.0  # ring_fill
    states: Counter[str] = field(default_factory=Counter)
    spill_peak: float | None = None  # spill_bytes_per_s
    oldest_peak: float | None = None  # spooled_oldest_age_s
    keys_seen: set[str] = field(default_factory=set)
    last: dict[str, Any] = field(default_factory=dict)
    fs_free_min: int | None = None  # bytes free on the spool's filesystem (statvfs)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="status-sampler", daemon=True)
        self._last_disk = 0.0

    def __enter__(self) -> StatusSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample(disk=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            now = time.monotonic()
            disk = now - self._last_disk >= self.disk_every
            if disk:
                self._last_disk = now
            self.sample(disk=disk)

    def sample(self, *, disk: bool) -> None:
        try:
            status = self.client.get_status()
        except BaseException as exc:  # get_status must not raise either
            self.raised.append(exc)
            return
        self.last = status
        self.keys_seen.update(k for k in SPOOL_KEYS if k in status)
        for key in ("spool_peak_bytes", "spool_bytes"):
            value = status.get(key)
            if isinstance(value, int):
                self.engine_peak = max(self.engine_peak or 0, value)
        spill, oldest = status.get("spill_bytes_per_s"), status.get("spooled_oldest_age_s")
        if isinstance(spill, int | float):
            self.spill_peak = max(self.spill_peak or 0.0, float(spill))
        if isinstance(oldest, int | float):
            self.oldest_peak = max(self.oldest_peak or 0.0, float(oldest))
        self.ring_peak = max(self.ring_peak, float(status.get("ring_fill") or 0.0))
        self.states[str(status.get("sink_state"))] += 1
        if disk and self.spool_root.exists():
            self.disk_peak = max(self.disk_peak, directory_bytes(self.spool_root))
            with contextlib.suppress(OSError):
                fs = os.statvfs(self.spool_root)
                free = fs.f_bavail * fs.f_frsize
                self.fs_free_min = free if self.fs_free_min is None else min(free, self.fs_free_min)

    def summary(self) -> str:
        states = ", ".join(f"{state} x{count}" for state, count in self.states.most_common())
        spill = "-" if self.spill_peak is None else f"{self.spill_peak / 1e6:.1f} MB/s"
        oldest = "-" if self.oldest_peak is None else f"{self.oldest_peak:.1f} s"
        return (
            f"ring peak fill {self.ring_peak:.0%} (of the three signals' rings: 33% is the "
            f"traces ring full); sink states sampled: {states}; spill peak "
            f"{spill}; oldest spooled batch peak {oldest}; issue-11 keys in get_status: "
            f"{', '.join(sorted(self.keys_seen)) or 'none'}"
        )


@dataclass
class Landing:
    """Watches the table while rows land: ``count()`` (cheap) every 0.25 s and, when it says
    the counts may be there, the exact number of distinct names, in all and below ``mark``
    (the rows tracked before the fault ended). ``drain_s()`` is then how long after the end of
    the fault the rows below the mark took to be queryable, as far as they ever were."""

    db: FaultDatabase
    client: AutomagikTelemetry
    producer: Producer
    mark: int = 0
    fault_ended: float = 0.0
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # t, all, below mark
    counts: list[tuple[float, int]] = field(default_factory=list)  # t, count()

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self.complete = threading.Event()  # every name queryable or counted as dropped
        self._thread = threading.Thread(target=self._run, name="landing-watcher", daemon=True)

    def start(self, mark: int, fault_ended: float) -> Landing:
        """The fault ended at ``fault_ended``; names below ``mark`` were tracked by then."""
        self.mark, self.fault_ended = mark, fault_ended
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _query(self, sql: str) -> str | None:
        try:
            return self.db.server.query(sql, timeout=5.0).strip()
        except Exception:  # down, starting, or busy
            return None

    def _dropped(self) -> int:
        with contextlib.suppress(Exception):
            return int(self.client.get_status().get("dropped_total") or 0)
        return 0

    def exact(self) -> tuple[int, int] | None:
        table = f"{self.db.name}.traces"
        text = self._query(
            f"SELECT uniqExact(span_name), uniqExactIf(span_name, "
            f"toUInt64OrZero(substring(span_name, 2)) < {self.mark}) FROM {table}"
        )
        if text is None:
            return None
        every, below = text.split("\t")
        return int(every), int(below)

    def _run(self) -> None:
        last_exact = 0.0
        drained = False
        while not self._stop.wait(0.25):
            text = self._query(f"SELECT count() FROM {self.db.name}.traces")
            if text is None:
                continue
            now = time.monotonic()
            count = int(text)
            self.counts.append((now, count))
            dropped = self._dropped()
            wanted = [] if drained else [self.mark - dropped]
            if self.producer.done:
                wanted.append(self.producer.sent - dropped)
            if not wanted or count < min(wanted) or now - last_exact < 0.5:
                continue
            exact = self.exact()
            last_exact = time.monotonic()
            if exact is None:
                continue
            self.samples.append((last_exact, *exact))
            every, below = exact
            drained = drained or below >= self.mark - dropped
            if drained and self.producer.done and every >= self.producer.sent - dropped:
                self.complete.set()  # everything tracked is there, or counted as dropped
                return

    def settle(self, timeout: float, stall: float = STALL_S) -> bool:
        """After the producer is done: wait until every name is queryable or counted as
        dropped (True), or ``timeout`` passes, or ``count()`` has not moved for ``stall`` s."""
        deadline = time.monotonic() + timeout
        while not self.complete.wait(0.25):
            now = time.monotonic()
            if now > deadline or not self._thread.is_alive():
                return False
            moved = [t for (t, c), (_, p) in zip(self.counts[1:], self.counts, strict=False)
                     if c != p]  # fmt: skip
            if now - max([self.fault_ended, self.producer.ended, *moved[-1:]]) > stall:
                return False
        return True

    def drain_s(self, stored_below: int) -> float | None:
        """Seconds from the end of the fault until ``stored_below`` names below the mark (as
        many as were stored in the end) were queryable; None if not seen while watched."""
        for at, _every, below in self.samples:
            if below >= stored_below:
                return at - self.fault_ended
        return None


def stored_below(names: Counter[str], mark: int, prefix: str = "n") -> int:
    return sum(1 for name in names if name.startswith(prefix) and int(name[len(prefix) :]) < mark)


SPAN_NAME: Final = re.compile(rb'"span_name":"([^"]*)"')


def spooled_names(root: Path) -> tuple[set[str], list[str]]:
    """The span names in the spool's batch files under ``root`` (waiting or claimed), and the
    files that could not be read. A file is a JSON header line (``length``, ``encoding``) and
    the body: the ring's JSONEachRow rows, LZ4-framed (``lz4-rows``) or as they are."""
    names: set[str] = set()
    unread: list[str] = []
    for path in sorted(root.rglob("*.batch*")):
        if ".tmp-" in path.name or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # replayed meanwhile
            continue
        try:
            newline = data.index(b"\n")
            header = json.loads(data[:newline])
            body = data[newline + 1 : newline + 1 + int(header["length"])]
            encoding = header.get("encoding", "")
            if encoding == "lz4-rows":
                body = lz4.frame.decompress(body)
            elif encoding:
                raise ValueError(f"encoding {encoding!r}")
            names.update(m.decode() for m in SPAN_NAME.findall(body))
        except (ValueError, KeyError, RuntimeError) as exc:
            unread.append(f"{path.name}: {exc}")
    return names, unread
