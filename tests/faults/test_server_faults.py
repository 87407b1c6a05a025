"""Faults of the destination, against the real Debian ClickHouse server (18.16): down at start,
killed in the middle of a batch, stopped longer than the timeout, a front answering 429 and 503,
a wrong password, a missing table, a full spool.

Every scenario tracks uniquely numbered rows and counts them in the table. A request refused
before the server read it (connection refused, 429/503 from a front, authentication, missing
table) can never store a batch twice, so those scenarios are exactly-once even on 18.16; a
server killed or stopped while it held an insert may have stored it without answering, and 18.16
knows no ``insert_deduplication_token``: those are at-least-once (in the test names).
"""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.sinks.clickhouse import schema_statements
from tests.faults.conftest import ClientFactory
from tests.faults.helpers import (
    FAST,
    FaultDatabase,
    Tally,
    Tracker,
    numbers,
    spool_files,
    wait_until,
)
from tests.faults.report import ScenarioRecord
from tests.support import process_alive
from tests.support.servers.http_front import Answer, HttpFront

ROWS = 3000
SPOOL_LIMIT = 20_000  # bytes: about half of ROWS rows, LZ4-framed
IN_FLIGHT = 0.05  # s: a request arriving this soon after an answer was already sent
PACE, PAUSE = 100, 0.04  # 3000 rows over ~1.2 s: a batch every flush_interval


def record_tally(scenario: ScenarioRecord, db: FaultDatabase, names: list[str]) -> Tally:
    """Count the rows and put the counts in the scenario's row of the report."""
    tally = db.tally(names)
    scenario.sent = len(names)
    scenario.stored = tally.stored
    scenario.distinct = tally.distinct
    scenario.duplicates = tally.duplicates
    scenario.missing = len(tally.missing)
    return tally


