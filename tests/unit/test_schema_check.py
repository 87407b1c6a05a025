"""The columns the engine writes, read off its own rows, against the schema files."""

from __future__ import annotations

from automagik_telemetry.schema_check import (
    add_column_statements,
    expected_columns,
    schema_columns,
    written_columns,
)


def test_every_column_the_engine_writes_is_in_schema_sql() -> None:
    for kind, written in enumerate(written_columns()):
        assert set(written) <= set(schema_columns(legacy=False)[kind]), kind
        assert expected_columns(legacy=False)[kind] == written


def test_the_legacy_schema_lacks_only_attributes() -> None:
    for kind, written in enumerate(written_columns()):
        missing = set(written) - set(schema_columns(legacy=True)[kind])
        assert missing == {"attributes"}, (kind, missing)
        assert "attributes" not in expected_columns(legacy=True)[kind]


def test_rows_name_the_shared_and_own_columns() -> None:
    traces, metrics, logs = written_columns()
    assert {"timestamp_ns", "span_name", "status_code", "service_name", "span_kind"} <= set(traces)
    assert {"metric_name", "metric_type", "value_int", "histogram_bucket_counts"} <= set(metrics)
    assert {"severity_text", "severity_number", "body", "exception_type", "body_type"} <= set(logs)


def test_add_column_statements_use_the_schemas_definitions() -> None:
    [statement] = add_column_statements("db.metrics", 1, ["metric_type"], legacy=False)
    assert statement.startswith("ALTER TABLE db.metrics ADD COLUMN metric_type Enum8('GAUGE' = 1")
