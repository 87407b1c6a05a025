"""Nothing lost at speed (issue 11): one process tracks 50,000 events a second (bursts of 5,000
every 0.1 s, paced against the clock) with default settings while the destination cannot take
them: frozen, down, answering late, answering 429, or slower than the producer; and with the
spool on a filesystem that fills. While batches cannot leave, the writer must keep taking rows
out of the ring and write them to the spool before the ring fills, so the producer never waits
and nothing is dropped while the spool has room; then replay it when the destination answers.
Where the spool has no room the drops must be counted exactly, by reason.

Every row is numbered (``n0``, ``n1``, ...) and counted in the table by query. A destination
that refused a request before the server read it (a 429 from the front, a connection refused)
cannot store a batch twice: exactly once even on 18.16. A server frozen or killed while it held
an insert may have stored it without answering, and 18.16 knows no
``insert_deduplication_token``: those are at-least-once (in the test names). A request held
by the front is answered within the client's timeout, so a batch stored twice there is only
allowed if ``get_status()["resent_after_timeout"]`` counts re-sends.

The last scenario is the main job: ``automagik-telemetry demo`` on a fresh embedded path.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.local_clickhouse import LocalClickHouse
from tests.faults.conftest import ClientFactory
from tests.faults.helpers import FaultDatabase, Tally, spool_files, wait_until
from tests.faults.report import ScenarioRecord
from tests.faults.speed import (
    PRODUCER_REASONS,
    RATE,
    Landing,
    Producer,
    StatusSampler,
    directory_bytes,
    spooled_names,
    stored_below,
)
from tests.support.servers.http_front import Answer, Exchange, HttpFront, inserts

LEAD_IN = 2.0  # s of healthy tracking before the fault
LEAD_OUT = 2.0  # s of tracking after it: the producer meets the replay
WAIT_BOUND = 1.0  # s: a burst of 5,000 calls takes ~20 ms; this long means the producer waited
RATE_FLOOR = 0.95  # of RATE: the producer held the load (or something made it wait)
SETTLE = 120.0  # s after the producer's end for everything to be queryable or counted
SMALL_SPOOL = 2 * 1024 * 1024  # spool_max_bytes of the overload with drops
SMALL_FS = 4 * 1024 * 1024  # the tmpfs under the spool that fills
OVERLOAD_ROWS_PER_S = 25_000  # what the throttled destination takes: half the producer's rate
DISK_FULL = re.compile(
    r"no space left|enospc|errno 28|\bdisk (is )?full|\bfile ?system (is )?full", re.IGNORECASE
)


@dataclass
class Outcome:
    """What a run at speed did, for the report and the assertions."""

    producer: Producer
    sampler: StatusSampler
    landing: Landing
    status: dict[str, Any]
    tally: Tally
    flushed: bool | None
    settled: bool
    drain_s: float | None
    spool_left: list[Path]

    @property
    def dropped(self) -> dict[str, int]:
        return dict(self.status.get("dropped") or {})

    @property
    def dropped_total(self) -> int:
        return int(self.status.get("dropped_total") or 0)

    def summary(self) -> str:
        return (
            f"{self.producer.summary()}; {self.tally.summary()}; dropped {self.dropped}; "
            f"spooled {self.status.get('spooled')} rows; {self.sampler.summary()}; "
            f"landing settled: {self.settled}; flush: {self.flushed}; "
            f"last error: {self.status.get('last_error')!r}"
        )


def client_for(
    clients: ClientFactory, db: FaultDatabase, spool: Path, **options: Any
) -> AutomagikTelemetry:
    """A client with default settings but for the destination and the spool directory."""
    return clients(**db.client_options(spool_dir=str(spool), **options))


def run_at_speed(
    client: AutomagikTelemetry, db: FaultDatabase, spool: Path, *, seconds: float,
    fault: tuple[float, Callable[[], object]] | None,
    clear: tuple[float, Callable[[], object]],
) -> Outcome:  # fmt: skip
    """Track at speed for ``seconds``; at each offset (from the first burst) call ``fault``
    (None: the fault is already there) and ``clear``; count what landed."""
    producer = Producer(client, seconds)
    landing = Landing(db, client, producer)
    with StatusSampler(client, spool) as sampler:
        producer.start()
        if fault is not None:
            producer.at(fault[0])
            fault[1]()
        producer.at(clear[0])
        clear[1]()
        landing.start(mark=producer.sent, fault_ended=time.monotonic())
        producer.join()
        settled = landing.settle(SETTLE)
    landing.stop()
    flushed: bool | None = None
    try:
        flushed = client.flush(timeout=10)
    except BaseException as exc:  # nothing raises into the caller, flush() included
        producer.raised.append(exc)
    status = client.get_status()
    names = producer.names()
    tally = db.tally(names)
    counts = db.names()
    drain = landing.drain_s(stored_below(counts, landing.mark))
    wait_until(lambda: spool_files(spool) == [], 10)
    return Outcome(producer, sampler, landing, status, tally, flushed, settled, drain,
                   spool_files(spool))  # fmt: skip


def record(scenario: ScenarioRecord, outcome: Outcome, guarantee: str) -> None:
    """The scenario's row of the report, filled before anything is asserted."""
    tally, sampler = outcome.tally, outcome.sampler
    scenario.guarantee = guarantee
    scenario.rate = outcome.producer.rate
    scenario.sent = outcome.producer.sent
    scenario.stored, scenario.distinct = tally.stored, tally.distinct
    scenario.duplicates, scenario.missing = tally.duplicates, len(tally.missing)
    scenario.dropped = outcome.dropped_total
    scenario.drops_by_reason = outcome.dropped
    scenario.spool_peak_bytes = sampler.engine_peak
    scenario.spool_peak_disk_bytes = sampler.disk_peak
    scenario.drain_s = outcome.drain_s
    scenario.note(outcome.producer.summary())
    scenario.note(sampler.summary())
    resent = outcome.status.get("resent_after_timeout")
    scenario.note(f"spooled {outcome.status.get('spooled')} rows in "
                  f"{outcome.status.get('spooled_batches')} batches; resent after a timeout: "
                  f"{'-' if resent is None else resent}; writer restarts "
                  f"{outcome.status.get('writer_restarts')}")  # fmt: skip
    if not outcome.settled:
        scenario.note("landing had not settled when the counts were taken")


