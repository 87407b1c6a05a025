"""What privacy costs a track call: the row encoding of the calling thread alone (the plain
path) against the same with ``Sanitizer.attributes`` first (the sanitised path), on the
harness's workload; and the sanitiser alone on attributes holding personal data, on values it
has not seen (no cache hit) and on log bodies.

    pytest bench/test_privacy_cost.py --benchmark-only \
        --benchmark-json=bench/results/privacy-cost.json

Each round does ``ROWS`` rows; ``extra_info["ns_per_row"]`` is the median per row.
Results: bench/results/privacy-cost.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from automagik_telemetry.privacy import PrivacyConfig, Sanitizer, sanitize_telemetry_data
from automagik_telemetry.rows.clickhouse import ClickHouseRows
from automagik_telemetry.sanitising import SanitisingRows
from bench.harness.workload import EVENT, LOG, Workload, operations

ROWS = 1000
ROUNDS = 100
WARMUP = 10
NOW = time.time_ns()
OPS = operations(Workload(count=20_000))
EVENTS = [op for op in OPS if op[0] == EVENT][:ROWS]
LOGS = [op for op in OPS if op[0] == LOG][:ROWS]
PERSONAL = [
    {
        "user.email": f"user{i}@example.com",
        "client.ip": f"10.0.{i % 250}.{i % 200}",
        "path": f"/home/user{i}/project/file.py",
        "note": f"call +1-555-555-{1000 + i % 9000}",
        "auth_token": "abc",
        "count": i,
    }
    for i in range(ROWS)
]


def per_row(benchmark: Any, fn: Callable[[], object], rows: int = ROWS) -> None:
    benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=WARMUP, iterations=1)
    benchmark.extra_info["rows_per_round"] = rows
    benchmark.extra_info["ns_per_row"] = benchmark.stats.stats.median / rows * 1e9


@pytest.mark.benchmark(group="event: encode (plain) vs sanitise + encode")
def test_event_plain(benchmark: Any) -> None:
    encoder = ClickHouseRows()

    def run() -> None:
        for _, name, _, _, attrs in EVENTS:
            encoder.span(NOW, name, attrs, None)

    per_row(benchmark, run)


@pytest.mark.benchmark(group="event: encode (plain) vs sanitise + encode")
@pytest.mark.parametrize("strategy", ["hash", "redact"])
def test_event_sanitised(benchmark: Any, strategy: str) -> None:
    # the client's own sanitising encoder (what a client given privacy= uses)
    encoder = SanitisingRows(ClickHouseRows(), PrivacyConfig(strategy=strategy))  # type: ignore[arg-type]

    def run() -> None:
        for _, name, _, _, attrs in EVENTS:
            encoder.span(NOW, name, attrs, None)

    per_row(benchmark, run)


@pytest.mark.benchmark(group="sanitiser alone")
def test_attributes_with_personal_data_seen_before(benchmark: Any) -> None:
    sanitizer = Sanitizer(PrivacyConfig())
    for attrs in PERSONAL:
        sanitizer.attributes(attrs)

    def run() -> None:
        for attrs in PERSONAL:
            sanitizer.attributes(attrs)

    per_row(benchmark, run)


@pytest.mark.benchmark(group="sanitiser alone")
def test_attributes_with_personal_data_never_seen(benchmark: Any) -> None:
    def run() -> None:
        sanitizer = Sanitizer(PrivacyConfig())  # a fresh cache: every value is scanned
        for attrs in PERSONAL:
            sanitizer.attributes(attrs)

    per_row(benchmark, run)


@pytest.mark.benchmark(group="sanitiser alone")
def test_log_bodies(benchmark: Any) -> None:
    def run() -> None:
        sanitizer = Sanitizer(PrivacyConfig())
        for _, body, _, _, _ in LOGS:
            sanitizer.text(body)

    per_row(benchmark, run, len(LOGS))


@pytest.mark.benchmark(group="sanitiser alone")
def test_the_01_function_on_the_same_attributes(benchmark: Any) -> None:
    def run() -> None:
        for attrs in PERSONAL:
            sanitize_telemetry_data(attrs)

    per_row(benchmark, run)
