"""ClickHouse rows (JSONEachRow lines for ``schema/clickhouse.sql``), decoded field by field.

The oracles are independent of the encoder: the schema file (every field a completed row sends
is a column of its table, every column without a DEFAULT is sent, and a column a row leaves out
lands as its DEFAULT), OpenTelemetry's data model (severity numbers, the default explicit bucket
bounds, upper bounds inclusive), and expected values spelled out per case. Rows are decoded with
the standard library's ``json``, which refuses nothing msgspec would gloss over: a duplicate key
fails the test.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from automagik_telemetry.resource import Resource
from automagik_telemetry.rows.clickhouse import (
    ClickHouseRows,
    clickhouse_row_suffixes,
    complete_rows,
    histogram_bucket,
)
from automagik_telemetry.schema import LogSeverity, MetricType
from automagik_telemetry.sinks.clickhouse import schema_sql

T = 1_795_000_000_123_456_789
INT64_MAX = 9_223_372_036_854_775_807
INT64_MIN = -9_223_372_036_854_775_808

# OpenTelemetry's default explicit bucket boundaries (metrics data model, "Histogram")
OTEL_BOUNDS = [0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0,
               5000.0, 7500.0, 10000.0]  # fmt: skip
# OpenTelemetry severity numbers of the first level of each range (logs data model)
SEVERITY_NUMBERS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}


# --- the schema as the oracle ---------------------------------------------------------------

COMPUTED = object()  # a DEFAULT the server computes (ids, timestamps from timestamp_ns, now())


class Column:
    def __init__(self, name: str, type_: str, default: str | None) -> None:
        self.name, self.type, self.default = name, type_, default

    def landed_default(self) -> Any:
        """The value an omitted field lands as, for the literal DEFAULTs of the schema."""
        text = self.default
        if text is None:
            return COMPUTED if self.type.startswith("DateTime") else None
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        if re.fullmatch(r"'[^']*'", text):
            return text[1:-1]
        return {"[]": [], "map()": {}}.get(text, COMPUTED)

    def enum_names(self) -> set[str]:
        return set(re.findall(r"'([^']+)' = -?\d+", self.type)) if "Enum" in self.type else set()


def schema_tables() -> dict[str, dict[str, Column]]:
    tables: dict[str, dict[str, Column]] = {}
    text = schema_sql()
    for name, body in re.findall(
        r"CREATE TABLE IF NOT EXISTS telemetry\.(\w+)\n\((.*?)\n\)", text, re.S
    ):
        columns: dict[str, Column] = {}
        for line in body.strip().splitlines():
            line = line.strip().rstrip(",")
            if not line or line.startswith("INDEX "):
                continue
            column, rest = line.split(" ", 1)
            type_, _, default = rest.partition(" DEFAULT ")
            columns[column] = Column(column, type_, default or None)
        tables[name] = columns
    return tables


TABLES = schema_tables()


def test_the_schema_oracle_reads_the_three_tables() -> None:
    assert set(TABLES) == {"traces", "metrics", "logs"}
    assert len(TABLES["traces"]) == 27 and len(TABLES["metrics"]) == 42
    assert len(TABLES["logs"]) == 39
    metrics = TABLES["metrics"]
    assert metrics["aggregation_temporality"].landed_default() == "UNSPECIFIED"
    assert metrics["histogram_bucket_counts"].landed_default() == []
    assert metrics["metric_type"].default is None
    assert metrics["metric_type"].enum_names() == {
        "GAUGE", "SUM", "HISTOGRAM", "EXPONENTIAL_HISTOGRAM", "SUMMARY"
    }  # fmt: skip
    assert TABLES["logs"]["trace_id"].landed_default() == ""
    assert TABLES["traces"]["trace_id"].landed_default() is COMPUTED


# --- decoding -------------------------------------------------------------------------------


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"
    return dict(pairs)


def decode(line: bytes) -> dict[str, Any]:
    decoded = json.loads(line, object_pairs_hook=no_duplicates)
    assert isinstance(decoded, dict)
    return decoded


def one_row(row: bytes | bytearray) -> dict[str, Any]:
    """A row as it sits in the ring: one JSON object, then a newline; ``}\\n`` only at its end."""
    data = bytes(row)
    assert data.endswith(b"}\n")
    assert data.count(b"\n") == 1 and data.count(b"}\n") == 1
    return decode(data)


def landed(table: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of ``table`` as the server fills it from ``fields`` (JSONEachRow with
    input_format_defaults_for_omitted_fields). Fails on a field the table has no column for
    (it would be skipped silently) and on a column with no DEFAULT that is not sent."""
    columns = TABLES[table]
    unknown = set(fields) - set(columns)
    assert not unknown, f"fields with no column in {table}: {sorted(unknown)}"
    missing = {c.name for c in columns.values() if c.default is None and c.name not in fields}
    assert not missing, f"{table} columns with no DEFAULT not sent: {sorted(missing)}"
    out: dict[str, Any] = {}
    for name, column in columns.items():
        out[name] = fields[name] if name in fields else column.landed_default()
        if column.enum_names():
            assert out[name] in column.enum_names(), (name, out[name])
    return out


