"""LocalClickHouse against the real Debian ``clickhouse-server`` binary (fails when absent)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from automagik_telemetry.local_clickhouse import (
    BINARY_ENV,
    ClickHouseQueryError,
    ClickHouseServerMissing,
    LocalClickHouse,
    find_server_binary,
    legacy_schema_sql,
    split_sql,
)

LEGACY_SCHEMA = (
    Path(__file__).resolve().parents[2] / "engine/automagik_telemetry/schema/clickhouse-legacy.sql"
)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalClickHouse]:
    find_server_binary()  # raises ClickHouseServerMissing (a failure, not a skip) when absent
    with LocalClickHouse() as ch:
        yield ch


def test_version_is_a_real_server(server: LocalClickHouse) -> None:
    version = server.version()
    match = re.match(r"^(\d+)\.\d+", version)
    assert match is not None, version
    assert int(match.group(1)) >= 18
    assert server.query("SELECT 1 + 1").strip() == "2"


def test_listens_on_loopback_with_free_ports(server: LocalClickHouse) -> None:
    assert server.url == f"http://127.0.0.1:{server.port}"
    assert server.port != server.tcp_port
    assert server.username == "telemetry"
    assert len(server.password) >= 16
    assert server.data_dir.is_dir()
    config = (server.data_dir / "config.xml").read_text()
    assert "<listen_host>127.0.0.1</listen_host>" in config
    assert "interserver" not in config


def test_wrong_password_is_rejected(server: LocalClickHouse) -> None:
    with pytest.raises(ClickHouseQueryError, match=r"(?i)password|authenticat") as info:
        server.query("SELECT 1", password=server.password + "-wrong")
    assert info.value.status in (401, 403, 500, 516)


def test_default_user_cannot_connect(server: LocalClickHouse) -> None:
    with pytest.raises(ClickHouseQueryError):
        server.query("SELECT 1", user="default", password="")


def test_legacy_schema_applies(server: LocalClickHouse) -> None:
    assert LEGACY_SCHEMA.is_file()
    server.apply_sql_file(LEGACY_SCHEMA)
    tables = set(server.query("SHOW TABLES FROM telemetry").split())
    assert {"traces", "metrics", "logs"} <= tables

    # Idempotent (IF NOT EXISTS), and the packaged copy (importlib.resources) is the same text.
    assert legacy_schema_sql() == LEGACY_SCHEMA.read_text(encoding="utf-8")
    server.apply_sql_file(legacy_schema_sql())
    server.apply_sql_file(str(LEGACY_SCHEMA))

    server.query(
        "INSERT INTO telemetry.logs (log_id, timestamp_ns, body, service_name) "
        "VALUES ('l1', 1700000000123456789, 'hello', 'svc')"
    )
    row = server.query("SELECT log_id, timestamp, body FROM telemetry.logs WHERE log_id = 'l1'")
    assert row.strip().split("\t") == ["l1", "2023-11-14 22:13:20", "hello"]


def test_bad_sql_raises_with_server_message(server: LocalClickHouse) -> None:
    with pytest.raises(ClickHouseQueryError, match="nonexistent_table_xyz"):
        server.query("SELECT * FROM default.nonexistent_table_xyz")


def test_stop_kills_the_process_and_removes_the_directory() -> None:
    ch = LocalClickHouse(username="bench", password="s3cret")
    with ch:
        pid = ch.pid
        data_dir = ch.data_dir
        assert ch.running
        assert ch.query("SELECT 1").strip() == "1"
        os.kill(pid, 0)  # alive
    assert not ch.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not data_dir.exists()
    ch.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        ch.query("SELECT 1")


def test_missing_binary_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    with pytest.raises(ClickHouseServerMissing, match="apt-get install -y clickhouse-server"):
        LocalClickHouse(binary="/nonexistent/clickhouse-server").start()
    monkeypatch.setenv(BINARY_ENV, "/nonexistent/clickhouse")
    with pytest.raises(ClickHouseServerMissing, match=BINARY_ENV):
        find_server_binary()
    assert issubclass(ClickHouseServerMissing, RuntimeError)


def test_multi_call_binary_runs_as_server(tmp_path: Path) -> None:
    fake = tmp_path / "clickhouse"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_server_binary(fake) == [str(fake), "server"]


def test_split_sql_drops_comment_lines() -> None:
    text = "-- header; not a statement\nCREATE DATABASE a;\n\n  -- x\nSELECT 1;\n;\n"
    assert split_sql(text) == ["CREATE DATABASE a", "SELECT 1"]
