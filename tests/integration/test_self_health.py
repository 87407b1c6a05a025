"""The engine's own health, tracked (opt-in) into the same tables, against 18.16."""

from __future__ import annotations

import time

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.self_health import SelfHealth, track_self_health
from tests.support import ClickHouseDatabase


def _sum(db: ClickHouseDatabase, name: str) -> float:
    return float(db.query(
        f"SELECT sum(value_double) FROM {db.name}.metrics "
        f"WHERE metric_name = 'automagik_telemetry.{name}'"
    ))  # fmt: skip


def test_counters_are_deltas_that_add_up_to_the_status(ch_db: ClickHouseDatabase) -> None:
    client = AutomagikTelemetry(**ch_db.client_options(batch_size=1))
    health = SelfHealth(client, interval=3600)  # readings by hand
    try:
        for i in range(5):
            client.track_event("work", {"i": i})
        assert client.flush(timeout=30)
        assert health.tick()
        assert client.flush(timeout=30)
        assert health.tick()
        assert client.flush(timeout=30)
        sent_at_second_reading = 5 + 9  # the events, then the first reading's nine metrics
        assert _sum(ch_db, "rows_sent") == sent_at_second_reading
        assert ch_db.count("metrics", "metric_name = 'automagik_telemetry.rows_sent'") == 2
        assert _sum(ch_db, "rows_dropped") == 0
        gauges = ch_db.query(
            f"SELECT count() FROM {ch_db.name}.metrics WHERE metric_type = 'GAUGE' "
            "AND metric_name = 'automagik_telemetry.ring_fill'"
        )
        assert gauges == "2"
    finally:
        client.shutdown()
    assert health.tick() is False  # the client is shut down: the readings end


def test_the_thread_tracks_on_its_interval_and_ends_with_the_client(
    ch_db: ClickHouseDatabase,
) -> None:
    client = AutomagikTelemetry(**ch_db.client_options(batch_size=1, flush_interval=0.05))
    health = track_self_health(client, interval=0.05)
    deadline = time.monotonic() + 30
    while ch_db.count("metrics", "metric_name LIKE 'automagik_telemetry.%'") < 18:
        assert time.monotonic() < deadline, "no self-health rows arrived"
        time.sleep(0.05)
    client.shutdown()
    assert health._thread is not None
    health._thread.join(10)
    assert not health._thread.is_alive()