def assert_no_exception(outcome: Outcome) -> None:
    raised = outcome.producer.raised + outcome.sampler.raised
    assert raised == [], f"{len(raised)} calls raised into the caller, first: {raised[:3]!r}"


def assert_once(outcome: Outcome) -> None:
    """Exactly once: no batch stored twice, unless re-sent after a timeout and counted so."""
    resent = outcome.status.get("resent_after_timeout") or 0
    assert outcome.tally.duplicates == 0 or resent > 0, (
        f"{outcome.tally.duplicates} rows stored twice and no re-send after a timeout counted "
        f"(resent_after_timeout={outcome.status.get('resent_after_timeout')}); "
        f"{outcome.summary()}"
    )


def assert_producer_held_the_rate(outcome: Outcome) -> None:
    producer = outcome.producer
    assert producer.longest_burst < WAIT_BOUND, (
        f"the producer waited: a burst of {producer.burst} track_event calls took "
        f"{producer.longest_burst:.2f} s (it takes ~0.02 s); {outcome.summary()}"
    )
    assert producer.rate >= RATE_FLOOR * RATE, (
        f"the producer did not hold {RATE:,}/s: {producer.summary()}"
    )


def assert_nothing_lost(outcome: Outcome, *, at_least_once: bool) -> None:
    """The spool had room: every number stored, nothing dropped, the spool replayed."""
    tally = outcome.tally
    assert_no_exception(outcome)
    assert tally.unexpected == [], tally.summary()
    assert (len(tally.missing), outcome.dropped_total) == (0, 0), (
        f"rows lost while the spool had room: {len(tally.missing)} missing, "
        f"{outcome.dropped_total} counted as dropped; {outcome.summary()}"
    )
    if not at_least_once:
        assert_once(outcome)
    assert outcome.flushed is True, f"flush() did not confirm delivery; {outcome.summary()}"
    assert outcome.spool_left == [], f"spool files left after the replay: {outcome.spool_left}"
    assert_producer_held_the_rate(outcome)


