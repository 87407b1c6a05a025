"""Behaviours every backend promises, run against each real destination:

* ``clickhouse``: the Debian server the suite starts (``ch_db``), counted by query;
* ``embedded``: chdb in the writer process; its database is locked by the writer while it runs,
  so it is counted on a copy of its directory taken at that moment (what the engine would answer
  a query with then);
* ``otlp``: the loopback OTLP receiver, counted by what it decoded.

Each destination says how many rows of each signal are queryable *now*: no test sleeps or polls
before counting.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType
from tests.support import ClickHouseDatabase, process_alive, shm_segments
from tests.support.servers.otlp_receiver import OtlpReceiver

SIGNALS = ("traces", "metrics", "logs")


@dataclass
class Destination:
    name: str
    options: Callable[..., dict[str, Any]]  # client options, with extra ones
    counts: Callable[[], dict[str, int]]  # rows queryable now, by signal


def clickhouse_destination(db: ClickHouseDatabase) -> Destination:
    return Destination(
        "clickhouse",
        db.client_options,
        lambda: {table: db.count(table) for table in SIGNALS},
    )


def embedded_counts(path: Path, scratch: Path) -> dict[str, int]:
    """Rows in a copy of the embedded database's directory (its lock file left out)."""
    if not path.exists():
        return dict.fromkeys(SIGNALS, 0)
    copy = scratch / f"copy-{time.monotonic_ns()}"
    for attempt in itertools.count():
        try:  # links are relative (data/ and metadata/ into store/); a merge may move parts
            shutil.copytree(path, copy, symlinks=True, ignore=shutil.ignore_patterns("status"))
            break
        except (shutil.Error, OSError):
            shutil.rmtree(copy, ignore_errors=True)
            if attempt == 4:
                raise
    from chdb import session as chdb_session

    open_session: Any = chdb_session.Session  # chdb ships no type information
    session = open_session(str(copy))
    try:
        sql = "SELECT " + ", ".join(f"(SELECT count() FROM telemetry.{t})" for t in SIGNALS)
        text = session.query(sql, "TabSeparated").bytes().decode()
    finally:
        session.close()
    shutil.rmtree(copy, ignore_errors=True)
    return dict(zip(SIGNALS, (int(n) for n in text.split()), strict=True))


def embedded_destination(path: Path, scratch: Path) -> Destination:
    def options(**extra: Any) -> dict[str, Any]:
        return {"project_name": "tests", "version": "1.0.0", "backend": "embedded",
                "embedded_path": str(path), **extra}  # fmt: skip

    return Destination(
        "embedded",
        options,
        lambda: embedded_counts(path, scratch),
    )


def otlp_counts(receiver: OtlpReceiver) -> dict[str, int]:
    assert receiver.errors == [] and receiver.rejected_requests == []
    points = sum(
        len(getattr(metric, metric.WhichOneof("data") or "").data_points)
        for _, _, metric in receiver.metrics()
    )
    return {
        "traces": len(receiver.spans()),
        "metrics": points,
        "logs": len(receiver.log_records()),
    }


def otlp_destination(receiver: OtlpReceiver) -> Destination:
    def options(**extra: Any) -> dict[str, Any]:
        return {"project_name": "tests", "version": "1.0.0", "backend": "otlp",
                "endpoint": receiver.url, "retry_backoff_base": 0.05, **extra}  # fmt: skip

    return Destination(
        "otlp",
        options,
        lambda: otlp_counts(receiver),
    )


