"""Cost on the calling thread, side by side with the floor of any in-process hand-off.

    pytest bench/test_producer_cost.py --benchmark-only --benchmark-json=bench/results/producer.json

Each round makes ``CALLS`` calls; pytest-benchmark reports time per round, so divide by CALLS
(the harness prints ns per call in ``extra_info``). The OTLP cases track the harness's own events
(``bench.harness.workload``: 8 attributes, a unique request id and duration
among them), all distinct, through a client whose writer has nowhere to deliver (the ring holds
every row), so they measure the calling thread: encoding, the lock, the ring."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator

import pytest

from automagik_telemetry import AutomagikTelemetry, MetricType
from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.ring.layout import KIND_TRACE
from automagik_telemetry.ring.segment import create_segment
from automagik_telemetry.ring.spsc import RingReader, RingWriter
from automagik_telemetry.rows.clickhouse import ClickHouseRows
from bench.harness.workload import EVENT, Workload, operations

CALLS = 1000
ROUNDS = 300
ATTRS = {"user": "alice", "count": 3, "ok": True}
OTLP_ROUNDS = 80  # x CALLS rows must fit the 64 MiB ring: ~580 bytes per OTLP/JSON row
WORKLOAD_EVENTS = [
    (name, attrs)
    for kind, name, _, _, attrs in operations(Workload(count=(OTLP_ROUNDS + 20) * CALLS * 10 // 8))
    if kind == EVENT
]


@pytest.fixture(scope="module")
def isolated_client() -> Iterator[AutomagikTelemetry]:
    """A client whose writer has nowhere to deliver (a closed port): the ring (64 MiB) holds
    every row of the benchmark, and the writer and no server compete for the two cores, so
    this measures the calling thread alone."""
    telemetry = AutomagikTelemetry(
        project_name="bench", version="1", backend="clickhouse",
        clickhouse_endpoint="http://127.0.0.1:9", ring_size=64 * 1024 * 1024, on_full="drop",
    )  # fmt: skip
    yield telemetry
    telemetry.shutdown(timeout=0.1)


@pytest.fixture(
    scope="module",
    params=[
        ("http/json", "writer"),
        ("http/protobuf", "writer"),
        ("http/json", "caller"),
        ("http/protobuf", "caller"),
    ],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def otlp_client(request: pytest.FixtureRequest) -> Iterator[AutomagikTelemetry]:
    """backend="otlp" with nowhere to deliver (a closed port): the calling thread alone, with
    the wire encoding in the writer (the default) or on the calling thread."""
    protocol, encode_in = request.param
    telemetry = AutomagikTelemetry(
        project_name="bench", version="1", backend="otlp", endpoint="http://127.0.0.1:9",
        otlp_protocol=protocol, otlp_encode_in=encode_in, ring_size=64 * 1024 * 1024,
        on_full="drop",
    )  # fmt: skip
    yield telemetry
    telemetry.shutdown(timeout=0.1)


@pytest.fixture(scope="module")
def client(clickhouse_db: tuple[LocalClickHouse, str]) -> Iterator[AutomagikTelemetry]:
    server, database = clickhouse_db
    telemetry = AutomagikTelemetry(
        project_name="bench", version="1", backend="clickhouse", clickhouse_endpoint=server.url,
        clickhouse_database=database, clickhouse_username=server.username,
        clickhouse_password=server.password, ring_size=64 * 1024 * 1024,
    )  # fmt: skip
    yield telemetry
    telemetry.shutdown(timeout=60)


def per_call(benchmark: pytest.FixtureRequest, fn, *args) -> None:  # type: ignore[no-untyped-def]
    def round_() -> None:
        for _ in range(CALLS):
            fn(*args)

    benchmark.pedantic(round_, rounds=ROUNDS, warmup_rounds=10, iterations=1)
    benchmark.extra_info["calls_per_round"] = CALLS
    benchmark.extra_info["median_ns_per_call"] = benchmark.stats.stats.median / CALLS * 1e9


@pytest.mark.benchmark(group="producer: per call on the calling thread")
def test_simple_queue_put_floor(benchmark) -> None:  # type: ignore[no-untyped-def]
    q: queue.SimpleQueue[tuple[str, dict[str, object]]] = queue.SimpleQueue()
    per_call(benchmark, q.put, ("user.signup", ATTRS))


@pytest.mark.benchmark(group="producer: per call on the calling thread")
def test_track_event_isolated(benchmark, isolated_client: AutomagikTelemetry) -> None:  # type: ignore[no-untyped-def]
    per_call(benchmark, isolated_client.track_event, "user.signup", ATTRS)
    assert isolated_client.get_status()["dropped_total"] == 0


@pytest.mark.benchmark(group="producer: per call on the calling thread")
def test_track_event_otlp_8_attributes(benchmark, otlp_client: AutomagikTelemetry) -> None:  # type: ignore[no-untyped-def]
    """track_event with the workload's 8 attributes, OTLP/JSON and OTLP/protobuf."""
    track = otlp_client.track_event
    events = iter(WORKLOAD_EVENTS)

    def round_() -> None:
        for _ in range(CALLS):
            name, attrs = next(events)
            track(name, attrs)

    benchmark.pedantic(round_, rounds=OTLP_ROUNDS, warmup_rounds=5, iterations=1)
    benchmark.extra_info["calls_per_round"] = CALLS
    benchmark.extra_info["median_ns_per_call"] = benchmark.stats.stats.median / CALLS * 1e9
    assert otlp_client.get_status()["dropped_total"] == 0


@pytest.mark.benchmark(group="producer: per call on the calling thread")
def test_track_event_while_delivering(benchmark, client: AutomagikTelemetry) -> None:  # type: ignore[no-untyped-def]
    per_call(benchmark, client.track_event, "user.signup", ATTRS)
    client.flush(timeout=120)
    assert client.get_status()["dropped_total"] == 0


@pytest.mark.benchmark(group="producer: per call on the calling thread")
def test_track_metric_clickhouse(benchmark, client: AutomagikTelemetry) -> None:  # type: ignore[no-untyped-def]
    per_call(benchmark, client.track_metric, "latency_ms", 12.5, MetricType.HISTOGRAM, ATTRS)
    client.flush(timeout=120)


@pytest.mark.benchmark(group="pieces")
def test_row_encoding(benchmark) -> None:  # type: ignore[no-untyped-def]
    rows = ClickHouseRows()
    per_call(benchmark, rows.span, time.time_ns(), "user.signup", ATTRS, None)


@pytest.mark.benchmark(group="pieces")
def test_ring_put(benchmark) -> None:  # type: ignore[no-untyped-def]
    segment = create_segment(64 * 1024 * 1024)
    writer, reader = RingWriter(segment), RingReader(segment)
    row = bytes(ClickHouseRows().span(time.time_ns(), "user.signup", ATTRS, None))

    def put() -> None:
        if not writer.put(KIND_TRACE, row):
            _, head = reader.available(KIND_TRACE)
            reader.advance(KIND_TRACE, head)
            reader.commit(KIND_TRACE, head)

    per_call(benchmark, put)
    writer.release()
    reader.release()
    segment.close()
    segment.unlink()
