"""Insert plans: what a batch's statement holds, and how constants and rows are written."""

from __future__ import annotations

import dataclasses

import msgspec
import pytest

from automagik_telemetry.resource import Resource
from automagik_telemetry.ring.layout import KIND_LOG, KIND_METRIC, KIND_TRACE
from automagik_telemetry.rows.clickhouse import ClickHouseRows, clickhouse_row_suffixes
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.sinks.clickhouse import insert_url
from automagik_telemetry.sinks.insert_plan import (
    Column,
    Plans,
    drop_fields,
    drop_last_object,
    identifier,
    param_value,
    parse_columns,
    plan_insert,
    shared_columns,
    sql_string,
)

RESOURCE = Resource.detect("plans", "1.2.3", "org", "staging")
SUFFIXES = clickhouse_row_suffixes(RESOURCE)


def columns(*names: str) -> dict[str, Column]:
    return {n: Column(n, "String") for n in names}


def test_shared_columns_are_what_the_suffix_holds() -> None:
    shared = shared_columns(SUFFIXES[KIND_TRACE])
    assert shared["project_name"] == "plans" and shared["project_version"] == "1.2.3"
    assert shared["environment"] == "staging" and shared["span_kind"] == "INTERNAL"
    assert shared_columns(b"}\n") == {}


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain", "plain"),
        ("a\\b", "a\\\\b"),
        ("tab\there", "tab\\there"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("nul\0", "nul\\0"),
        ("x'); DROP TABLE t; -- {p1:String} é", "x'); DROP TABLE t; -- {p1:String} é"),
    ],
)
def test_param_values_escape_only_what_the_escaped_format_reads(text: str, escaped: str) -> None:
    assert param_value(text) == escaped


def test_literals_and_identifiers_are_quoted() -> None:
    assert sql_string("it's a \\ test") == "'it\\'s a \\\\ test'"
    assert identifier("we`ird") == "`we\\`ird`"


def test_the_constants_plan_names_own_and_shared_columns_the_table_has() -> None:
    table = columns("timestamp_ns", "span_name", "status_code", "status_message", "attributes",
                    "service_name", "project_name", "hostname", "span_kind")  # fmt: skip
    plan = plan_insert(KIND_TRACE, "db.traces", SUFFIXES[KIND_TRACE], table, constants=True)
    assert plan.constants and plan.dropped == frozenset()
    assert plan.into == (
        "INSERT INTO db.traces (`timestamp_ns`, `span_name`, `status_code`, `status_message`, "
        "`attributes`, `service_name`, `project_name`, `hostname`, `span_kind`)"
    )
    assert plan.select.startswith("SELECT `timestamp_ns`, `span_name`, `status_code`, ")
    assert "CAST({p0:String} AS String)" in plan.select and "{p4:" not in plan.select
    assert list(plan.params.values()) == [
        RESOURCE.service_name,
        RESOURCE.service_name,
        RESOURCE.hostname,
        "INTERNAL",
    ]
    assert plan.structure.startswith("`timestamp_ns` String, `span_name` String")
    body = b'{"timestamp_ns":1,"span_name":"a"}\n'
    assert plan.rows(body) == body  # sent as it is: no shared column in the rows


def test_own_fields_the_table_lacks_are_cut_from_the_rows() -> None:
    table = columns("timestamp_ns", "span_name", "status_code", "status_message", "service_name")
    for constants in (True, False):
        plan = plan_insert(KIND_TRACE, "db.t", SUFFIXES[KIND_TRACE], table, constants=constants)
        assert plan.dropped == {"attributes"}
        row = bytes(ClickHouseRows().span(5, "n", {"attributes": 1, "k": "}\n"}, None))
        sent = plan.rows(row * 2)
        assert b"attributes" not in sent and sent.count(b"\n") == 2
        decoded = [msgspec.json.decode(line) for line in sent.splitlines()]
        assert decoded[0]["span_name"] == "n" and decoded[0]["timestamp_ns"] == 5
        if constants:
            assert set(decoded[0]) == {"timestamp_ns", "span_name", "status_code", "status_message"}
        else:  # completed with the one shared column the table has, and only that
            assert decoded[0]["service_name"] == RESOURCE.service_name
            assert "hostname" not in decoded[0]


def test_materialized_columns_are_not_inserted() -> None:
    table = {**columns("timestamp_ns", "span_name"), "timestamp": Column("timestamp", "DateTime",
             "MATERIALIZED"), "status_code": Column("status_code", "String", "ALIAS")}  # fmt: skip
    plan = plan_insert(KIND_TRACE, "db.t", SUFFIXES[KIND_TRACE], table, constants=True)
    assert "status_code" in plan.dropped and "`timestamp`" not in plan.into


def test_unknown_columns_send_everything_as_before() -> None:
    plan = plan_insert(KIND_LOG, "db.logs", SUFFIXES[KIND_LOG], None, constants=True)
    assert not plan.constants and not plan.columns_known
    row = bytes(ClickHouseRows().log(1, "m", LogSeverity.INFO, None))
    assert plan.rows(row) == row[:-2] + SUFFIXES[KIND_LOG]


