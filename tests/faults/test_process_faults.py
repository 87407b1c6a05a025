"""Faults of the processes: the writer SIGKILLed ten times during a run (on 18.16 and on the
embedded engine), the writer SIGKILLed after the server stored its batch, the application
SIGKILLed right after its last track_event returned, and a fork with both sides tracking.

A writer killed after the server stored a batch but before it committed the ring's tail is
replaced by one that re-cuts and re-sends that batch with the same deduplication token: stored
twice on 18.16 (no ``insert_deduplication_token``, at-least-once), once where the sink passes
the token (the embedded engine with the current schema: exactly-once).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from automagik_telemetry import AutomagikTelemetry
from tests.faults.conftest import ClientFactory
from tests.faults.helpers import (
    FAST,
    FaultDatabase,
    Tally,
    Tracker,
    embedded_tally,
    numbers,
    reap_writer,
    spool_files,
    wait_until,
)
from tests.faults.report import ScenarioRecord
from tests.support import process_alive, shm_segments
from tests.support.servers.http_front import HttpFront

ROOT = Path(__file__).resolve().parents[2]
KILLS = 10
RESTART_BOUND = 5.0  # s from SIGKILL to a new writer: the supervisor looks every 0.2 s


def kill_writer_repeatedly(
    client: AutomagikTelemetry, tracker: Tracker, names: list[str], kills: int,
    scenario: ScenarioRecord, *, pace: tuple[int, float] = (100, 0.02),
    bound: float = RESTART_BOUND,
) -> list[float]:  # fmt: skip
    """Track ``names`` in ``kills + 1`` slices and SIGKILL the writer after each of the first
    ``kills`` (mid-batch: rows are flowing). Returns how long each restart took; stops killing
    when a restart takes longer than ``bound`` seconds (the rest is still tracked)."""
    slices = [names[len(names) * i // (kills + 1) : len(names) * (i + 1) // (kills + 1)]
              for i in range(kills + 1)]  # fmt: skip
    latencies: list[float] = []
    for index, part in enumerate(slices):
        tracker.track(part, pace_every=pace[0], pause=pace[1])
        if index == kills or len(latencies) < index:
            continue
        pid = client.get_status()["writer_pid"]
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()

        def restarted(old: int = pid) -> bool:
            new = client.get_status()["writer_pid"]
            return bool(new) and new != old and process_alive(new)

        if wait_until(restarted, bound, step=0.01):
            latencies.append(time.monotonic() - killed)
        else:
            scenario.note(
                f"kill {index + 1}: no new writer within {bound:.0f} s "
                f"(restart latencies so far: {', '.join(f'{x:.2f}' for x in latencies)} s)"
            )
    return latencies


def test_writer_sigkilled_ten_times_during_a_run_at_least_once(
    fault_db: FaultDatabase, clients: ClientFactory, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """Writer SIGKILLed ten times during a run"""
    scenario.guarantee = "at least once (18.16)"
    rows = 5000
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(tmp_path / "spool")))
    tracker = Tracker(client)
    names = numbers(rows)
    latencies = kill_writer_repeatedly(client, tracker, names, KILLS, scenario)
    started = time.monotonic()
    flushed = tracker.call(lambda: client.flush(timeout=60))
    status = client.get_status()
    tally = fault_db.tally(names)
    record(scenario, tally, status)
    scenario.recover_s = max(latencies, default=None)
    scenario.recover_note = "slowest restart"
    scenario.note(f"{len(latencies)} kills, writer restarts {status['writer_restarts']}, "
                  f"last flush {time.monotonic() - started:.2f} s")  # fmt: skip

    assert tracker.raised == []
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert tally.distinct == rows and tally.stored >= rows, tally.summary()
    assert status["accepted"] == rows and status["dropped_total"] == 0, status
    assert len(latencies) == KILLS, (
        f"the client restarted the writer {len(latencies)} times within {RESTART_BOUND} s "
        f"of its death, not {KILLS}: restart latencies {latencies}"
    )
    assert status["writer_restarts"] == KILLS, status


def test_writer_sigkilled_ten_times_embedded_exactly_once(
    clients: ClientFactory, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """Writer (and with it the embedded engine) SIGKILLed ten times during a run"""
    scenario.backend = "embedded (chdb, current schema)"
    scenario.guarantee = "exactly once"
    rows = 5000
    path = tmp_path / "chdb"
    client = clients(project_name="faults", version="1.0.0", backend="embedded",
                     embedded_path=str(path), spool_dir=str(tmp_path / "spool"),
                     **FAST)  # fmt: skip
    tracker = Tracker(client)
    names = numbers(rows)
    # the embedded writer needs ~1 s to open chdb: give each one time to send something
    latencies = kill_writer_repeatedly(client, tracker, names, KILLS, scenario, pace=(100, 0.06))
    started = time.monotonic()
    flushed = tracker.call(lambda: client.flush(timeout=60))
    scenario.recover_s = max(latencies, default=None)
    scenario.recover_note = "slowest restart"
    status = client.get_status()
    writer = status["writer_pid"]
    tracker.call(lambda: client.shutdown(timeout=30))
    assert reap_writer(writer, 30)
    tally = embedded_tally(path, names)
    record(scenario, tally, status)
    scenario.note(f"{len(latencies)} kills, writer restarts {status['writer_restarts']}, "
                  f"last flush {time.monotonic() - started:.2f} s")  # fmt: skip

    assert tracker.raised == []
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert status["accepted"] == rows and status["dropped_total"] == 0, status
    assert (tally.stored, tally.distinct, tally.duplicates) == (rows, rows, 0), tally.summary()
    assert len(latencies) == KILLS, f"restart latencies {latencies}"


def span_names(body: bytes) -> set[str]:
    """The span names of the rows of an insert body (JSONEachRow)."""
    return {json.loads(line)["span_name"] for line in body.splitlines() if line.strip()}


def test_writer_sigkilled_after_the_server_stored_its_batch_at_least_once(
    fault_db: FaultDatabase, clients: ClientFactory, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """Writer SIGKILLed after the server stored its batch, before the answer reached it"""
    scenario.guarantee = "at least once (18.16): that batch twice"
    rows = 3000
    with HttpFront(fault_db.server.url, keep_bodies=True) as front:
        client = clients(**fault_db.client_options(
            **FAST, max_in_flight=1, clickhouse_endpoint=front.url,
            spool_dir=str(tmp_path / "spool")))  # fmt: skip

        def kill_writer() -> None:
            os.kill(client.get_status()["writer_pid"], signal.SIGKILL)

        inserts = itertools.count(1)
        front.before_answer(kill_writer, when=lambda r: r.is_insert and next(inserts) == 3)
        tracker = Tracker(client)
        names = numbers(rows)
        tracker.track(names, pace_every=100, pause=0.04)
        flushed = tracker.call(lambda: client.flush(timeout=30))
        status = client.get_status()
        exchanges = [e for e in front.exchanges if e.insert]
    tally = fault_db.tally(names)
    record(scenario, tally, status)
    killed = next(e for e in exchanges if e.action == "hooked")
    resent = [e for e in exchanges if e.received > killed.received and e.body == killed.body]
    twice = {name for name, count in fault_db.names().items() if count > 1}
    scenario.note(f"the killed writer's batch ({len(span_names(killed.body))} rows) re-sent "
                  f"{len(resent)} time(s) with the same body by its successor")  # fmt: skip

    assert tracker.raised == []
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert status["writer_restarts"] == 1, status
    # the successor cut that batch the same way: same rows, same bytes, hence the same token
    assert len(resent) == 1, [(e.action, e.body_length, e.body_crc) for e in exchanges]
    assert twice == span_names(killed.body), tally.summary()  # that batch, and nothing else


def test_writer_sigkilled_with_an_older_batch_in_flight_recuts_the_same_batches_at_least_once(
    fault_db: FaultDatabase, clients: ClientFactory, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """Writer SIGKILLed while an older batch waits for its answer and a younger one was
    acknowledged"""
    scenario.guarantee = "at least once (18.16); re-sent batches cut as before (same token)"
    release = threading.Event()
    # batches are cut at batch_size rows only (no flush_interval): B1 = n0-n199, B2 = n200-n399
    options = {**FAST, "flush_interval": 3600.0}
    with HttpFront(fault_db.server.url, keep_bodies=True) as front:
        client = clients(**fault_db.client_options(
            **options, clickhouse_endpoint=front.url, spool_dir=str(tmp_path / "spool"),
        ))  # fmt: skip
        # B1 reaches the server, its answer is held back; B2 goes through and is acknowledged
        front.before_answer(lambda: bool(release.wait(30)), when=lambda r: r.is_insert)
        tracker = Tracker(client)
        names = numbers(3000)

        def inserts(action: str) -> int:
            return sum(1 for e in front.exchanges if e.insert and e.action == action)

        tracker.track(names[:200])
        assert wait_until(lambda: not front.hook_armed, 10)
        tracker.track(names[200:400])
        # with B1 in flight, B2 would wait to grow into a full batch: a flush request (which
        # times out, B1 being held) sends it now
        assert tracker.call(lambda: client.flush(timeout=0.05)) is False
        assert wait_until(lambda: inserts("forwarded") == 1, 10), front.exchanges
        time.sleep(0.3)  # the writer has taken B2's answer in (it cannot commit past B1)
        tracker.track(names[400:500])  # fewer than batch_size: they wait in the ring
        time.sleep(0.2)
        pid = client.get_status()["writer_pid"]
        os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        release.set()
        assert wait_until(lambda: client.get_status()["writer_pid"] not in (pid, None), 10)
        tracker.track(names[500:], pace_every=100, pause=0.02)
        flushed = tracker.call(lambda: client.flush(timeout=30))
        status = client.get_status()
        exchanges = [e for e in front.exchanges if e.insert]
    tally = fault_db.tally(names)
    record(scenario, tally, status)
    before = [e for e in exchanges if e.received < killed_at]
    sent_before = set().union(*(span_names(e.body) for e in before))
    bodies_before = {e.body for e in before}
    after = [e for e in exchanges if e.received > killed_at]
    recut = [
        (len(span_names(e.body)), len(span_names(e.body) & sent_before))
        for e in after
        if span_names(e.body) & sent_before and e.body not in bodies_before
    ]
    scenario.note(
        f"before the kill: {[len(span_names(e.body)) for e in before]} rows per insert; after: "
        f"{len(recut)} insert(s) (rows, of them already stored) cut differently {recut}"
    )

    assert tracker.raised == []
    assert [len(span_names(e.body)) for e in before] == [200, 200], before
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert status["writer_restarts"] == 1, status
    # what the successor sends again, it sends as its predecessor cut it (the same token):
    # a server that deduplicates then stores it once
    assert recut == [], (
        f"after the restart, {len(recut)} insert(s) carried rows the killed writer had "
        f"already sent, cut differently (rows, of them already stored): {recut}"
    )


def test_application_sigkilled_right_after_its_last_track_event_exactly_once(
    fault_db: FaultDatabase, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """Application SIGKILLed right after its last track_event returned"""
    scenario.guarantee = "exactly once"
    rows = 3077  # not a multiple of batch_size: the last rows only go when the writer drains
    options = fault_db.client_options(**{**FAST, "flush_interval": 3600.0},
                                      spool_dir=str(tmp_path / "spool"))  # fmt: skip
    before = shm_segments()
    child = textwrap.dedent(
        f"""
        import os, signal
        from automagik_telemetry import AutomagikTelemetry
        client = AutomagikTelemetry(**{options!r})
        for i in range({rows}):
            client.track_event(f"n{{i}}")
        print(client.get_status()["writer_pid"], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    died = time.monotonic()
    writer = int(done.stdout.split()[0]) if done.stdout.strip() else 0
    recover = fault_db.wait_distinct(rows, timeout=60)
    scenario.recover_s, scenario.recover_note = recover, "from the application's death"
    writer_gone = wait_until(lambda: not process_alive(writer), 30)
    names = numbers(rows)
    tally = fault_db.tally(names)
    scenario.sent, scenario.stored, scenario.distinct = rows, tally.stored, tally.distinct
    scenario.duplicates, scenario.missing = tally.duplicates, len(tally.missing)
    scenario.note(f"writer exited {time.monotonic() - died:.2f} s after the application")

    assert done.returncode == -signal.SIGKILL, done.stderr
    assert writer > 0, done.stdout
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (rows, rows, 0, []), (
        tally.summary()
    )
    assert writer_gone
    assert wait_until(lambda: shm_segments() <= before, 10), shm_segments() - before
    assert spool_files(tmp_path / "spool") == []


def test_fork_with_parent_and_child_tracking_exactly_once(
    fault_db: FaultDatabase, clients: ClientFactory, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """fork() with both parent and child tracking"""
    scenario.guarantee = "exactly once"
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(tmp_path / "spool")))
    tracker = Tracker(client)
    before, parent_rows, child_rows = numbers(500, "p"), numbers(2500, "p", 500), numbers(3000, "c")
    tracker.track(before)
    parent_segment = client._ring.segment.name if client._ring else ""
    pid = os.fork()
    if pid == 0:  # the child: track, shut down (delivers), and leave without any cleanup
        code = 1
        try:
            child = Tracker(client)
            child.track(child_rows, pace_every=250, pause=0.01)
            segment = client._ring.segment.name if client._ring else parent_segment
            delivered = client.shutdown(timeout=60)
            code = 0 if delivered and not child.raised and segment != parent_segment else 3
        finally:
            os._exit(code)
    started = time.monotonic()
    tracker.track(parent_rows, pace_every=250, pause=0.01)
    _, wait_status = os.waitpid(pid, 0)
    flushed = tracker.call(lambda: client.flush(timeout=60))
    status = client.get_status()
    names = before + parent_rows + child_rows
    tally = fault_db.tally(names)
    record(scenario, tally, status)
    scenario.sent = len(names)
    scenario.recover_s, scenario.recover_note = time.monotonic() - started, "whole run"

    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert tracker.raised == []
    assert flushed is True
    assert (tally.stored, tally.distinct, tally.duplicates, tally.missing) == (
        len(names), len(names), 0, []), tally.summary()  # fmt: skip
    assert status["accepted"] == len(before) + len(parent_rows), status


