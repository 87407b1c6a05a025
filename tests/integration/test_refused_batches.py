"""A batch the destination refuses for what it holds is set aside on disk; what follows lands.

The refusal is the real server's: a traces table whose ``status_code`` is an ``Enum8`` that
knows only 'OK' makes Debian's 18.16 refuse every insert holding an error span (code 36/49,
unknown enum element), while inserts of plain events go through."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.sinks.clickhouse import schema_statements
from automagik_telemetry.writer.spooling import SET_ASIDE_DIRECTORY
from tests.support import ClickHouseDatabase


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def traces_table(database: str) -> str:
    return next(s for s in schema_statements(database, legacy=True) if ".traces" in s)


def set_aside_files(spool: Path) -> list[Path]:
    return sorted(spool.glob(f"*/{SET_ASIDE_DIRECTORY}/*.batch"))


def test_a_refused_batch_is_set_aside_and_the_next_ones_land(
    ch_db: ClickHouseDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = f"{ch_db.name}.traces"
    ch_db.query(f"DROP TABLE {table}")
    statement = traces_table(ch_db.name)
    column = "    status_code String,\n"
    assert column in statement
    ch_db.query(statement.replace(column, "    status_code Enum8('OK' = 1),\n"))
    spool = tmp_path / "spool"
    options = ch_db.client_options(
        spool_dir=str(spool), batch_size=100, flush_interval=3600.0, retry_backoff_base=0.05
    )
    with caplog.at_level(logging.INFO, logger="automagik_telemetry"):
        client = AutomagikTelemetry(**options)
        for i in range(100):
            client.track_event(f"a{i}")
        assert client.flush(30) is True
        client.track_error(ValueError("the one row 18.16 refuses here"))
        for i in range(99):
            client.track_event(f"b{i}")
        assert client.flush(30) is False  # delivered all it could; the destination refused some
        for i in range(100):
            client.track_event(f"c{i}")
        assert client.flush(30) is True  # nothing waits behind the refused batch
        status = client.get_status()
        client.shutdown()

    names = ch_db.query(f"SELECT groupArray(span_name) FROM (SELECT span_name FROM {table})")
    assert ch_db.count() == 200
    assert ch_db.count(where="span_name LIKE 'b%'") == 0
    assert "'a0'" in names and "'c99'" in names
    assert status["set_aside"] == 100
    assert status["sent"] == 200
    assert status["dropped_total"] == 0
    assert status["sink_state"] == "healthy"
    files = set_aside_files(spool)
    assert len(files) == 1
    refusals = [r for r in caplog.records if "rejected the insert" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    message = refusals[0].getMessage()
    assert refusals[0].levelno == logging.ERROR
    assert "ERROR" in message  # the server's own words name the value it refused
    assert "set aside" in message and "100 rows" in message and SET_ASIDE_DIRECTORY in message

    # The cause is fixed; the files moved back into the spool directory are sent by the next
    # writer of this destination, and nothing else is sent twice.
    ch_db.query(f"ALTER TABLE {table} MODIFY COLUMN status_code String")
    for path in files:
        shutil.move(path, path.parent.parent / path.name)
    with AutomagikTelemetry(**options) as again:
        assert wait_until(lambda: ch_db.count() == 300, 30), ch_db.count()
        assert again.flush(30) is True
    assert ch_db.count(where="span_name LIKE 'b%'") == 99
    assert ch_db.count(where="status_code = 'ERROR'") == 1
    # a0-a99, automagik.error, b0-b98, c0-c99: each once
    assert int(ch_db.query(f"SELECT uniqExact(span_name) FROM {table}")) == 300
    assert set_aside_files(spool) == []
    assert not any(p.name.endswith(".batch") for p in spool.glob("*/*"))
    assert os.listdir(files[0].parent) == []
