"""Benchmarks run against real local servers, like the tests."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.sinks.clickhouse import schema_statements


@pytest.fixture(scope="session")
def clickhouse_db() -> Iterator[tuple[LocalClickHouse, str]]:
    with LocalClickHouse() as server:
        name = "bench_" + secrets.token_hex(3)
        for statement in schema_statements(name, legacy=True):
            server.query(statement)
        yield server, name