RESOURCE = Resource(
    service_name='svc "quoted" \\ ünï',
    service_version="2.3.4",
    organization="namastex",
    environment="staging",
    hostname="host-1",
    os_type="linux",
    os_version="6.1.0",
    architecture="x86_64",
    runtime_name="cpython",
    runtime_version="3.11.7",
    process_pid=4242,
    user_id="user-1",
    session_id="session-1",
    sdk_name="automagik-telemetry",
    sdk_version="9.9.9",
)
SHARED = {
    "service_name": 'svc "quoted" \\ ünï',
    "project_name": 'svc "quoted" \\ ünï',
    "project_version": "2.3.4",
    "environment": "staging",
    "hostname": "host-1",
    "user_id": "user-1",
    "session_id": "session-1",
    "os_type": "linux",
    "os_version": "6.1.0",
    "runtime_name": "cpython",
    "runtime_version": "3.11.7",
    "instrumentation_library_name": "automagik-telemetry",
    "instrumentation_library_version": "9.9.9",
}
TRACE_SUFFIX, METRIC_SUFFIX, LOG_SUFFIX = clickhouse_row_suffixes(RESOURCE)


def completed(row: bytes | bytearray, suffix: bytes) -> dict[str, Any]:
    return decode(complete_rows(bytes(row), suffix))


# --- suffixes and complete_rows -------------------------------------------------------------


def test_each_suffix_holds_the_shared_columns_of_its_table() -> None:
    for suffix in (TRACE_SUFFIX, METRIC_SUFFIX, LOG_SUFFIX):
        assert suffix.startswith(b",") and suffix.endswith(b"}\n")
        assert suffix.count(b"\n") == 1
    assert decode(b"{" + TRACE_SUFFIX[1:]) == {**SHARED, "span_kind": "INTERNAL"}
    assert decode(b"{" + METRIC_SUFFIX[1:]) == SHARED
    assert decode(b"{" + LOG_SUFFIX[1:]) == {**SHARED, "body_type": "STRING"}


def test_completed_rows_land_in_every_column_they_name() -> None:
    rows = ClickHouseRows()
    trace = landed("traces", completed(rows.span(T, "e", None, None), TRACE_SUFFIX))
    metric = landed(
        "metrics", completed(rows.metric(T, "m", 1, MetricType.GAUGE, None), METRIC_SUFFIX)
    )
    log = landed("logs", completed(rows.log(T, "l", LogSeverity.INFO, None), LOG_SUFFIX))
    for row in (trace, metric, log):
        assert {k: row[k] for k in SHARED} == SHARED
    assert trace["span_kind"] == "INTERNAL" and log["body_type"] == "STRING"
    # columns neither the row nor the suffix fill keep their defaults
    assert (trace["parent_span_id"], trace["duration_ms"], trace["cloud_region"]) == ("", 0, "")
    assert trace["trace_id"] is COMPUTED and trace["timestamp"] is COMPUTED
    assert (metric["metric_unit"], metric["schema_url"], metric["quantile_values"]) == ("", "", {})
    assert (log["source_line"], log["flags"], log["exception_type"]) == (0, 0, "")


