"""Delivery into a real ClickHouse server (Debian's 18.16), counted by query."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType
from tests.support import ClickHouseDatabase, process_alive, shm_segments

ROOT = Path(__file__).resolve().parents[2]


def test_one_million_events_from_one_process_land_exactly(ch_db: ClickHouseDatabase) -> None:
    with AutomagikTelemetry(**ch_db.client_options()) as client:
        for i in range(1_000_000):
            client.track_event("bulk", {"i": i})
        assert client.flush(timeout=120)
        status = client.get_status()
    assert ch_db.count() == 1_000_000
    assert status["accepted"] == status["sent"] == 1_000_000
    assert status["dropped_total"] == 0


def test_eight_threads_each_row_exactly_once(ch_db: ClickHouseDatabase) -> None:
    per_thread = 125_000
    client = AutomagikTelemetry(**ch_db.client_options())

    def work(thread: int) -> None:
        for i in range(per_thread):
            client.track_event(f"t{thread}-{i}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert client.flush(timeout=120)
    client.shutdown()
    assert ch_db.count() == 8 * per_thread
    distinct = ch_db.query(f"SELECT uniqExact(span_name) FROM {ch_db.name}.traces")
    assert int(distinct) == 8 * per_thread


def test_metrics_and_logs_land_in_their_tables(ch_db: ClickHouseDatabase) -> None:
    with AutomagikTelemetry(**ch_db.client_options()) as client:
        client.track_metric("queue.depth", 7, MetricType.GAUGE)
        client.track_metric("requests", 3, "counter")
        client.track_metric("latency_ms", 12.5, MetricType.HISTOGRAM)
        client.track_log("started", LogSeverity.INFO)
        client.track_log("slow disk", "warning")
        client.track_log("boom", LogSeverity.ERROR, {"exception.type": "IOError"})
        assert client.flush(timeout=30)
    rows = ch_db.query(
        "SELECT metric_name, metric_type, value_int, value_double, is_monotonic, "
        "aggregation_temporality, histogram_count, histogram_sum, "
        "arraySum(histogram_bucket_counts), project_name "
        f"FROM {ch_db.name}.metrics ORDER BY metric_name FORMAT TSV"
    ).splitlines()
    assert rows == [
        "latency_ms\tHISTOGRAM\t0\t12.5\t0\tDELTA\t1\t12.5\t1\ttests",
        "queue.depth\tGAUGE\t7\t7\t0\tUNSPECIFIED\t0\t0\t0\ttests",
        "requests\tSUM\t3\t3\t1\tDELTA\t0\t0\t0\ttests",
    ]
    logs = ch_db.query(
        "SELECT body, severity_text, severity_number, is_exception, exception_type "
        f"FROM {ch_db.name}.logs ORDER BY severity_number FORMAT TSV"
    ).splitlines()
    assert logs == [
        "started\tINFO\t9\t0\t",
        "slow disk\tWARN\t13\t0\t",
        "boom\tERROR\t17\t1\tIOError",
    ]
    assert ch_db.count("traces") == 0


def test_errors_are_stored_as_errors_with_ids(ch_db: ClickHouseDatabase) -> None:
    with AutomagikTelemetry(**ch_db.client_options()) as client:
        try:
            raise KeyError("missing")
        except KeyError as exc:
            client.track_error(exc, {"job": "nightly"})
        client.track_event("fine")
        assert client.flush(timeout=30)
    rows = ch_db.query(
        "SELECT span_name, status_code, status_message, length(trace_id), length(span_id) "
        f"FROM {ch_db.name}.traces ORDER BY span_name FORMAT TSV"
    ).splitlines()
    # TSV escapes the quotes of str(KeyError('missing'))
    assert rows == ["automagik.error\tERROR\t\\'missing\\'\t32\t16", "fine\tOK\t\t32\t16"]


def test_flush_returns_true_only_when_rows_are_queryable(ch_db: ClickHouseDatabase) -> None:
    with AutomagikTelemetry(**ch_db.client_options(flush_interval=3600.0)) as client:
        for round_ in range(5):
            for i in range(37):
                client.track_event("round", {"i": i})
            assert client.flush(timeout=30)
            assert ch_db.count() == 37 * (round_ + 1)  # no sleep: flush means queryable


def test_wrong_password_says_why_once_and_raises_nothing(
    ch_db: ClickHouseDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="automagik_telemetry")
    client = AutomagikTelemetry(**ch_db.client_options(clickhouse_password="wrong", batch_size=1))
    for i in range(50):
        client.track_event("denied", {"i": i})
    assert client.flush(timeout=2) is False
    status = client.get_status()
    client.shutdown(timeout=0.5)
    assert status["sink_state"] == "permanent_error"
    assert "Wrong password" in status["last_error"]
    assert "clickhouse_password" in status["last_error"]
    assert ch_db.server.password not in status["last_error"]
    auth_lines = [r for r in caplog.records if "refused user" in r.getMessage()]
    assert len(auth_lines) == 1, [r.getMessage() for r in caplog.records]
    assert ch_db.count() == 0


def test_missing_table_names_the_fix(ch_db: ClickHouseDatabase) -> None:
    client = AutomagikTelemetry(**ch_db.client_options(clickhouse_table="nope"))
    client.track_event("lost?")
    assert client.flush(timeout=2) is False
    status = client.get_status()
    client.shutdown(timeout=0.5)
    assert f"{ch_db.name}.nope" in status["last_error"]
    assert "schema --apply" in status["last_error"]


def test_shutdown_in_a_child_leaves_no_segment_and_no_process(ch_db: ClickHouseDatabase) -> None:
    before = shm_segments()
    script = textwrap.dedent(
        f"""
        from automagik_telemetry import AutomagikTelemetry
        client = AutomagikTelemetry(**{ch_db.client_options()!r})
        for i in range(1000):
            client.track_event("child", {{"i": i}})
        print(client._ring.segment.name, client._writer.pid, flush=True)
        assert client.shutdown(timeout=30)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    segment, writer_pid = done.stdout.split()
    assert segment not in shm_segments()
    assert shm_segments() <= before
    assert not process_alive(int(writer_pid))
    assert ch_db.count() == 1000


@pytest.mark.parametrize("compression", ["auto", "gzip"])
def test_byte_counters_give_the_compression_ratio(
    ch_db: ClickHouseDatabase, compression: str
) -> None:
    with AutomagikTelemetry(**ch_db.client_options(compression=compression)) as client:
        for i in range(2_000):
            client.track_event("bytes", {"i": i})
        assert client.flush(timeout=30)
        status = client.get_status()
    raw, wire = status["bytes_uncompressed"], status["bytes_on_wire"]
    assert raw > 2_000 * 300  # the completed rows, shared columns included
    if compression == "auto":  # loopback: sent as they are
        assert wire == raw
    else:
        assert wire < raw / 5
    assert ch_db.count() == 2_000
