"""The full-ring policy, applied and counted exactly: the sink is unreachable and the spool is
off (spool_max_bytes=0), so nothing drains."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.rows.clickhouse import ClickHouseRows
from tests.support import ClickHouseDatabase

RING = 64 * 1024
DEAD = "http://127.0.0.1:9"  # nothing listens on the discard port here


def row_size() -> int:
    # the same row the client writes: its size depends only on the name and attributes
    return len(ClickHouseRows().span(time.time_ns(), "fill", {"n": 1}, None))


def fill(client: AutomagikTelemetry, n: int) -> None:
    for _ in range(n):
        client.track_event("fill", {"n": 1})


def test_drop_policy_counts_every_row_it_refuses() -> None:
    client = AutomagikTelemetry(
        project_name="full", version="1", backend="clickhouse", clickhouse_endpoint=DEAD,
        ring_size=RING, spool_max_bytes=0, on_full="drop", timeout=0.5, max_retries=0,
    )  # fmt: skip
    fill(client, 5000)
    status = client.get_status()
    client.shutdown(timeout=0.1)
    fits = RING // row_size()
    assert status["accepted"] == fits
    assert status["dropped"] == {"ring_full": 5000 - fits}


def test_block_policy_waits_once_then_drops_at_once() -> None:
    client = AutomagikTelemetry(
        project_name="full", version="1", backend="clickhouse", clickhouse_endpoint=DEAD,
        ring_size=RING, spool_max_bytes=0, on_full="block", block_timeout=0.3, timeout=0.5,
        max_retries=0,
    )  # fmt: skip
    fits = RING // row_size()
    fill(client, fits)
    started = time.monotonic()
    fill(client, 1000)  # the first waits block_timeout, the rest drop without waiting
    elapsed = time.monotonic() - started
    status = client.get_status()
    client.shutdown(timeout=0.1)
    assert status["accepted"] == fits
    assert status["dropped"] == {"ring_full": 1000}
    assert 0.3 <= elapsed < 0.3 + 1.0


def test_async_track_never_sleeps_inside_the_loop() -> None:
    client = AutomagikTelemetry(
        project_name="full", version="1", backend="clickhouse", clickhouse_endpoint=DEAD,
        ring_size=RING, spool_max_bytes=0, on_full="block", block_timeout=0.2, timeout=0.5,
        max_retries=0,
    )  # fmt: skip
    fits = RING // row_size()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> None:
        task = asyncio.create_task(ticker())
        for _ in range(fits + 3):
            await client.track_event_async("fill", {"n": 1})
        task.cancel()

    asyncio.run(main())
    status = client.get_status()
    client.shutdown(timeout=0.1)
    assert status["accepted"] == fits
    assert status["dropped"] == {"ring_full": 3}
    assert ticks >= 10  # the loop kept running while the call waited for room


def test_once_the_ring_had_room_again_a_full_ring_is_waited_for_again(
    ch_db: ClickHouseDatabase,
) -> None:
    """The give-up after one timed-out wait lasts until the ring has room again, not for the
    client's life: the writer is paused (SIGSTOP) to fill the ring, resumed to empty it."""
    client = AutomagikTelemetry(**ch_db.client_options(
        ring_size=RING, on_full="block", block_timeout=0.3, flush_interval=0.05,
    ))  # fmt: skip
    client.track_event("fill", {"n": 1})
    assert client.flush(30)  # the writer is up and the server known
    writer = client.get_status()["writer_pid"]
    # 18.16's legacy tables keep no attributes: once the writer has said so, the producer
    # leaves them out (``Producer.leave_out``), so a row is the size the producer writes now
    producer = client._producer
    assert producer is not None
    deadline = time.monotonic() + 10
    while producer._left_out != 0b111 and time.monotonic() < deadline:
        time.sleep(0.05)
    fits = RING // len(producer._span(time.time_ns(), "fill", {"n": 1}, None))

    def full_ring_wait() -> float:
        os.kill(writer, signal.SIGSTOP)
        try:
            fill(client, fits)
            started = time.monotonic()
            fill(client, 1)  # no room: waits block_timeout, then gives up and drops the row
            return time.monotonic() - started
        finally:
            os.kill(writer, signal.SIGCONT)

    first = full_ring_wait()
    assert client.flush(30)  # the writer empties the ring
    second = full_ring_wait()
    assert client.flush(30)
    status = client.get_status()
    client.shutdown()
    assert first >= 0.3 and second >= 0.3, (first, second)
    assert status["dropped"] == {"writer_stuck": 2}  # a stopped writer makes no progress
    assert status["accepted"] == status["sent"] == ch_db.count() == 1 + 2 * fits