def test_complete_rows_fills_every_row_of_a_batch_and_nothing_inside_a_value() -> None:
    rows = ClickHouseRows()
    tricky = 'a}\nb "}\\n" {}'  # the row end's bytes inside a string, as text
    batch = b"".join(
        [
            bytes(rows.span(T, tricky, {"nested": {"x": {"y": 1}}, "list": [{}]}, None)),
            bytes(rows.span(T + 1, "plain", None, "boom}")),
            bytes(rows.span(T + 2, "}", {"}": "}\n"}, None)),
        ]
    )
    lines = complete_rows(batch, TRACE_SUFFIX).splitlines(keepends=True)
    assert len(lines) == 3 and all(line.endswith(b"}\n") for line in lines)
    first, second, third = (decode(line) for line in lines)
    assert first == {
        "timestamp_ns": T, "span_name": tricky, "status_code": "OK", "status_message": "",
        "attributes": {"nested": {"x": {"y": 1}}, "list": [{}]}, **SHARED, "span_kind": "INTERNAL",
    }  # fmt: skip
    assert (second["span_name"], second["status_message"], second["status_code"]) == (
        "plain", "boom}", "ERROR"
    )  # fmt: skip
    assert third["span_name"] == "}" and third["attributes"] == {"}": "}\n"}
    assert {k: second[k] for k in SHARED} == {k: third[k] for k in SHARED} == SHARED


def test_complete_rows_of_an_empty_batch_and_the_empty_suffix() -> None:
    row = bytes(ClickHouseRows().span(T, "e", None, None))
    assert complete_rows(b"", TRACE_SUFFIX) == b""
    assert complete_rows(row, b"}\n") == row


# --- spans ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status_code", "status_message"),
    [(None, "OK", ""), ("boom", "ERROR", "boom"), ("", "ERROR", ""),
     ('bad "input"\n\tline 2 \u2603', "ERROR", 'bad "input"\n\tline 2 \u2603')],
    ids=["ok", "error", "empty-error", "escaped-error"],
)  # fmt: skip
def test_span_row_fields(error: str | None, status_code: str, status_message: str) -> None:
    row = one_row(ClickHouseRows().span(T, "user.signup", {"plan": "pro", "seats": 3}, error))
    assert row == {
        "timestamp_ns": T,
        "span_name": "user.signup",
        "status_code": status_code,
        "status_message": status_message,
        "attributes": {"plan": "pro", "seats": 3},
    }


def test_a_span_without_attributes_sends_an_empty_map() -> None:
    row = one_row(ClickHouseRows().span(0, "", None, None))
    assert row == {
        "timestamp_ns": 0, "span_name": "", "status_code": "OK", "status_message": "",
        "attributes": {},
    }  # fmt: skip


def test_the_returned_buffer_is_reused_without_leftovers() -> None:
    rows = ClickHouseRows()
    long = bytes(rows.span(T, "x" * 5000, {"k": "v" * 5000}, None))
    short = rows.span(T, "y", None, None)
    assert len(long) > 10_000
    assert bytes(short) == (
        b'{"timestamp_ns":1795000000123456789,"span_name":"y","status_code":"OK",'
        b'"status_message":"","attributes":{}}\n'
    )


class Labelled:
    def __str__(self) -> str:
        return "labelled-42"


