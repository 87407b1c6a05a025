"""Helpers for the test suites."""

from __future__ import annotations

from pathlib import Path

from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.processes import process_alive

__all__ = ["ClickHouseDatabase", "process_alive", "shm_segments"]


class ClickHouseDatabase:
    """A fresh database with the legacy schema's tables, on the shared server."""

    def __init__(self, server: LocalClickHouse, name: str) -> None:
        self.server = server
        self.name = name

    def query(self, sql: str) -> str:
        return self.server.query(sql).strip()

    def count(self, table: str = "traces", where: str = "1") -> int:
        return int(self.query(f"SELECT count() FROM {self.name}.{table} WHERE {where}"))

    def client_options(self, **extra: object) -> dict[str, object]:
        options: dict[str, object] = {
            "project_name": "tests",
            "version": "1.0.0",
            "backend": "clickhouse",
            "clickhouse_endpoint": self.server.url,
            "clickhouse_database": self.name,
            "clickhouse_username": self.server.username,
            "clickhouse_password": self.server.password,
        }
        options.update(extra)
        return options


def shm_segments() -> set[str]:
    """Names of the engine's shared-memory segments that exist now."""
    return {p.name for p in Path("/dev/shm").glob("automagik-telemetry-*")}