def assert_drops_counted(outcome: Outcome, reasons: frozenset[str]) -> None:
    """The spool had no room: what is missing is exactly what was counted, for ``reasons``."""
    tally = outcome.tally
    assert_no_exception(outcome)
    assert tally.unexpected == [], tally.summary()
    assert_once(outcome)
    missing = tally.expected - tally.distinct
    assert missing == outcome.dropped_total, (
        f"{missing} rows missing, {outcome.dropped_total} counted as dropped "
        f"({outcome.dropped}); {outcome.summary()}"
    )
    assert set(outcome.dropped) <= reasons, (
        f"drops for reasons other than {sorted(reasons)}: {outcome.dropped}; {outcome.summary()}"
    )


def held_inserts(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if e.insert and e.held > 0]


# -- the scenarios ---------------------------------------------------------------------------


def test_at_speed_server_frozen_15s_then_resumed_nothing_lost_at_least_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """At speed: server frozen (SIGSTOP) 15 s, then SIGCONT"""
    spool = tmp_path / "spool"
    client = client_for(clients, fault_db, spool)
    freeze = 15.0
    outcome = run_at_speed(
        client, fault_db, spool, seconds=LEAD_IN + freeze + LEAD_OUT,
        fault=(LEAD_IN, fault_server.pause), clear=(LEAD_IN + freeze, fault_server.resume),
    )  # fmt: skip
    record(scenario, outcome, "at least once (18.16)")
    scenario.recover_note = "from SIGCONT"
    assert_nothing_lost(outcome, at_least_once=True)


def test_at_speed_server_killed_down_30s_then_restarted_nothing_lost_at_least_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """At speed: server SIGKILLed, down 30 s, restarted on the same data"""
    spool = tmp_path / "spool"
    client = client_for(clients, fault_db, spool)
    down = 30.0
    outcome = run_at_speed(
        client, fault_db, spool, seconds=LEAD_IN + down + LEAD_OUT,
        fault=(LEAD_IN, fault_server.kill), clear=(LEAD_IN + down, fault_server.restart),
    )  # fmt: skip
    record(scenario, outcome, "at least once (18.16)")
    scenario.note("drain from the restarted server's first answer")
    assert_nothing_lost(outcome, at_least_once=True)


def test_at_speed_inserts_answered_after_3s_nothing_lost_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """At speed: every insert answered only after 3 s (a front holds it, then forwards it) for
    15 s"""
    spool = tmp_path / "spool"
    late = 3.0
    with HttpFront(fault_server.url) as front:
        client = client_for(clients, fault_db, spool, clickhouse_endpoint=front.url)
        outcome = run_at_speed(
            client, fault_db, spool, seconds=15.0 + LEAD_OUT,
            fault=(0.0, lambda: front.delay(late)), clear=(15.0, front.release),
        )  # fmt: skip
        exchanges = front.exchanges
    held = held_inserts(exchanges)
    gave_up = [e for e in exchanges if e.action == "client-gone"]
    record(scenario, outcome, "exactly once (a re-send after a timeout counted)")
    scenario.note(
        f"{len(held)} inserts held {late:g} s ({sum(e.rows for e in held)} rows), "
        f"{len(gave_up)} given up by the client during the hold (not forwarded)"
    )

    assert_nothing_lost(outcome, at_least_once=False)
    assert len(held) >= 2, f"the front held {len(held)} inserts: the fault did not happen"