@pytest.fixture(params=["clickhouse", "embedded", "otlp"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Destination]:
    if request.param == "clickhouse":
        yield clickhouse_destination(request.getfixturevalue("ch_db"))
    elif request.param == "embedded":
        scratch = tmp_path / "copies"
        scratch.mkdir()
        yield embedded_destination(tmp_path / "embedded", scratch)
    else:
        with OtlpReceiver() as receiver:
            yield otlp_destination(receiver)


@pytest.fixture
def clients() -> Iterator[Callable[..., AutomagikTelemetry]]:
    """Clients shut down after the test, whatever it did; a writer that outlives that is
    SIGKILLed by its pid."""
    made: list[AutomagikTelemetry] = []

    def make(**options: Any) -> AutomagikTelemetry:
        client = AutomagikTelemetry(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        pid = client.get_status().get("writer_pid")
        client.shutdown(timeout=5.0)
        deadline = time.monotonic() + 15
        while pid and process_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid and process_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def track_round(client: AutomagikTelemetry, events: int, metrics: int, logs: int) -> None:
    for i in range(events):
        client.track_event("round", {"i": i})
    for i in range(metrics):
        client.track_metric("depth", i, MetricType.GAUGE, {"i": i})
    for i in range(logs):
        client.track_log(f"line {i}", LogSeverity.INFO, {"i": i})


def my_segments() -> set[str]:
    """This process's shared-memory segments (names carry the creating pid)."""
    return {name for name in shm_segments() if f"-{os.getpid()}-" in name}


# --- flush ----------------------------------------------------------------------------------


def test_flush_returns_true_once_every_signal_is_queryable(
    destination: Destination, clients: Callable[..., AutomagikTelemetry]
) -> None:
    # the writer sends on flush() only: nothing would arrive by itself within the test
    client = clients(**destination.options(flush_interval=3600.0))
    expected = dict.fromkeys(SIGNALS, 0)
    for events, metrics, logs in ((40, 7, 3), (1, 0, 0), (0, 0, 5), (120, 33, 17)):
        track_round(client, events, metrics, logs)
        assert client.flush(timeout=60)
        expected = {"traces": expected["traces"] + events,
                    "metrics": expected["metrics"] + metrics,
                    "logs": expected["logs"] + logs}  # fmt: skip
        assert destination.counts() == expected  # no sleep: flush means queryable
    status = client.get_status()
    total = sum(expected.values())
    assert status["accepted"] == status["sent"] == total
    assert status["dropped_total"] == 0


def test_flush_with_nothing_tracked_returns_true_at_once(
    destination: Destination, clients: Callable[..., AutomagikTelemetry]
) -> None:
    client = clients(**destination.options(flush_interval=3600.0))
    started = time.monotonic()
    assert client.flush(timeout=60)
    assert time.monotonic() - started < 10
    assert destination.counts() == dict.fromkeys(SIGNALS, 0)


# --- shutdown -------------------------------------------------------------------------------


def test_shutdown_delivers_what_was_tracked_and_stops_the_writer(
    destination: Destination, clients: Callable[..., AutomagikTelemetry]
) -> None:
    before = my_segments()
    client = clients(**destination.options(flush_interval=3600.0))
    track_round(client, 500, 11, 7)
    status = client.get_status()
    writer = status["writer_pid"]
    segments = my_segments() - before
    assert status["writer_alive"] and process_alive(writer)
    assert len(segments) == 1

    assert client.shutdown(timeout=60) is True  # delivered, not only spooled

    assert not process_alive(writer)
    assert not segments & my_segments()  # its ring is unlinked
    after = client.get_status()
    assert (after["writer_alive"], after["sink_state"]) == (False, "stopped")
    assert destination.counts() == {"traces": 500, "metrics": 11, "logs": 7}
    assert client.shutdown() is True  # again: nothing left to do
    client.track_event("after shutdown")  # counted as dropped, never raises, starts nothing
    late = client.get_status()
    assert (late["accepted"], late["dropped"]) == (518, {"after_shutdown": 1})
    assert (late["writer_alive"], my_segments() - before) == (False, set())


# --- full ring ------------------------------------------------------------------------------

RING = 64 * 1024


def test_a_full_ring_with_on_full_drop_counts_every_refused_row(
    destination: Destination, clients: Callable[..., AutomagikTelemetry]
) -> None:
    """The writer is stopped (SIGSTOP) so that nothing drains; every track call beyond what the
    ring holds is refused at once and counted; the rows it took arrive once the writer runs."""
    client = clients(**destination.options(ring_size=RING, on_full="drop", flush_interval=0.05))
    client.track_event("fill", {"n": 1})
    assert client.flush(timeout=60)  # the writer is up and the destination known
    writer = client.get_status()["writer_pid"]
    # the row as the producer writes it now: after the flush it leaves out what no table keeps
    # (18.16's legacy tables: attributes)
    producer = client._producer
    assert producer is not None
    fits = RING // len(producer._span(time.time_ns(), "fill", {"n": 1}, None))
    extra = 700
    os.kill(writer, signal.SIGSTOP)
    try:
        started = time.monotonic()
        for _ in range(fits + extra):
            client.track_event("fill", {"n": 1})
        elapsed = time.monotonic() - started
        full = client.get_status()
    finally:
        os.kill(writer, signal.SIGCONT)
    assert full["accepted"] == 1 + fits
    assert full["dropped"] == {"ring_full": extra}
    assert full["dropped_total"] == extra
    assert elapsed < 5  # drop: no call waited for room
    assert client.flush(timeout=60)
    final = client.get_status()
    assert final["sent"] == 1 + fits
    assert final["dropped"] == {"ring_full": extra}
    assert destination.counts() == {"traces": 1 + fits, "metrics": 0, "logs": 0}