@pytest.mark.parametrize(
    ("attributes", "decoded"),
    [
        ({"s": "text", "i": -7, "f": 0.25, "t": True, "n": None},
         {"s": "text", "i": -7, "f": 0.25, "t": True, "n": None}),
        ({"max": INT64_MAX, "min": INT64_MIN, "u64": (1 << 64) - 1, "big": 1 << 64,
          "huge": -(10**30)},
         {"max": INT64_MAX, "min": INT64_MIN, "u64": (1 << 64) - 1, "big": 1 << 64,
          "huge": -(10**30)}),
        ({"tags": ["a", 1, 2.5, [True]], "nested": {"region": "eu", "ids": [1, 2]}},
         {"tags": ["a", 1, 2.5, [True]], "nested": {"region": "eu", "ids": [1, 2]}}),
        ({"obj": Labelled(), "in_list": [Labelled()]},
         {"obj": "labelled-42", "in_list": ["labelled-42"]}),
        ({1: "int"}, {"1": "int"}),
        ({2.5: "float"}, {"2.5": "float"}),
        ({True: "bool"}, {"True": "bool"}),
        ({None: "none"}, {"None": "none"}),
        ({(1, "a"): "tuple"}, {"(1, 'a')": "tuple"}),
        ({Labelled(): "object"}, {"labelled-42": "object"}),
    ],
    ids=["scalars", "big-ints", "containers", "fallback", "int-key", "float-key", "bool-key",
         "none-key", "tuple-key", "object-key"],
)  # fmt: skip
def test_attribute_values_and_keys(attributes: dict[Any, Any], decoded: dict[str, Any]) -> None:
    """JSON values as themselves (ints beyond 64 bits included, exactly), anything else as its
    text; keys that are not strings as their ``str()``."""
    row = one_row(ClickHouseRows().span(T, "e", attributes, None))
    assert row["attributes"] == decoded


NON_FINITE_ATTRIBUTES = (
    "msgspec encodes NaN and the infinities as null (enc_hook is not asked), so a non-finite "
    "attribute lands as '' in the Map(String, String) column: its value is lost, while the module "
    "says values JSON cannot hold travel as their text (as value_double does: 'nan'), and the OTLP "
    "backend keeps them ('NaN', 'Infinity')"
)


@pytest.mark.xfail(strict=True, reason=NON_FINITE_ATTRIBUTES)
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
def test_a_non_finite_attribute_travels_as_its_text(value: float) -> None:
    row = one_row(ClickHouseRows().span(T, "e", {"v": value, "in": [value]}, None))
    for sent in (row["attributes"]["v"], row["attributes"]["in"][0]):
        assert isinstance(sent, str)
        assert math.isnan(float(sent)) if math.isnan(value) else float(sent) == value


NON_DICT_MAPPING = (
    "_fallback turns a Mapping that is not a dict into its str(): an attribute whose value is "
    "a MappingProxyType (or any non-dict Mapping) is stored as Python repr text \"{'a': 1}\" "
    'instead of the JSON object {"a":1} a dict gives (compact OTLP rows carry it as a map)'
)


@pytest.mark.xfail(strict=True, reason=NON_DICT_MAPPING)
def test_a_mapping_that_is_not_a_dict_travels_as_a_json_object() -> None:
    row = one_row(ClickHouseRows().span(T, "e", {"m": MappingProxyType({"a": 1})}, None))
    assert row["attributes"] == {"m": {"a": 1}}


# --- metrics --------------------------------------------------------------------------------


def metric_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    """The metric columns a track call is about, as they land."""
    full = landed("metrics", {**row, **SHARED})
    names = ("metric_name", "metric_type", "timestamp_ns", "value_int", "value_double",
             "is_monotonic", "aggregation_temporality", "histogram_count", "histogram_sum",
             "histogram_min", "histogram_max", "histogram_bucket_counts",
             "histogram_explicit_bounds", "attributes")  # fmt: skip
    return {name: full[name] for name in names}