def test_at_speed_429_retry_after_5s_for_20s_nothing_lost_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """At speed: a front answers every insert 429 with Retry-After: 5 for 20 s, then passes
    through"""
    spool = tmp_path / "spool"
    limited = 20.0
    with HttpFront(fault_server.url) as front:
        client = client_for(clients, fault_db, spool, clickhouse_endpoint=front.url)

        def refuse() -> None:
            # more answers than the client can ask for in 20 s; the rest is cleared
            front.script(*[Answer(429, retry_after=5, body=b"slow down")] * 10_000, only=inserts)

        outcome = run_at_speed(
            client, fault_db, spool, seconds=LEAD_IN + limited + LEAD_OUT,
            fault=(LEAD_IN, refuse), clear=(LEAD_IN + limited, front.clear_script),
        )  # fmt: skip
        exchanges = front.exchanges
    refused = [e for e in exchanges if e.status == 429]
    record(scenario, outcome, "exactly once")
    scenario.note(f"{len(refused)} inserts answered 429 in {limited:g} s")

    assert_nothing_lost(outcome, at_least_once=False)
    assert refused, "no insert was answered 429: the fault did not happen"


def overload(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, spool: Path, seconds: float, **options: Any,
) -> tuple[Outcome, float]:  # fmt: skip
    """The producer at twice what the destination takes (a front lets inserts through one at
    a time, each after rows / 25,000 s) for ``seconds``, then the front passes everything.
    Returns the outcome and the rows per second the destination took meanwhile.

    Like a real slow server, a large insert takes long: with two in flight one waits for the
    other, ~4 s for two of the ~50,000-row batches the default 16 MiB ring makes (timeout 5 s).
    An engine that sends larger ones meets its timeout, and a re-send must then be counted."""
    with HttpFront(fault_server.url) as front:
        client = client_for(clients, fault_db, spool, clickhouse_endpoint=front.url, **options)
        outcome = run_at_speed(
            client, fault_db, spool, seconds=seconds,
            fault=(0.0, lambda: front.throttle(OVERLOAD_ROWS_PER_S)),
            clear=(seconds, front.release),
        )  # fmt: skip
        exchanges = front.exchanges
    start = outcome.producer.started
    took = sum(e.rows for e in exchanges
               if e.insert and e.status == 200 and e.answered <= start + seconds)  # fmt: skip
    taken = took / seconds
    compressed = [e for e in exchanges if e.insert and e.rows and e.body_length < 20 * e.rows]
    scenario.note(f"the destination took {taken:,.0f} rows/s while throttled "
                  f"({len(held_inserts(exchanges))} inserts held)"
                  + (f"; {len(compressed)} compressed bodies (rows estimated)"
                     if compressed else ""))  # fmt: skip
    return outcome, taken


def test_at_speed_overload_twice_what_the_destination_takes_nothing_lost_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """At speed: sustained overload, the producer at twice what the destination takes, 30 s"""
    outcome, taken = overload(fault_server, fault_db, clients, scenario, tmp_path / "spool",
                              30.0)  # fmt: skip
    record(scenario, outcome, "exactly once (a re-send after a timeout counted)")

    assert_nothing_lost(outcome, at_least_once=False)
    assert taken <= 0.6 * outcome.producer.rate, (
        f"the destination took {taken:,.0f} rows/s of {outcome.producer.rate:,.0f}: no overload"
    )