def test_server_down_at_start_then_started_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Server down at start, then started"""
    scenario.guarantee = "exactly once"
    fault_server.kill()
    spool = tmp_path / "spool"
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(spool)))
    tracker = Tracker(client)
    names = numbers(ROWS)
    tracker.track(names, pace_every=PACE, pause=PAUSE)
    assert wait_until(lambda: client.get_status()["spooled"] >= ROWS, 20), client.get_status()
    down = client.get_status()
    # spooled is not delivered: flush must say so
    flushed_while_down = tracker.call(lambda: client.flush(timeout=0.3))

    fault_server.restart()
    recover = fault_db.wait_distinct(ROWS, timeout=60)
    scenario.recover_s, scenario.recover_note = recover, "from restart"
    flushed = tracker.call(lambda: client.flush(timeout=30))
    status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]

    assert tracker.raised == []
    assert flushed_while_down is False
    assert down["sink_state"] in ("retrying", "permanent_error"), down
    assert down["sent"] == 0 and down["spooled_batches"] >= 2, down
    assert "connection refused" in (down["last_error"] or ""), down
    assert flushed is True
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (ROWS, ROWS, 0, []), (
        tally.summary()
    )
    assert status["accepted"] == ROWS and status["dropped_total"] == 0, status
    assert status["sent"] == ROWS, status
    assert wait_until(lambda: spool_files(spool) == [], 10), spool_files(spool)


def test_server_killed_mid_batch_then_restarted_at_least_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Server SIGKILLed in the middle of a batch, then restarted"""
    scenario.guarantee = "at least once (18.16)"
    killed = threading.Event()
    inserts = itertools.count(1)

    def kill() -> None:
        fault_server.kill()
        killed.set()

    with HttpFront(fault_server.url) as front:
        # SIGKILL the server when half of the third insert's body has reached it
        front.kill_during(kill, when=lambda r: r.is_insert and next(inserts) == 3, fraction=0.5)
        client = clients(**fault_db.client_options(
            **FAST, clickhouse_endpoint=front.url, spool_dir=str(tmp_path / "spool")))  # fmt: skip
        tracker = Tracker(client)
        names = numbers(ROWS)
        tracker.track(names[: ROWS // 2], pace_every=PACE, pause=PAUSE)
        assert killed.wait(10), front.exchanges
        tracker.track(names[ROWS // 2 :], pace_every=PACE, pause=PAUSE)  # the server is down
        assert wait_until(lambda: client.get_status()["spooled"] > 0, 10)
        down = client.get_status()
        fault_server.restart()
        recover = fault_db.wait_distinct(ROWS, timeout=60)
        scenario.recover_s, scenario.recover_note = recover, "from restart"
        flushed = tracker.call(lambda: client.flush(timeout=30))
        status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]
    hooked = [e for e in front.exchanges if e.action == "hooked"]
    scenario.note(f"killed with {hooked[0].body_length // 2} of {hooked[0].body_length} bytes "
                  "of an insert sent")  # fmt: skip

    assert tracker.raised == []
    assert down["sink_state"] == "retrying", down
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert tally.distinct == ROWS and tally.stored >= ROWS, tally.summary()
    assert status["accepted"] == ROWS and status["dropped_total"] == 0, status


def test_server_sigstopped_longer_than_timeout_then_resumed_at_least_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Server stopped (SIGSTOP) 3 s, three times the timeout, then resumed"""
    scenario.guarantee = "at least once (18.16)"
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(tmp_path / "spool")))
    tracker = Tracker(client)
    names = numbers(ROWS)
    tracker.track(names[: ROWS // 3], pace_every=PACE, pause=PAUSE)
    fault_server.pause()
    paused_at = time.monotonic()
    tracker.track(names[ROWS // 3 :], pace_every=PACE, pause=PAUSE)
    time.sleep(max(0.0, paused_at + 3.0 - time.monotonic()))
    during = client.get_status()
    fault_server.resume()
    recover = fault_db.wait_distinct(ROWS, timeout=60)
    scenario.recover_s, scenario.recover_note = recover, "from SIGCONT"
    flushed = tracker.call(lambda: client.flush(timeout=30))
    status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]

    assert tracker.raised == []
    assert during["sink_state"] == "retrying", during
    assert "timed out" in (during["last_error"] or ""), during
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert tally.distinct == ROWS and tally.stored >= ROWS, tally.summary()
    assert status["accepted"] == ROWS and status["dropped_total"] == 0, status


def test_front_429_retry_after_then_503_then_passes_through_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """A front answers 429 with Retry-After: 1, then 503, then passes through"""
    scenario.guarantee = "exactly once"
    retry_after = 1.0
    with HttpFront(fault_server.url) as front:
        # inserts only (the front lets the client's discovery queries through)
        front.script(Answer(429, retry_after=retry_after, body=b"slow down"),
                     Answer(429, retry_after=retry_after, body=b"slow down"),
                     Answer(503, body=b"busy"), Answer(503, body=b"busy"),
                     Answer(503, body=b"busy"), only=lambda r: r.is_insert)  # fmt: skip
        client = clients(**fault_db.client_options(
            **FAST, clickhouse_endpoint=front.url, spool_dir=str(tmp_path / "spool")))  # fmt: skip
        tracker = Tracker(client)
        names = numbers(ROWS)
        tracker.track(names, pace_every=PACE, pause=PAUSE)

        def passed() -> list[float]:
            return [e.received for e in front.exchanges if e.insert and e.action == "forwarded"]

        assert wait_until(lambda: front.script_left == 0 and passed() != [], 30), front.exchanges
        recover = fault_db.wait_distinct(ROWS, timeout=60)
        if recover is not None:
            scenario.recover_s = time.monotonic() - passed()[0]
        scenario.recover_note = "from the first insert passed through"
        flushed = tracker.call(lambda: client.flush(timeout=30))
        status = client.get_status()
        exchanges = front.exchanges
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]
    # Retry-After: a batch answered 429 at t is not sent again before t + Retry-After (that
    # no *other* request goes out meanwhile is the next test's subject)
    early = [
        (round(again.received - ex.answered, 3), again.body_length)
        for ex in exchanges if ex.status == 429
        for again in exchanges
        if again.body_crc == ex.body_crc
        and ex.answered < again.received < ex.answered + retry_after - 0.02
    ]  # fmt: skip
    scenario.note(f"{len(exchanges)} requests, {sum(e.status == 429 for e in exchanges)} "
                  f"answered 429, {sum(e.status == 503 for e in exchanges)} answered 503; "
                  f"{len(early)} retries inside a Retry-After window")  # fmt: skip

    assert tracker.raised == []
    assert flushed is True
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (ROWS, ROWS, 0, []), (
        tally.summary()
    )
    assert status["accepted"] == ROWS and status["dropped_total"] == 0, status
    assert status["retried"] >= 2, status
    assert early == [], f"batches re-sent before Retry-After ({retry_after} s) elapsed: {early}"


def test_wrong_password_then_right_one_after_client_restart_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Wrong password, then the right one after a restart of the client"""
    scenario.guarantee = "exactly once"
    spool = tmp_path / "spool"
    options = fault_db.client_options(**FAST, spool_dir=str(spool))
    wrong = clients(**{**options, "clickhouse_password": fault_server.password + "-wrong"})
    tracker = Tracker(wrong)
    names = numbers(ROWS)
    tracker.track(names, pace_every=PACE, pause=PAUSE)
    assert wait_until(lambda: wrong.get_status()["spooled"] >= ROWS, 20), wrong.get_status()
    refused = wrong.get_status()
    flushed_wrong = tracker.call(lambda: wrong.flush(timeout=0.3))
    writer = refused["writer_pid"]
    tracker.call(lambda: wrong.shutdown(timeout=1.0))
    assert wait_until(lambda: not process_alive(writer), 30)
    stored_while_wrong = fault_db.count()
    files_left = len(spool_files(spool))

    started = time.monotonic()
    right = clients(**options)  # nothing tracked: its writer replays the spool
    recover = fault_db.wait_distinct(ROWS, timeout=60)
    scenario.recover_s = None if recover is None else time.monotonic() - started
    scenario.recover_note = "from the new client"
    right_tracker = Tracker(right)
    flushed = right_tracker.call(lambda: right.flush(timeout=30))
    status = right.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = refused["dropped_total"] + status["dropped_total"]

    assert tracker.raised == [] and right_tracker.raised == []
    assert refused["sink_state"] == "permanent_error", refused
    assert "refused user" in (refused["last_error"] or ""), refused
    assert fault_server.password not in (refused["last_error"] or "")
    assert flushed_wrong is False
    assert stored_while_wrong == 0 and files_left >= 1
    assert flushed is True
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (ROWS, ROWS, 0, []), (
        tally.summary()
    )
    assert wait_until(lambda: spool_files(spool) == [], 10), spool_files(spool)


def test_table_missing_then_created_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Table missing, then created"""
    scenario.guarantee = "exactly once"
    fault_db.query(f"DROP TABLE {fault_db.name}.traces")
    spool = tmp_path / "spool"
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(spool)))
    tracker = Tracker(client)
    names = numbers(ROWS)
    tracker.track(names, pace_every=PACE, pause=PAUSE)
    assert wait_until(lambda: client.get_status()["spooled"] >= ROWS, 20), client.get_status()
    missing = client.get_status()
    flushed_missing = tracker.call(lambda: client.flush(timeout=0.3))

    for statement in schema_statements(fault_db.name, legacy=True):
        fault_db.query(statement)
    recover = fault_db.wait_distinct(ROWS, timeout=60)
    scenario.recover_s, scenario.recover_note = recover, "from CREATE TABLE"
    flushed = tracker.call(lambda: client.flush(timeout=30))
    status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]

    assert tracker.raised == []
    assert missing["sink_state"] == "permanent_error", missing
    assert f"has no table {fault_db.name}.traces" in (missing["last_error"] or ""), missing
    assert flushed_missing is False
    assert flushed is True
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (ROWS, ROWS, 0, []), (
        tally.summary()
    )
    assert status["dropped_total"] == 0, status
    assert wait_until(lambda: spool_files(spool) == [], 10), spool_files(spool)


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
def test_spool_full_exactly_once_and_every_drop_counted(
    policy: str, fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Spool full (server down, spool_max_bytes about half the rows)"""
    scenario.title = f"Spool full ({policy}), server down then started"
    scenario.guarantee = "exactly once for what is kept; drops counted"
    fault_server.kill()
    spool = tmp_path / "spool"
    limit = SPOOL_LIMIT
    client = clients(**fault_db.client_options(
        **FAST, spool_dir=str(spool), spool_max_bytes=limit, spool_full_policy=policy))  # fmt: skip
    tracker = Tracker(client)
    names = numbers(ROWS)
    # a first small batch, spooled; then batches of about 100 rows, so that drop_oldest has
    # to evict spooled batches to make room (one batch larger than the spool is dropped whole)
    tracker.track(names[:100])
    assert wait_until(lambda: client.get_status()["spooled"] > 0, 20), client.get_status()
    tracker.track(names[100:], pace_every=PACE, pause=PAUSE)
    assert wait_until(lambda: settled(client, ROWS), 20), client.get_status()
    down = client.get_status()
    used = sum(p.stat().st_size for p in spool_files(spool))
    dropped = down["dropped"].get("spool_full", 0)

    fault_server.restart()
    recover = fault_db.wait_distinct(ROWS - dropped, timeout=60)
    scenario.recover_s, scenario.recover_note = recover, "from restart"
    flushed = tracker.call(lambda: client.flush(timeout=30))
    time.sleep(0.5)  # nothing else may arrive
    status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]
    kept = sorted(int(name[1:]) for name in fault_db.names())
    scenario.note(f"spool bound {limit} B, {used} B used at the peak; kept "
                  f"{ranges(kept)}; "
                  f"writer restarts {status['writer_restarts']}")  # fmt: skip

    assert tracker.raised == []
    assert 0 < dropped < ROWS, down
    assert used <= limit
    assert status["dropped"] == {"spool_full": dropped}, status
    assert tally.duplicates == 0 and tally.unexpected == [], tally.summary()
    assert tally.stored == ROWS - dropped and len(tally.missing) == dropped, tally.summary()
    assert status["writer_restarts"] == 0, "the writer died while spooling (see its stderr)"
    older = sum(1 for k in kept if k < ROWS // 2)
    if policy == "drop_newest":  # the first batches stay, later ones that do not fit go
        assert kept[0] == 0 and older > len(kept) - older, ranges(kept)
    else:  # the oldest batches make room for newer ones
        assert kept[-1] == ROWS - 1 and 0 not in kept and older < len(kept) - older, ranges(kept)
    # rows were lost: flush must not claim that everything tracked was delivered
    assert flushed is False


def ranges(values: list[int]) -> str:
    """Runs of consecutive numbers in ``values`` (sorted): ``n0-n1399,n2800-n2999``."""
    runs: list[list[int]] = []
    for value in values:
        if runs and runs[-1][1] == value - 1:
            runs[-1][1] = value
        else:
            runs.append([value, value])
    return ",".join(f"n{a}-n{b}" for a, b in runs)


def settled(client: AutomagikTelemetry, rows: int) -> bool:
    """Every row tracked so far is out of the ring and either spooled or counted as dropped."""
    s = client.get_status()
    return bool(
        s["ring_bytes_used"] == 0 and s["spooled"] + s["dropped"].get("spool_full", 0) >= rows
    )


def test_spool_full_then_writer_killed_keeps_counting_drops_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Spool full, writer SIGKILLed, more rows dropped: every drop still counted"""
    scenario.guarantee = "exactly once for what is kept; drops counted"
    fault_server.kill()
    spool = tmp_path / "spool"
    client = clients(**fault_db.client_options(
        **FAST, spool_dir=str(spool), spool_max_bytes=SPOOL_LIMIT))  # fmt: skip
    tracker = Tracker(client)
    first, second = numbers(ROWS), numbers(1000, "n", ROWS)
    tracker.track(first, pace_every=PACE, pause=PAUSE)
    assert wait_until(lambda: settled(client, ROWS), 20), client.get_status()
    dropped_first = client.get_status()["dropped"].get("spool_full", 0)

    old = client.get_status()["writer_pid"]
    os.kill(old, signal.SIGKILL)
    assert wait_until(lambda: client.get_status()["writer_pid"] not in (old, None), 10)
    tracker.track(second, pace_every=PACE, pause=PAUSE)  # the spool is still full
    rows = ROWS + len(second)
    # out of the ring = spooled or dropped (the tail moves only past those)
    assert wait_until(lambda: client.get_status()["ring_bytes_used"] == 0, 20)
    down = client.get_status()

    fault_server.restart()
    recover = fault_db.wait_distinct(ROWS - dropped_first, timeout=60)
    scenario.recover_s, scenario.recover_note = recover, "from restart"
    tracker.call(lambda: client.flush(timeout=10))
    time.sleep(0.5)
    status = client.get_status()
    names = first + second
    tally = record_tally(scenario, fault_db, names)
    counted = status["dropped"].get("spool_full", 0)
    scenario.dropped = counted
    scenario.note(f"{dropped_first} drops counted before the kill, {counted} after; "
                  f"{len(tally.missing)} rows actually missing")  # fmt: skip

    assert tracker.raised == []
    assert 0 < dropped_first < ROWS
    assert tally.duplicates == 0 and tally.unexpected == [], tally.summary()
    assert down["dropped"].get("spool_full", 0) >= dropped_first, (
        f"get_status() counted {dropped_first} dropped rows before the writer was restarted "
        f"and {down['dropped'].get('spool_full', 0)} after"
    )
    # every row tracked is either stored or counted as dropped
    assert tally.stored + counted == rows, (tally.summary(), status["dropped"])


def test_front_429_retry_after_pauses_every_sender_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """A front answers one insert 429 with Retry-After: 1 while rows keep coming"""
    scenario.guarantee = "exactly once"
    retry_after = 1.0
    with HttpFront(fault_server.url) as front:
        front.script(Answer(429, retry_after=retry_after), only=lambda r: r.is_insert)
        client = clients(**fault_db.client_options(
            **FAST, clickhouse_endpoint=front.url, spool_dir=str(tmp_path / "spool")))  # fmt: skip
        tracker = Tracker(client)
        names = numbers(ROWS)
        tracker.track(names, pace_every=PACE, pause=PAUSE)
        flushed = tracker.call(lambda: client.flush(timeout=30))
        status = client.get_status()
        exchanges = front.exchanges
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]
    limited = next(e for e in exchanges if e.status == 429)
    window = (limited.answered + IN_FLIGHT, limited.answered + retry_after - 0.02)
    inside = [e for e in exchanges if e.insert and window[0] < e.received < window[1]]
    after = [e.received for e in exchanges if e.insert and e.received > limited.answered]
    scenario.recover_s = (after[-1] - limited.answered) if after else None
    scenario.recover_note = "429 to the last insert"
    scenario.note(f"{len(inside)} inserts sent inside the {retry_after:g} s Retry-After window")

    assert tracker.raised == []
    assert flushed is True
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (ROWS, ROWS, 0, []), (
        tally.summary()
    )
    assert inside == [], (
        f"after a 429 with Retry-After: {retry_after:g}, {len(inside)} inserts were sent "
        f"before it elapsed, at {[round(e.received - limited.answered, 3) for e in inside]} s"
    )


def test_spool_full_behind_a_slow_503_front_stays_within_its_bound_exactly_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Spool full while a front answers inserts 503 after 0.5 s, then passes through"""
    scenario.guarantee = "exactly once for what is kept; drops counted"
    spool = tmp_path / "spool"
    peak = SpoolPeak(spool)
    with HttpFront(fault_server.url) as front, peak:
        front.script(*[Answer(503, delay=0.5)] * 1000, only=lambda r: r.is_insert)
        client = clients(**fault_db.client_options(
            **FAST, clickhouse_endpoint=front.url, spool_dir=str(spool),
            spool_max_bytes=SPOOL_LIMIT))  # fmt: skip
        tracker = Tracker(client)
        names = numbers(ROWS)
        tracker.track(names[:100])
        assert wait_until(lambda: client.get_status()["spooled"] > 0, 20)
        tracker.track(names[100:], pace_every=50, pause=0.05)
        assert wait_until(lambda: settled(client, ROWS), 20), client.get_status()
        dropped = client.get_status()["dropped"].get("spool_full", 0)
        front.clear_script()
        cleared = time.monotonic()
        recover = fault_db.wait_distinct(ROWS - dropped, timeout=60)
        if recover is not None:
            scenario.recover_s = time.monotonic() - cleared
        scenario.recover_note = "from the front passing through"
        time.sleep(0.5)
        status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]
    scenario.note(f"spool bound {SPOOL_LIMIT} B, peak {peak.bytes} B on disk "
                  f"({peak.files} files, {peak.claimed} claimed for a probe)")  # fmt: skip

    assert tracker.raised == []
    assert 0 < dropped < ROWS
    assert tally.duplicates == 0 and tally.unexpected == [], tally.summary()
    assert tally.stored + status["dropped"].get("spool_full", 0) == ROWS, tally.summary()
    assert peak.bytes <= SPOOL_LIMIT, (
        f"the spool held {peak.bytes} bytes in {peak.files} batch files ({peak.claimed} of "
        f"them claimed by a probe), over its bound of {SPOOL_LIMIT}"
    )


class SpoolPeak:
    """Samples the bytes of the spool's batch files (claimed ones too, not the temporary
    ones being written) every 2 ms while in its ``with`` block; keeps the peak."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bytes = self.files = self.claimed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SpoolPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            files = [p for p in spool_files(self.root) if ".tmp-" not in p.name]
            try:
                size = sum(p.stat().st_size for p in files)
            except FileNotFoundError:
                continue
            if size > self.bytes:
                self.bytes, self.files = size, len(files)
                self.claimed = sum(1 for p in files if ".claimed-" in p.name)


@pytest.mark.soak
def test_server_killed_five_times_during_a_long_run_at_least_once(
    fault_server: LocalClickHouse, fault_db: FaultDatabase, clients: ClientFactory,
    scenario: ScenarioRecord, tmp_path: Path,
) -> None:  # fmt: skip
    """Soak: server SIGKILLed and restarted five times while 100,000 rows flow"""
    scenario.guarantee = "at least once (18.16)"
    rows, kills = 100_000, 5
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(tmp_path / "spool")))
    tracker = Tracker(client)
    names = numbers(rows)
    step = rows // (2 * kills)
    recoveries: list[float] = []
    for index in range(2 * kills):
        tracker.track(names[index * step : (index + 1) * step], pace_every=500, pause=0.02)
        if index % 2 == 0:
            fault_server.kill()
        else:
            fault_server.restart()
            started = time.monotonic()
            if wait_until(lambda: client.get_status()["sink_state"] == "healthy", 60):
                recoveries.append(time.monotonic() - started)
    flushed = tracker.call(lambda: client.flush(timeout=120))
    status = client.get_status()
    tally = record_tally(scenario, fault_db, names)
    scenario.dropped = status["dropped_total"]
    scenario.recover_s, scenario.recover_note = max(recoveries, default=None), "slowest"

    assert tracker.raised == []
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert tally.distinct == rows and tally.stored >= rows, tally.summary()
    assert status["accepted"] == rows and status["dropped_total"] == 0, status