NO_HISTOGRAM = {
    "histogram_count": 0, "histogram_sum": 0, "histogram_min": 0, "histogram_max": 0,
    "histogram_bucket_counts": [], "histogram_explicit_bounds": [],
}  # fmt: skip


@pytest.mark.parametrize(
    ("value", "value_int", "value_double"),
    [
        (7, 7, 7.0),
        (0, 0, 0.0),
        (-3, -3, -3.0),
        (12.5, 0, 12.5),
        (12.0, 0, 12.0),
        (INT64_MAX, INT64_MAX, 9.223372036854776e18),
        (INT64_MIN, INT64_MIN, -9.223372036854776e18),
        (INT64_MAX + 1, 0, 9.223372036854776e18),  # beyond Int64: the double only
        (INT64_MIN - 1, 0, -9.223372036854776e18),
        (1 << 64, 0, 1.8446744073709552e19),
        (1e308, 0, 1e308),
        (math.nan, 0, "nan"),  # as the text ClickHouse reads into Float64
        (math.inf, 0, "inf"),
        (-math.inf, 0, "-inf"),
    ],
)
def test_gauge_and_counter_values(value: float, value_int: int, value_double: Any) -> None:
    rows = ClickHouseRows()
    gauge = metric_columns(one_row(rows.metric(T, "queue.depth", value, MetricType.GAUGE, None)))
    assert gauge == {
        "metric_name": "queue.depth", "metric_type": "GAUGE", "timestamp_ns": T,
        "value_int": value_int, "value_double": value_double, "is_monotonic": 0,
        "aggregation_temporality": "UNSPECIFIED", **NO_HISTOGRAM, "attributes": {},
    }  # fmt: skip
    counter = metric_columns(one_row(rows.metric(T, "jobs", value, MetricType.COUNTER, {"q": 1})))
    assert counter == {
        **gauge, "metric_name": "jobs", "metric_type": "SUM", "is_monotonic": 1,
        "aggregation_temporality": "DELTA", "attributes": {"q": 1},
    }  # fmt: skip


def test_negative_zero_keeps_its_sign() -> None:
    row = one_row(ClickHouseRows().metric(T, "m", -0.0, MetricType.GAUGE, None))
    assert row["value_double"] == 0.0 and math.copysign(1.0, row["value_double"]) == -1.0


def one_hot(index: int) -> list[int]:
    return [1 if i == index else 0 for i in range(16)]


@pytest.mark.parametrize(
    ("value", "bucket", "as_int", "as_double"),
    [
        (12.5, 3, 0, 12.5),  # (10, 25]
        (10, 2, 10, 10.0),  # an upper bound is inclusive
        (0, 0, 0, 0.0),
        (-5.5, 0, 0, -5.5),
        (10000.0, 14, 0, 10000.0),
        (10000.5, 15, 0, 10000.5),
        (INT64_MAX, 15, INT64_MAX, 9.223372036854776e18),
        (1 << 64, 15, 0, 1.8446744073709552e19),
        (math.nan, 15, 0, "nan"),
        (math.inf, 15, 0, "inf"),
        (-math.inf, 0, 0, "-inf"),
    ],
)
def test_histogram_row_holds_one_sample(
    value: float, bucket: int, as_int: int, as_double: Any
) -> None:
    row = one_row(ClickHouseRows().metric(T, "latency_ms", value, MetricType.HISTOGRAM, None))
    assert metric_columns(row) == {
        "metric_name": "latency_ms", "metric_type": "HISTOGRAM", "timestamp_ns": T,
        "value_int": as_int, "value_double": as_double, "is_monotonic": 0,
        "aggregation_temporality": "DELTA", "histogram_count": 1, "histogram_sum": as_double,
        "histogram_min": as_double, "histogram_max": as_double,
        "histogram_bucket_counts": one_hot(bucket), "histogram_explicit_bounds": OTEL_BOUNDS,
        "attributes": {},
    }  # fmt: skip


# --- histogram_bucket -----------------------------------------------------------------------