def test_at_speed_overload_with_a_2mib_spool_every_drop_counted_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """At speed: the same overload for 15 s with spool_max_bytes 2 MiB (drop_newest)"""
    spool = tmp_path / "spool"
    outcome, taken = overload(fault_server, fault_db, clients, scenario, spool, 15.0,
                              spool_max_bytes=SMALL_SPOOL)  # fmt: skip
    record(scenario, outcome, "exactly once for what is kept; drops counted")
    scenario.note(f"spool bound {SMALL_SPOOL} B")

    assert_drops_counted(outcome, frozenset({"spool_full"}))
    assert outcome.sampler.disk_peak <= SMALL_SPOOL, (
        f"the spool held {outcome.sampler.disk_peak} bytes, over its bound of {SMALL_SPOOL}"
    )
    assert outcome.status.get("writer_restarts") == 0, "the writer died (see its stderr)"
    assert outcome.flushed is False or outcome.dropped_total == 0, (
        "flush() said everything was delivered, but rows were dropped"
    )
    assert outcome.spool_left == [], f"spool files left after the replay: {outcome.spool_left}"
    assert_producer_held_the_rate(outcome)
    assert taken <= 0.6 * outcome.producer.rate, (
        f"the destination took {taken:,.0f} rows/s of {outcome.producer.rate:,.0f}: no overload"
    )


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of SMALL_FS bytes mounted under tmp_path (needs root), unmounted afterwards."""
    mount = tmp_path / "small-fs"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("mounting the small filesystem for the spool needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SMALL_FS},mode=0700", "tmpfs",
                    str(mount)], check=True)  # fmt: skip
    try:
        yield mount
    finally:
        # the client (and its writer) are gone by now: clients is set up after this fixture
        for _ in range(20):
            if subprocess.run(["umount", str(mount)], capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_at_speed_spool_filesystem_full_while_server_down_every_drop_counted_exactly_once(
    small_filesystem: Path, fault_server: LocalClickHouse, fault_db: FaultDatabase,
    clients: ClientFactory, scenario: ScenarioRecord, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """At speed: the spool on a 4 MiB filesystem that fills while the server is down 15 s"""
    caplog.set_level(logging.WARNING, logger="automagik_telemetry")
    spool = small_filesystem
    fault_server.kill()  # connection refused: nothing can be stored twice
    client = client_for(clients, fault_db, spool)
    snapshot: dict[str, Any] = {}

    def restart() -> None:
        # what is spooled now must all be stored once the server is back
        snapshot["names"], snapshot["unread"] = spooled_names(spool)
        snapshot["status"] = client.get_status()
        fault_server.restart()

    outcome = run_at_speed(client, fault_db, spool, seconds=15.0, fault=None,
                           clear=(15.0, restart))  # fmt: skip
    spooled: set[str] = snapshot["names"]
    stored = set(fault_db.names())
    lost_from_spool = sorted(spooled - stored)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    disk_full = [m for m in messages if DISK_FULL.search(m)]
    record(scenario, outcome, "exactly once for what is kept; drops counted")
    scenario.note(f"spool on a {SMALL_FS} B tmpfs, {outcome.sampler.fs_free_min} B free at the "
                  f"least; {len(spooled)} rows in the spool before the restart, "
                  f"{len(lost_from_spool)} of them not stored; disk-full log lines: "
                  f"{disk_full[:1]}")  # fmt: skip

    assert_no_exception(outcome)
    assert outcome.status.get("writer_restarts") == 0, "the writer died (see its stderr)"
    assert snapshot["unread"] == [], f"spool files the test could not read: {snapshot['unread']}"
    assert lost_from_spool == [], (
        f"{len(lost_from_spool)} spooled rows never stored, e.g. {lost_from_spool[:5]}"
    )
    assert_drops_counted(outcome, PRODUCER_REASONS)
    assert disk_full or "spool_unwritable" in outcome.dropped, (
        f"the full filesystem was neither logged nor counted: {messages[:5]}; {outcome.dropped}"
    )
    assert outcome.spool_left == [], f"spool files left after the replay: {outcome.spool_left}"
    free = outcome.sampler.fs_free_min
    assert free is not None and free < SMALL_FS // 2, (
        f"the filesystem did not fill ({free} B free at the least): the scenario did not happen"
    )


DEMO_LINES = {
    "tracked": re.compile(r"tracked ([\d,]+) rows in ([\d.]+) s"),
    "delivered": re.compile(r"all delivered: (True|False); landed in ([\d.]+) s"),
    "dropped": re.compile(r"dropped: (\d+)"),
}


def test_demo_cold_start_drops_nothing_exactly_once(
    scenario: ScenarioRecord, tmp_path: Path, isolated_environment: Path,
) -> None:  # fmt: skip
    """The main job, cold: `automagik-telemetry demo` on a fresh embedded path"""
    scenario.backend = "embedded (chdb, current schema)"
    scenario.guarantee = "exactly once"
    path = tmp_path / "demo-chdb"  # fresh: the engine creates it
    spool = isolated_environment / ".cache" / "automagik-telemetry" / "spool"
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], directory_bytes(spool) if spool.exists() else 0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        demo = subprocess.run(
            [sys.executable, "-m", "automagik_telemetry.cli", "demo", "--path", str(path)],
            capture_output=True, text=True, timeout=240, cwd=tmp_path,
        )  # fmt: skip
    finally:
        done.set()
        sampler.join(5)
    out = demo.stdout + demo.stderr
    found = {key: pattern.search(out) for key, pattern in DEMO_LINES.items()}
    tracked = found["tracked"]
    delivered = found["delivered"]
    dropped = found["dropped"]
    scenario.sent = int(tracked[1].replace(",", "")) if tracked else None
    scenario.dropped = int(dropped[1]) if dropped else None
    scenario.spool_peak_disk_bytes = peak[0]
    if tracked and delivered:
        scenario.rate = scenario.sent / float(tracked[2]) if scenario.sent else None
        scenario.drain_s = float(delivered[2]) - float(tracked[2])
    counts = demo_counts(path) if demo.returncode in (0, 1) and path.exists() else None
    if counts is not None and scenario.sent is not None:
        events, distinct, others = counts
        scenario.stored = events + others
        scenario.distinct = distinct + others
        scenario.duplicates = events - distinct
        scenario.missing = scenario.sent - scenario.distinct
    scenario.note("drain: from the last track call to flush() confirming, as the demo prints")
    scenario.note(f"exit status {demo.returncode}")
    warned = [line for line in out.splitlines() if "dropping rows" in line]
    if warned:
        scenario.note(warned[0])

    assert tracked and delivered and dropped, f"the demo's report is not there:\n{out[-3000:]}"
    assert warned == [], f"the demo dropped rows: {warned}"
    assert dropped[1] == "0", f"the demo counted {dropped[1]} dropped rows:\n{out[-2000:]}"
    assert delivered[1] == "True", f"the demo's flush did not confirm delivery:\n{out[-2000:]}"
    assert demo.returncode == 0, f"the demo exited {demo.returncode}:\n{out[-3000:]}"
    assert counts is not None
    assert (scenario.missing, scenario.duplicates) == (0, 0), (
        f"{scenario.missing} rows missing, {scenario.duplicates} stored twice"
    )


def demo_counts(path: Path) -> tuple[int, int, int] | None:
    """Events stored, distinct events (the demo numbers them in ``attributes['record']``) and
    metrics plus logs stored, in the demo's embedded database."""
    from chdb import session as chdb_session

    open_session: Any = chdb_session.Session  # chdb ships no type information
    session = open_session(str(path))
    try:

        def one(sql: str) -> list[int]:
            text = session.query(sql, "TabSeparated").bytes().decode()
            return [int(x) for x in text.split()]

        events, distinct = one(
            "SELECT count(), uniqExact(attributes['record']) FROM telemetry.traces"
        )
        (metrics,) = one("SELECT count() FROM telemetry.metrics")
        (logs,) = one("SELECT count() FROM telemetry.logs")
    finally:
        session.close()
    return events, distinct, metrics + logs