def test_an_omitted_text_default_is_declared_in_the_structure() -> None:
    table = columns("metric_name", "metric_type", "timestamp_ns", "aggregation_temporality")
    plan = plan_insert(KIND_METRIC, "db.m", SUFFIXES[KIND_METRIC], table, constants=True)
    assert "`aggregation_temporality` String DEFAULT 'UNSPECIFIED'" in plan.structure
    row = bytes(ClickHouseRows().metric(1, "g", 1.0, MetricType.GAUGE, None))
    assert b"aggregation_temporality" not in row  # omitted: the structure's default applies


def test_drop_fields_keeps_values_as_their_json_text() -> None:
    body = b'{"a":1.50,"b":"x\\n}","c":{"d":[1,2]}}\n{"b":"y"}\n'
    assert drop_fields(body, frozenset({"b"})) == b'{"a":1.50,"c":{"d":[1,2]}}\n{}\n'
    assert drop_fields(b"", frozenset({"b"})) == b""


def test_parse_columns_reads_types_with_quotes() -> None:
    text = (
        b'{"table":"m","name":"metric_type","type":"Enum8(\'GAUGE\' = 1)","default_kind":""}\n'
        b'{"table":"m","name":"timestamp","type":"DateTime","default_kind":"MATERIALIZED"}\n'
    )
    parsed = parse_columns(text)
    assert parsed["m"]["metric_type"].type == "Enum8('GAUGE' = 1)"
    assert parsed["m"]["timestamp"].default_kind == "MATERIALIZED"


def test_insert_url_carries_constants_as_parameters_not_in_the_statement() -> None:
    hostile = "h'); DROP TABLE x; --\n"
    suffix = clickhouse_row_suffixes(dataclasses.replace(RESOURCE, hostname=hostile))[KIND_TRACE]
    plan = plan_insert(KIND_TRACE, "db.t", suffix, columns("span_name", "hostname"), constants=True)
    url = insert_url("http://h:8123", "db.t", {"insert_deduplication_token": "t"}, plan)
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(url).query)
    assert "DROP" not in query["query"][0]
    assert query["query"][0].endswith("FROM input('`span_name` String') FORMAT JSONEachRow")
    assert query["param_p0"] == ["h'); DROP TABLE x; --\\n"]
    assert query["insert_deduplication_token"] == ["t"]


def test_an_answer_not_understood_leaves_every_table_unknown() -> None:
    text = b'{"table":"m","name":"a","type":"String","default_kind":""}\nCode: 60. oops\n'
    assert parse_columns(text) == {}


def test_the_last_attributes_object_is_cut_as_drop_fields_would() -> None:
    rows = ClickHouseRows()
    body = b"".join(
        bytes(row)
        for row in (
            rows.span(1, 'x,"attributes":{"a":1}}', {"k": "}}", "attributes": {"v": "}"}}, None),
            rows.span(2, "plain", None, "err }\n{"),
            rows.span(3, "n", {"nested": {"deep": [1, {"x": "}"}]}}, None),
        )
    ) + bytes(rows.metric(4, "m", 1.0, MetricType.GAUGE, None))  # no attributes at all
    body += bytes(rows.metric(5, "m", 2.0, MetricType.GAUGE, {"a": "b"}))
    expected = drop_fields(body, frozenset({"attributes"}))
    assert drop_last_object(body, "attributes") == expected
    assert b'"attributes"' not in expected.replace(b'\\"attributes\\"', b"")
    table = columns("timestamp_ns", "span_name", "status_code", "status_message")
    plan = plan_insert(KIND_TRACE, "db.t", SUFFIXES[KIND_TRACE], table, constants=True)
    assert plan.last_object == "attributes"
    log_plan = plan_insert(KIND_LOG, "db.l", SUFFIXES[KIND_LOG], columns("body"), constants=True)
    assert log_plan.last_object == ""  # logs' attributes are not last: the general cut


@pytest.mark.parametrize("constants", [True, False])
def test_a_batch_of_another_origin_gets_that_origins_shared_columns(constants: bool) -> None:
    table = columns("timestamp_ns", "span_name", "service_name", "project_version", "hostname")

    def build(kind: int, suffix: bytes) -> object:
        return plan_insert(kind, "db.traces", suffix, table, constants=constants)

    plans = Plans(build, SUFFIXES)  # type: ignore[arg-type]
    other = clickhouse_row_suffixes(dataclasses.replace(RESOURCE, service_version="0.1-old"))
    own = plans.for_batch(KIND_TRACE, "")
    assert plans.for_batch(KIND_TRACE, plans.origin(KIND_TRACE)) is own
    foreign = plans.for_batch(KIND_TRACE, other[KIND_TRACE].decode())
    assert plans.for_batch(KIND_TRACE, other[KIND_TRACE].decode()) is foreign  # kept
    body = b'{"timestamp_ns":1,"span_name":"a"}\n'
    if constants:
        assert "0.1-old" in foreign.params.values() and "1.2.3" in own.params.values()
    else:
        assert b'"project_version":"0.1-old"' in foreign.rows(body)
        assert b'"project_version":"1.2.3"' in own.rows(body)
    for damaged in ('{"not":"a suffix"}', ',"broken', ',"a":1}', "\u00ff"):
        assert plans.for_batch(KIND_TRACE, damaged) is own  # the rows land, with ours
