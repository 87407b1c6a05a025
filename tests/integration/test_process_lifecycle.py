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