def around_each_bound() -> Iterator[tuple[float, int]]:
    """Bucket i holds (bounds[i-1], bounds[i]]: each bound is in its own bucket, the next float
    above it in the next one, the float below it in its own."""
    for index, bound in enumerate(OTEL_BOUNDS):
        yield bound, index
        yield math.nextafter(bound, -math.inf), index
        yield math.nextafter(bound, math.inf), index + 1


@pytest.mark.parametrize(("value", "bucket"), list(around_each_bound()))
def test_histogram_bucket_at_and_around_each_bound(value: float, bucket: int) -> None:
    assert histogram_bucket(value) == bucket


@pytest.mark.parametrize(
    ("value", "bucket"),
    [(-0.0, 0), (-1e300, 0), (-math.inf, 0), (3, 1), (5, 1), (6, 2), (10**6, 15), (1 << 70, 15),
     (1e300, 15), (math.inf, 15), (math.nan, 15)],
)  # fmt: skip
def test_histogram_bucket_of_extremes(value: float, bucket: int) -> None:
    assert histogram_bucket(value) == bucket


# --- logs -----------------------------------------------------------------------------------


def log_columns(row: Mapping[str, Any]) -> dict[str, Any]:
    full = landed("logs", {**row, **SHARED, "body_type": "STRING"})
    names = ("timestamp_ns", "observed_timestamp_ns", "severity_text", "severity_number", "body",
             "attributes", "trace_id", "span_id", "exception_type", "exception_message",
             "exception_stacktrace", "is_exception")  # fmt: skip
    return {name: full[name] for name in names}


@pytest.mark.parametrize("severity", list(LogSeverity), ids=lambda s: s.name)
def test_log_row_without_attributes(severity: LogSeverity) -> None:
    row = one_row(ClickHouseRows().log(T, "disk almost full", severity, None))
    assert log_columns(row) == {
        "timestamp_ns": T, "observed_timestamp_ns": T, "severity_text": severity.name,
        "severity_number": SEVERITY_NUMBERS[severity.name], "body": "disk almost full",
        "attributes": {}, "trace_id": "", "span_id": "", "exception_type": "",
        "exception_message": "", "exception_stacktrace": "", "is_exception": 0,
    }  # fmt: skip


def test_log_row_lifts_ids_and_exception_attributes_into_their_columns() -> None:
    attributes = {
        "free_gb": 1.5,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": 12345,
        "exception.type": "builtins.OSError",
        "exception.message": "disk full",
        "exception.stacktrace": 'Traceback (most recent call last):\n  File "x.py"\nOSError\n',
    }
    row = one_row(ClickHouseRows().log(T, "write failed", LogSeverity.ERROR, attributes))
    assert log_columns(row) == {
        "timestamp_ns": T, "observed_timestamp_ns": T, "severity_text": "ERROR",
        "severity_number": 17, "body": "write failed", "attributes": attributes,
        "trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "12345",
        "exception_type": "builtins.OSError", "exception_message": "disk full",
        "exception_stacktrace": 'Traceback (most recent call last):\n  File "x.py"\nOSError\n',
        "is_exception": 1,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("attributes", "exception_type", "is_exception"),
    [({"exception.type": ""}, "", 1), ({"exception.type": None}, "", 0),
     ({"exception.type": KeyError}, "<class 'KeyError'>", 1), ({"other": 1}, "", 0)],
    ids=["empty-type", "none-type", "class-type", "no-type"],
)  # fmt: skip
def test_a_log_is_an_exception_when_it_names_an_exception_type(
    attributes: dict[str, Any], exception_type: str, is_exception: int
) -> None:
    row = log_columns(one_row(ClickHouseRows().log(T, "m", LogSeverity.WARN, attributes)))
    assert (row["exception_type"], row["is_exception"]) == (exception_type, is_exception)
    assert (row["exception_message"], row["trace_id"]) == ("", "")
