"""The writer's and the application's lives: restarts, orphans, atexit, fork."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.ring import segment as ring
from tests.support import ClickHouseDatabase, process_alive, shm_segments

ROOT = Path(__file__).resolve().parents[2]


def run_child(body: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def wait_until(predicate, timeout: float = 60) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_writer_is_restarted_and_nothing_is_lost(ch_db: ClickHouseDatabase) -> None:
    """At-least-once: the 18.16 server cannot deduplicate, so rows may repeat, never go missing."""
    client = AutomagikTelemetry(**ch_db.client_options())
    for i in range(50_000):
        client.track_event(f"k{i}")
    first = client._writer.pid  # type: ignore[union-attr]
    os.kill(first, signal.SIGKILL)
    for i in range(50_000, 100_000):
        client.track_event(f"k{i}")
    assert client.flush(timeout=120)
    status = client.get_status()
    client.shutdown()
    assert status["writer_restarts"] == 1 and status["writer_pid"] != first
    assert int(ch_db.query(f"SELECT uniqExact(span_name) FROM {ch_db.name}.traces")) == 100_000
    assert ch_db.count() >= 100_000


def test_the_writer_delivers_after_the_application_is_killed(ch_db: ClickHouseDatabase) -> None:
    done = run_child(
        f"""
        import os, signal
        from automagik_telemetry import AutomagikTelemetry
        client = AutomagikTelemetry(**{ch_db.client_options(flush_interval=3600.0)!r})
        for i in range(20_000):
            client.track_event("orphan", {{"i": i}})
        print(client._writer.pid, client._ring.segment.name, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # right after the last track call returned
        """
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    writer_pid, segment = done.stdout.split()
    assert wait_until(lambda: ch_db.count() == 20_000), ch_db.count()
    assert wait_until(lambda: not process_alive(int(writer_pid)))
    assert wait_until(lambda: segment not in shm_segments())


def test_exit_without_shutdown_delivers_through_atexit(ch_db: ClickHouseDatabase) -> None:
    done = run_child(
        f"""
        from automagik_telemetry import AutomagikTelemetry
        client = AutomagikTelemetry(**{ch_db.client_options(flush_interval=3600.0)!r})
        for i in range(5_000):
            client.track_event("atexit", {{"i": i}})
        print(client._writer.pid, client._ring.segment.name, flush=True)
        """
    )
    assert done.returncode == 0, done.stderr
    assert ch_db.count() == 5_000  # delivered before the interpreter exited
    writer_pid, segment = done.stdout.split()
    assert not process_alive(int(writer_pid))
    assert segment not in shm_segments()


def test_a_forked_child_gets_its_own_ring_and_writer(ch_db: ClickHouseDatabase) -> None:
    client = AutomagikTelemetry(**ch_db.client_options())
    client.track_event("parent-before")
    parent_segment = client._ring.segment.name  # type: ignore[union-attr]
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            client.track_event("child")
            ok = client._ring is not None and client._ring.segment.name != parent_segment
            code = 0 if ok and client.shutdown(timeout=30) else 3
        finally:
            os._exit(code)
    client.track_event("parent-after")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.flush(timeout=30)
    client.shutdown()
    names = ch_db.query(f"SELECT span_name FROM {ch_db.name}.traces ORDER BY span_name")
    assert names.split() == ["child", "parent-after", "parent-before"]


def test_rows_left_by_an_application_and_its_writer_both_killed_are_delivered_by_the_next(
    ch_db: ClickHouseDatabase,
) -> None:
    """Both processes SIGKILLed while the rows sit in the ring (the writer was stopped): the
    segment stays in /dev/shm; the next client of the same destination adopts it, delivers
    every row once, and the segment is gone afterwards."""
    options = ch_db.client_options(flush_interval=3600.0)
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from automagik_telemetry import AutomagikTelemetry
            client = AutomagikTelemetry(**{options!r})
            client.track_event("warm-up")
            assert client.flush(30)
            print(client._writer.pid, client._ring.segment.name, flush=True)
            sys.stdin.readline()  # the writer is stopped now
            for i in range(30_000):
                client.track_event("left", {{"i": i}})
            print("tracked", flush=True)
            time.sleep(120)
        """)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    try:
        writer_pid, segment = child.stdout.readline().split()
        os.kill(int(writer_pid), signal.SIGSTOP)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "tracked"
        child.kill()
        os.kill(int(writer_pid), signal.SIGKILL)
    finally:
        child.kill()
        child.wait(10)
        child.stdin.close()
        child.stdout.close()
    assert wait_until(lambda: not process_alive(int(writer_pid)), 10)
    assert segment in shm_segments()  # nobody is left to deliver or unlink it
    assert ch_db.count() == 1

    # a client of another destination leaves it alone: its writer lock stays free
    elsewhere = AutomagikTelemetry(**ch_db.client_options(clickhouse_database="elsewhere"))
    elsewhere.track_event("elsewhere")
    elsewhere.shutdown(timeout=0.1)
    lock = ring.lock_segment(segment)
    assert lock is not None
    os.close(lock)

    with AutomagikTelemetry(**ch_db.client_options()) as client:
        assert wait_until(lambda: segment not in shm_segments(), 60)  # delivered, unlinked
        assert ch_db.count() == 30_001
        assert client.flush(30)
    left = f"SELECT uniqExact(span_name), count() FROM {ch_db.name}.traces WHERE span_name = 'left'"
    assert ch_db.query(left).split() == ["1", "30000"]


def test_a_segment_whose_writer_lives_is_not_adopted(ch_db: ClickHouseDatabase) -> None:
    """A live application's segment, its writer stopped (SIGSTOP) but alive, stays as it is
    when another client of the same destination starts."""
    first = AutomagikTelemetry(**ch_db.client_options(flush_interval=3600.0))
    first.track_event("mine")
    assert first.flush(30)
    writer = first.get_status()["writer_pid"]
    os.kill(writer, signal.SIGSTOP)
    try:
        first.track_event("waits for its own writer")
        other = AutomagikTelemetry(**ch_db.client_options())
        other.track_event("other")
        assert other.flush(30)
        other.shutdown()
        assert first._ring.segment.name in shm_segments()  # type: ignore[union-attr]
        assert ch_db.count() == 2  # "mine" and "other": nothing of the first's ring was taken
    finally:
        os.kill(writer, signal.SIGCONT)
    assert first.flush(30)
    first.shutdown()
    assert ch_db.count() == 3