def record(scenario: ScenarioRecord, tally: Tally, status: dict[str, object]) -> None:
    scenario.sent = tally.expected
    scenario.stored = tally.stored
    scenario.distinct = tally.distinct
    scenario.duplicates = tally.duplicates
    scenario.missing = len(tally.missing)
    scenario.dropped = int(status.get("dropped_total") or 0)  # type: ignore[call-overload]


@pytest.mark.soak
def test_writer_sigkilled_ten_times_waiting_for_each_restart_at_least_once(
    fault_db: FaultDatabase, clients: ClientFactory, scenario: ScenarioRecord, tmp_path: Path
) -> None:
    """Soak: writer SIGKILLed ten times, waiting as long as each restart takes, 50,000 rows"""
    scenario.guarantee = "at least once (18.16)"
    rows = 50_000
    client = clients(**fault_db.client_options(**FAST, spool_dir=str(tmp_path / "spool")))
    tracker = Tracker(client)
    names = numbers(rows)
    latencies = kill_writer_repeatedly(client, tracker, names, KILLS, scenario,
                                       pace=(500, 0.02), bound=60.0)  # fmt: skip
    flushed = tracker.call(lambda: client.flush(timeout=120))
    status = client.get_status()
    tally = fault_db.tally(names)
    record(scenario, tally, status)
    scenario.recover_s, scenario.recover_note = max(latencies, default=None), "slowest restart"
    scenario.note("restarts after " + ", ".join(f"{x:.1f}" for x in latencies) + " s")

    assert tracker.raised == []
    assert len(latencies) == KILLS
    assert flushed is True
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert tally.distinct == rows and tally.stored >= rows, tally.summary()
    assert status["accepted"] == rows and status["dropped_total"] == 0, status
