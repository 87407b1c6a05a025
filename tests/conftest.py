"""Fixtures shared by every suite: an isolated home and environment, and real servers.

Servers are started by the tests themselves on loopback and stopped by them. A server the suite
needs but cannot find is a failure, never a skip: CI installs it (see scripts/test.sh).

Every test under ``tests/integration`` and ``tests/faults`` is marked ``integration`` here, in
one place (``-m "not integration"`` runs the unit tests alone).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.sinks.clickhouse import schema_statements
from tests.support import ClickHouseDatabase

TESTS = Path(__file__).resolve().parent
INTEGRATION_SUITES = (TESTS / "integration", TESTS / "faults")


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if any(item.path.is_relative_to(suite) for suite in INTEGRATION_SUITES):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real home (user id, opt-out file) or inherits settings."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith(("AUTOMAGIK_TELEMETRY_", "OTEL_")) or name == "DO_NOT_TRACK":
            monkeypatch.delenv(name)
    return home


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[LocalClickHouse]:
    """The Debian ClickHouse server (18.16), on a free port with a temporary data directory
    and a user with a password."""
    with LocalClickHouse(username="telemetry") as server:
        yield server


@pytest.fixture
def ch_db(clickhouse: LocalClickHouse) -> Iterator[ClickHouseDatabase]:
    name = "t_" + secrets.token_hex(4)
    for statement in schema_statements(name, legacy=True):
        clickhouse.query(statement)
    yield ClickHouseDatabase(clickhouse, name)
    clickhouse.query(f"DROP DATABASE IF EXISTS {name}")
