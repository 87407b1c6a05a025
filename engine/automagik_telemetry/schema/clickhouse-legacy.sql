-- automagik-telemetry: tables for old ClickHouse servers (18.16 to 22.7), such as the one Debian
-- ships. These releases lack Map, DateTime64 and randomString, so:
--   * `timestamp` is a DateTime (seconds) MATERIALIZED from `timestamp_ns`, which keeps the
--     nanoseconds,
--   * ids default to hex of a server-made UUID (span_id reuses part of the trace_id's UUID:
--     old servers merge the two identical generateUUIDv4() calls of a row),
--   * `attributes` is not stored (the writer learns the tables' columns and cuts it from the
--     rows it sends here), upgrade to the current schema to keep it.
-- Every other column matches clickhouse.sql.

CREATE DATABASE IF NOT EXISTS telemetry;

CREATE TABLE IF NOT EXISTS telemetry.traces
(
    trace_id String DEFAULT replaceAll(toString(generateUUIDv4()), '-', ''),
    span_id String DEFAULT lower(substring(hex(reinterpretAsFixedString(generateUUIDv4())), 1, 16)),
    parent_span_id String,
    timestamp_ns UInt64,
    timestamp DateTime MATERIALIZED toDateTime(intDiv(timestamp_ns, 1000000000)),
    duration_ms UInt32,
    service_name String,
    span_name String,
    span_kind String,
    status_code String,
    status_message String,
    project_name String,
    project_version String,
    environment String,
    hostname String,
    user_id String,
    session_id String,
    os_type String,
    os_version String,
    runtime_name String,
    runtime_version String,
    cloud_provider String,
    cloud_region String,
    cloud_availability_zone String,
    instrumentation_library_name String,
    instrumentation_library_version String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service_name, span_name, timestamp);

CREATE TABLE IF NOT EXISTS telemetry.metrics
(
    metric_id String DEFAULT replaceAll(toString(generateUUIDv4()), '-', ''),
    metric_name String,
    metric_type Enum8('GAUGE' = 1, 'SUM' = 2, 'HISTOGRAM' = 3, 'EXPONENTIAL_HISTOGRAM' = 4, 'SUMMARY' = 5),
    metric_unit String,
    timestamp_ns UInt64,
    timestamp DateTime MATERIALIZED toDateTime(intDiv(timestamp_ns, 1000000000)),
    value_int Int64,
    value_double Float64,
    is_monotonic UInt8,
    aggregation_temporality Enum8('UNSPECIFIED' = 0, 'DELTA' = 1, 'CUMULATIVE' = 2),
    histogram_count UInt64,
    histogram_sum Float64,
    histogram_min Float64,
    histogram_max Float64,
    histogram_bucket_counts Array(UInt64),
    histogram_explicit_bounds Array(Float64),
    project_name String,
    project_version String,
    service_name String,
    environment String,
    hostname String,
    user_id String,
    session_id String,
    os_type String,
    os_version String,
    runtime_name String,
    runtime_version String,
    instrumentation_library_name String,
    instrumentation_library_version String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service_name, metric_name, timestamp);

CREATE TABLE IF NOT EXISTS telemetry.logs
(
    log_id String DEFAULT replaceAll(toString(generateUUIDv4()), '-', ''),
    trace_id String,
    span_id String,
    timestamp_ns UInt64,
    timestamp DateTime MATERIALIZED toDateTime(intDiv(timestamp_ns, 1000000000)),
    observed_timestamp_ns UInt64,
    severity_text String,
    severity_number UInt8,
    body String,
    body_type Enum8('EMPTY' = 0, 'STRING' = 1, 'JSON' = 2, 'BYTES' = 3),
    exception_type String,
    exception_message String,
    exception_stacktrace String,
    is_exception UInt8,
    project_name String,
    project_version String,
    service_name String,
    environment String,
    hostname String,
    user_id String,
    session_id String,
    os_type String,
    os_version String,
    runtime_name String,
    runtime_version String,
    instrumentation_library_name String,
    instrumentation_library_version String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service_name, severity_number, timestamp);
