"""Inserts with the shared columns once per request, against the real engines: chdb (a current
ClickHouse: the constants path) and Debian's 18.16 (no ``input()``: completed rows). Hostile
resource values (quotes, backslashes, newlines, braces, non-ASCII, an injection attempt) are
stored exactly as given; a table with fewer columns still gets its rows, and no field it lacks
is sent."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from chdb import session as chdb_session

from automagik_telemetry.resource import Resource
from automagik_telemetry.ring.layout import KIND_LOG, KIND_METRIC, KIND_TRACE, KINDS
from automagik_telemetry.rows.clickhouse import ClickHouseRows, clickhouse_row_suffixes
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.sinks.clickhouse import ClickHouseSink
from automagik_telemetry.sinks.embedded import EmbeddedSink
from automagik_telemetry.transport import HttpClient
from tests.support import ClickHouseDatabase

TABLES = ("traces", "metrics", "logs")
HOSTILE = {
    "service_name": "svc'); DROP TABLE telemetry.traces; --",
    "service_version": "1.0\\'\\\\ {p0:String} $$ `tick`",
    "hostname": "host\nname\r\twith\ttabs",
    "user_id": 'ünïcødé 東京 🚀 "double"',
    "session_id": "{p1:String}{{braces}}\\N",
    "os_version": "nul\0byte",
}
RESOURCE = dataclasses.replace(Resource.detect("plans", "1.0.0", "org", "production"), **HOSTILE)
STORED = {  # column -> the value it must hold
    "service_name": HOSTILE["service_name"],
    "project_name": HOSTILE["service_name"],
    "project_version": HOSTILE["service_version"],
    "hostname": HOSTILE["hostname"],
    "user_id": HOSTILE["user_id"],
    "session_id": HOSTILE["session_id"],
    "os_version": HOSTILE["os_version"],
}


def batches() -> dict[int, bytes]:
    rows = ClickHouseRows()
    now = time.time_ns()
    return {
        KIND_TRACE: b"".join(
            bytes(rows.span(now + i, f"e{i}", {"i": i, "s": "x'y"}, None)) for i in range(50)
        ),
        KIND_METRIC: b"".join(
            bytes(rows.metric(now + i, f"m{i}", i, MetricType.COUNTER, None)) for i in range(30)
        ),
        KIND_LOG: b"".join(
            bytes(rows.log(now + i, f"l{i}\n'", LogSeverity.WARN, {"k": i})) for i in range(20)
        ),
    }


def embedded_sink(path: Path, resource: Resource = RESOURCE) -> EmbeddedSink:
    return EmbeddedSink(
        path=str(path),
        database="telemetry",
        tables=dict(zip(KINDS, TABLES, strict=True)),
        table_names=TABLES,
        row_suffixes=clickhouse_row_suffixes(resource),
    )


def read(session: chdb_session.Session, sql: str) -> list[dict[str, object]]:
    out = session.query(sql, "JSONEachRow").bytes().decode()
    return [json.loads(line) for line in out.splitlines()]


def test_embedded_hostile_constants_are_stored_exactly(tmp_path: Path) -> None:
    sink = embedded_sink(tmp_path / "db")
    wires: dict[int, bytes] = {}
    sent = batches()
    try:
        assert sink.discover().ok
        for kind, body in sent.items():
            prepared = sink.prepare(kind, body, f"tok-{kind}")
            assert prepared.url.startswith(f"INSERT INTO telemetry.{TABLES[kind]} (")
            assert "DROP" not in prepared.url  # the constants are parameters, not SQL
            wires[kind] = bytes(prepared.wire)
            assert sink.send(prepared).ok
    finally:
        sink.close()
    assert wires == sent  # the rows as the ring holds them: own fields only
    assert b"hostname" not in b"".join(wires.values())
    session = chdb_session.Session(str(tmp_path / "db"))
    try:
        columns = ", ".join(STORED)
        for kind, table in enumerate(TABLES):
            rows = read(session, f"SELECT {columns} FROM telemetry.{table}")
            assert len(rows) == (50, 30, 20)[kind]
            assert all(row == STORED for row in rows), rows[0]
        assert read(session, "SELECT span_kind, attributes FROM telemetry.traces WHERE "
                    "span_name = 'e7'") == [{"span_kind": "INTERNAL",
                                             "attributes": {"i": "7", "s": "x'y"}}]  # fmt: skip
        metric = read(
            session,
            "SELECT metric_type, aggregation_temporality, value_int, "
            "length(metric_id) AS idl FROM telemetry.metrics WHERE metric_name = 'm3'",
        )
        assert metric == [{"metric_type": "SUM", "aggregation_temporality": "DELTA",
                           "value_int": 3, "idl": 32}]  # fmt: skip
        log = read(session, "SELECT body, body_type, severity_text FROM telemetry.logs "
                   "WHERE body = 'l4\\n\\''")  # fmt: skip
        assert log == [{"body": "l4\n'", "body_type": "STRING", "severity_text": "WARN"}]
    finally:
        session.close()


def test_embedded_resent_batch_is_stored_once(tmp_path: Path) -> None:
    sink = embedded_sink(tmp_path / "db")
    body = batches()[KIND_TRACE]
    try:
        assert sink.discover().ok
        for token in ("seg-0-0-10", "seg-0-0-10", "seg-0-10-20"):
            assert sink.send(sink.prepare(KIND_TRACE, body, token)).ok
        count = sink._session.query("SELECT count() FROM telemetry.traces", "CSV")
        assert int(count.bytes()) == 100  # the re-sent batch once, the other batch once
    finally:
        sink.close()


def test_embedded_table_with_fewer_columns_gets_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "db"
    session = chdb_session.Session(str(path))
    session.query("CREATE DATABASE IF NOT EXISTS telemetry")
    session.query(
        "CREATE TABLE telemetry.traces (timestamp_ns UInt64, span_name String, "
        "hostname String, extra String DEFAULT 'kept') ENGINE = MergeTree ORDER BY timestamp_ns"
    )
    session.close()
    sink = embedded_sink(path)
    try:
        assert sink.discover().ok
        prepared = sink.prepare(KIND_TRACE, batches()[KIND_TRACE], "t")
        assert b"attributes" not in prepared.wire and b"status_code" not in prepared.wire
        assert "`service_name`" not in prepared.url
        assert sink.send(prepared).ok
    finally:
        sink.close()
    session = chdb_session.Session(str(path))
    try:
        rows = read(session, "SELECT span_name, hostname, extra FROM telemetry.traces "
                    "ORDER BY timestamp_ns LIMIT 2")  # fmt: skip
        assert rows == [{"span_name": f"e{i}", "hostname": HOSTILE["hostname"], "extra": "kept"}
                        for i in range(2)]  # fmt: skip
        assert int(session.query("SELECT count() FROM telemetry.traces", "CSV").bytes()) == 50
    finally:
        session.close()


def http_sink(db: ClickHouseDatabase) -> ClickHouseSink:
    server = db.server
    return ClickHouseSink(
        endpoint=server.url,
        database=db.name,
        tables=dict(zip(KINDS, TABLES, strict=True)),
        username=server.username,
        password=server.password,
        http=HttpClient(10.0, pool_size=2),
        row_suffixes=clickhouse_row_suffixes(RESOURCE),
    )


def test_18_16_hostile_values_and_no_attributes_on_the_wire(ch_db: ClickHouseDatabase) -> None:
    sink = http_sink(ch_db)
    try:
        assert sink.discover().ok
        assert not sink.facts.has_input  # 18.16: completed rows
        assert "attributes" not in sink.facts.columns["traces"]
        for kind, body in batches().items():
            prepared = sink.prepare(kind, body, f"tok-{kind}")
            assert b'"attributes"' not in prepared.wire  # the legacy tables have none
            assert sink.send(prepared).ok
    finally:
        sink.close()
    columns = ", ".join(STORED)
    for kind, table in enumerate(TABLES):
        text = ch_db.query(f"SELECT {columns} FROM {ch_db.name}.{table} FORMAT JSONEachRow")
        rows = [json.loads(line) for line in text.splitlines()]
        assert len(rows) == (50, 30, 20)[kind]
        assert all(row == STORED for row in rows), rows[0]


def test_18_16_table_with_fewer_columns_gets_its_rows(ch_db: ClickHouseDatabase) -> None:
    ch_db.query(f"DROP TABLE {ch_db.name}.traces")
    ch_db.query(
        f"CREATE TABLE {ch_db.name}.traces (timestamp_ns UInt64, span_name String, "
        "hostname String) ENGINE = MergeTree ORDER BY timestamp_ns"
    )
    sink = http_sink(ch_db)
    try:
        assert sink.discover().ok
        prepared = sink.prepare(KIND_TRACE, batches()[KIND_TRACE], "t")
        assert b"status_code" not in prepared.wire and b"service_name" not in prepared.wire
        assert sink.send(prepared).ok
    finally:
        sink.close()
    assert ch_db.count("traces") == 50
    assert ch_db.query(
        f"SELECT DISTINCT hostname FROM {ch_db.name}.traces FORMAT JSONEachRow"
    ) == json.dumps({"hostname": HOSTILE["hostname"]}, separators=(",", ":"))


def test_a_spool_file_of_the_current_format_replays_through_the_new_path(tmp_path: Path) -> None:
    """The spool holds the ring's own-field rows, LZ4-framed (unchanged by the insert plans):
    a file written before the upgrade goes through the constants path and lands whole."""
    import lz4.frame

    from automagik_telemetry.spool import Spool

    spool = Spool(tmp_path / "spool", 64 << 20, "drop_newest")
    body = batches()[KIND_LOG]
    assert spool.put(KIND_LOG, 20, "seg-2-0-99", "lz4-rows", bytes(lz4.frame.compress(body)))
    spooled = spool.take_oldest()
    assert spooled is not None and spooled.header.token == "seg-2-0-99"
    replayed = lz4.frame.decompress(spooled.body)
    assert replayed == body
    sink = embedded_sink(tmp_path / "db")
    try:
        assert sink.discover().ok
        for _ in range(2):  # replayed twice (a writer died after the insert): stored once
            assert sink.send(sink.prepare(KIND_LOG, replayed, spooled.header.token)).ok
        rows = read(sink._session, f"SELECT body, {', '.join(STORED)} FROM telemetry.logs")
    finally:
        sink.close()
    assert len(rows) == 20
    assert all({k: v for k, v in row.items() if k != "body"} == STORED for row in rows)


def test_18_16_a_column_added_later_is_filled_once_relearnt(ch_db: ClickHouseDatabase) -> None:
    ch_db.query(f"DROP TABLE {ch_db.name}.traces")
    ch_db.query(
        f"CREATE TABLE {ch_db.name}.traces (timestamp_ns UInt64, span_name String) "
        "ENGINE = MergeTree ORDER BY timestamp_ns"
    )
    sink = http_sink(ch_db)
    try:
        assert sink.discover().ok
        assert sink.send(sink.prepare(KIND_TRACE, batches()[KIND_TRACE], "a")).ok
        ch_db.query(f"ALTER TABLE {ch_db.name}.traces ADD COLUMN hostname String")
        assert sink.discover().ok
        assert "hostname" not in sink.facts.columns["traces"]  # learnt a moment ago: kept
        sink.facts.learned_at -= 3600  # the relearning period has passed
        assert sink.discover().ok
        assert "hostname" in sink.facts.columns["traces"]
        assert sink.send(sink.prepare(KIND_TRACE, batches()[KIND_TRACE], "b")).ok
    finally:
        sink.close()
    hosts = ch_db.query(
        f"SELECT hostname, count() FROM {ch_db.name}.traces GROUP BY hostname "
        "ORDER BY hostname FORMAT JSONCompact"
    )
    assert json.loads(hosts)["data"] == [["", "50"], [HOSTILE["hostname"], "50"]]


def test_embedded_batch_goes_the_old_way_when_its_file_cannot_be_written(tmp_path: Path) -> None:
    sink = embedded_sink(tmp_path / "db")
    try:
        assert sink.discover().ok
        prepared = sink.prepare(KIND_TRACE, batches()[KIND_TRACE], "tok")
        assert prepared.url  # the constants path was planned
        os.rmdir(sink._scratch)  # the directory vanished (a cleaner ran): the write fails
        assert sink.send(prepared).ok
        assert sink.send(prepared).ok  # sent again: the same token, stored once
        again = sink.prepare(KIND_TRACE, batches()[KIND_TRACE], "tok2")
        assert again.url and sink.send(again).ok  # a new directory: the constants path again
        assert os.path.isdir(sink._scratch)
        rows = read(sink._session, f"SELECT {', '.join(STORED)} FROM telemetry.traces")
    finally:
        sink.close()
    assert len(rows) == 100 and all(row == STORED for row in rows)


def test_a_server_that_refuses_the_constants_path_gets_completed_rows(
    ch_db: ClickHouseDatabase,
) -> None:
    """A server said to have ``input()`` that refuses the statement (here 18.16, made to look
    newer): the sink leaves the constants path for good, the batch is prepared again with every
    column, and it lands whole with the hostile values exact. Nothing is set aside."""
    sink = http_sink(ch_db)
    try:
        assert sink.discover().ok
        sink.facts.has_input = True  # what a newer server would have said
        sink._plan_inserts()
        body = batches()[KIND_TRACE]
        prepared = sink.prepare(KIND_TRACE, body, "fallback-1")
        assert "param_p0=" in prepared.url and b"service_name" not in prepared.wire
        outcome = sink.send(prepared)
        assert not outcome.ok and outcome.retryable and outcome.replan
        assert not outcome.refused_content
        assert "refused an insert through input()" in outcome.message
        assert "Unknown setting param_p0" in outcome.message  # 18.16's own words
        assert not sink.constants
        again = sink.prepare(KIND_TRACE, body, "fallback-1")
        assert "param_p0=" not in again.url
        assert sink.send(again).ok
        assert sink.send(sink.prepare(KIND_LOG, batches()[KIND_LOG], "fallback-2")).ok
    finally:
        sink.close()
    columns = ", ".join(STORED)
    text = ch_db.query(f"SELECT {columns} FROM {ch_db.name}.traces FORMAT JSONEachRow")
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 50 and all(row == STORED for row in rows)
    assert ch_db.count("logs") == 20


def test_the_http_statement_and_parameters_store_exactly_on_a_current_clickhouse(
    tmp_path: Path,
) -> None:
    """The statement and the ``param_pN`` values the HTTP sink puts in its URL, decoded as the
    server decodes a URL, run on chdb (ClickHouse 26.x: the server code behind the HTTP
    interface, which has no server here): the rows land with the hostile values exact. Only
    the data source differs: ``input()`` reads the request body, here the same bytes are read
    from a file."""
    import re
    import urllib.parse

    from automagik_telemetry.sinks import insert_plan
    from automagik_telemetry.sinks.clickhouse import ServerFacts
    from automagik_telemetry.transport import codec

    embedded = embedded_sink(tmp_path / "db")  # makes the schema.sql tables in chdb
    try:
        assert embedded.discover().ok
        session = embedded._session
        columns = insert_plan.parse_columns(
            session.query(insert_plan.columns_query("telemetry", TABLES), "TabSeparated").bytes()
        )
        sink = ClickHouseSink(
            endpoint="http://127.0.0.1:1",
            database="telemetry",
            tables=dict(zip(KINDS, TABLES, strict=True)),
            username="default",
            password="",
            http=HttpClient(1.0, pool_size=1),
            row_suffixes=clickhouse_row_suffixes(RESOURCE),
        )
        sink.facts = ServerFacts(
            "26.9", frozenset(), ("gzip",), True, True, time.monotonic(), columns
        )
        sink._codec = codec("none")
        sink._plan_inserts()
        for kind, body in batches().items():
            prepared = sink.prepare(kind, body, f"http-{kind}")
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(prepared.url).query)
            statement = query["query"][0]
            params = {k[len("param_") :]: v[0] for k, v in query.items() if k.startswith("param_")}
            assert params and set(params) == set(sink._plans[kind].params)
            data = tmp_path / f"body-{kind}.ndjson"
            data.write_bytes(bytes(prepared.wire))
            source = re.search(r"input\(('(?:[^'\\]|\\.)*')\) FORMAT JSONEachRow$", statement)
            assert source is not None, statement
            statement = (
                statement[: source.start()] + f"file('{data}', 'JSONEachRow', {source.group(1)})"
            )
            session.query(statement, "CSV", params=params)
        for kind, table in enumerate(TABLES):
            rows = read(session, f"SELECT {', '.join(STORED)} FROM telemetry.{table}")
            assert len(rows) == (50, 30, 20)[kind]
            assert all(row == STORED for row in rows), rows[0]
    finally:
        embedded.close()


def test_18_16_the_producer_leaves_out_the_attributes_no_table_keeps(
    ch_db: ClickHouseDatabase,
) -> None:
    """The legacy tables have no ``attributes``: once the writer has learnt it, the calling
    thread stops encoding them (the rows carry an empty object, which the writer cuts), and
    every row still lands."""
    from automagik_telemetry import AutomagikTelemetry

    client = AutomagikTelemetry(**ch_db.client_options())  # type: ignore[arg-type]
    try:
        client.track_event("first", {"a": 1})
        assert client.flush(timeout=30)
        producer = client._producer
        assert producer is not None
        deadline = time.monotonic() + 10
        while producer._left_out != 0b111 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert producer._left_out == 0b111  # traces, metrics and logs: none keeps attributes
        row = bytes(producer._span(1, "e", {"secret": "not encoded"}, None))
        assert b"not encoded" not in row and b'"attributes":{}' in row
        for i in range(2_000):
            client.track_event("later", {"i": i, "payload": "x" * 50})
            client.track_log(f"log {i}", LogSeverity.INFO, {"i": i})
        assert client.flush(timeout=60)
    finally:
        client.shutdown()
    assert ch_db.count("traces") == 2_001 and ch_db.count("logs") == 2_000


def test_embedded_tables_with_attributes_keep_the_producer_encoding_them(tmp_path: Path) -> None:
    from automagik_telemetry import AutomagikTelemetry

    client = AutomagikTelemetry(
        project_name="p", version="1", backend="embedded", embedded_path=str(tmp_path / "db")
    )
    try:
        client.track_event("first", {"a": 1})
        assert client.flush(timeout=60)
        time.sleep(0.5)  # a few supervisor passes
        producer = client._producer
        assert producer is not None and producer._left_out == 0
        assert b'"a":1' in bytes(producer._span(1, "e", {"a": 1}, None))
    finally:
        client.shutdown()
