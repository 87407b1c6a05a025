-- automagik-telemetry: ClickHouse schema for current releases (22.8 LTS and newer).
--
-- Column names and meanings are those of the original automagik-telemetry tables, so dashboards
-- written for them keep working. Differences:
--   * `timestamp` is DateTime64(9, 'UTC') (nanoseconds) and defaults to `timestamp_ns`, which is
--     what the engine sends, an omitted `timestamp` is computed by the server.
--   * `attributes` is Map(String, String), the engine sends typed JSON values (numbers, booleans,
--     arrays, objects) and the server stores their JSON text
--     (input_format_json_read_*_as_strings).
--   * Row ids (trace_id, span_id, metric_id, log_id) default to random hex made by the server,
--     which is where the engine leaves them to be made (nothing to generate per call in Python).
--   * MergeTree tables keep a deduplication window, so a batch retried with the same
--     insert_deduplication_token is stored once.
-- `automagik-telemetry schema --apply` runs this file with the configured database and tables.

CREATE DATABASE IF NOT EXISTS telemetry;

CREATE TABLE IF NOT EXISTS telemetry.traces
(
    trace_id String DEFAULT lower(hex(randomString(16))),
    span_id String DEFAULT lower(hex(randomString(8))),
    parent_span_id String DEFAULT '',
    timestamp_ns UInt64,
    timestamp DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(toInt64(timestamp_ns), 'UTC'),
    duration_ms UInt32 DEFAULT 0,
    service_name String,
    span_name String,
    span_kind String DEFAULT 'INTERNAL',
    status_code String DEFAULT 'OK',
    status_message String DEFAULT '',
    project_name String,
    project_version String,
    environment String DEFAULT 'production',
    hostname String DEFAULT '',
    attributes Map(String, String) DEFAULT map(),
    user_id String DEFAULT '',
    session_id String DEFAULT '',
    os_type String DEFAULT '',
    os_version String DEFAULT '',
    runtime_name String DEFAULT '',
    runtime_version String DEFAULT '',
    cloud_provider String DEFAULT '',
    cloud_region String DEFAULT '',
    cloud_availability_zone String DEFAULT '',
    instrumentation_library_name String DEFAULT '',
    instrumentation_library_version String DEFAULT '',
    INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 1,
    INDEX idx_service_name service_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_span_name span_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_project_name project_name TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service_name, span_name, timestamp)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS telemetry.metrics
(
    metric_id String DEFAULT lower(hex(randomString(16))),
    metric_name String,
    metric_type Enum8('GAUGE' = 1, 'SUM' = 2, 'HISTOGRAM' = 3, 'EXPONENTIAL_HISTOGRAM' = 4, 'SUMMARY' = 5),
    metric_unit String DEFAULT '',
    metric_description String DEFAULT '',
    timestamp_ns UInt64,
    timestamp DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(toInt64(timestamp_ns), 'UTC'),
    time_window_start DateTime DEFAULT now(),
    time_window_end DateTime DEFAULT now(),
    value_int Int64 DEFAULT 0,
    value_double Float64 DEFAULT 0,
    is_monotonic UInt8 DEFAULT 0,
    aggregation_temporality Enum8('UNSPECIFIED' = 0, 'DELTA' = 1, 'CUMULATIVE' = 2) DEFAULT 'UNSPECIFIED',
    histogram_count UInt64 DEFAULT 0,
    histogram_sum Float64 DEFAULT 0,
    histogram_min Float64 DEFAULT 0,
    histogram_max Float64 DEFAULT 0,
    histogram_bucket_counts Array(UInt64) DEFAULT [],
    histogram_explicit_bounds Array(Float64) DEFAULT [],
    summary_count UInt64 DEFAULT 0,
    summary_sum Float64 DEFAULT 0,
    quantile_values Map(String, Float64) DEFAULT map(),
    project_name String,
    project_version String DEFAULT '',
    service_name String,
    service_namespace String DEFAULT '',
    service_instance_id String DEFAULT '',
    environment String DEFAULT 'production',
    hostname String DEFAULT '',
    attributes Map(String, String) DEFAULT map(),
    user_id String DEFAULT '',
    session_id String DEFAULT '',
    os_type String DEFAULT '',
    os_version String DEFAULT '',
    runtime_name String DEFAULT '',
    runtime_version String DEFAULT '',
    cloud_provider String DEFAULT '',
    cloud_region String DEFAULT '',
    cloud_availability_zone String DEFAULT '',
    instrumentation_library_name String DEFAULT '',
    instrumentation_library_version String DEFAULT '',
    schema_url String DEFAULT '',
    INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 1,
    INDEX idx_metric_name metric_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_service_name service_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_project_name project_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_environment environment TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service_name, metric_name, timestamp)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000;

CREATE TABLE IF NOT EXISTS telemetry.logs
(
    log_id String DEFAULT lower(hex(randomString(16))),
    trace_id String DEFAULT '',
    span_id String DEFAULT '',
    timestamp_ns UInt64,
    timestamp DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(toInt64(timestamp_ns), 'UTC'),
    observed_timestamp_ns UInt64 DEFAULT timestamp_ns,
    observed_timestamp DateTime64(9, 'UTC') DEFAULT fromUnixTimestamp64Nano(toInt64(observed_timestamp_ns), 'UTC'),
    severity_text String DEFAULT '',
    severity_number UInt8 DEFAULT 0,
    body String,
    body_type Enum8('EMPTY' = 0, 'STRING' = 1, 'JSON' = 2, 'BYTES' = 3) DEFAULT 'STRING',
    project_name String,
    project_version String DEFAULT '',
    service_name String,
    service_namespace String DEFAULT '',
    service_instance_id String DEFAULT '',
    environment String DEFAULT 'production',
    hostname String DEFAULT '',
    attributes Map(String, String) DEFAULT map(),
    user_id String DEFAULT '',
    session_id String DEFAULT '',
    os_type String DEFAULT '',
    os_version String DEFAULT '',
    runtime_name String DEFAULT '',
    runtime_version String DEFAULT '',
    cloud_provider String DEFAULT '',
    cloud_region String DEFAULT '',
    cloud_availability_zone String DEFAULT '',
    instrumentation_library_name String DEFAULT '',
    instrumentation_library_version String DEFAULT '',
    schema_url String DEFAULT '',
    exception_type String DEFAULT '',
    exception_message String DEFAULT '',
    exception_stacktrace String DEFAULT '',
    is_exception UInt8 DEFAULT 0,
    source_file String DEFAULT '',
    source_line UInt32 DEFAULT 0,
    source_function String DEFAULT '',
    flags UInt32 DEFAULT 0,
    INDEX idx_timestamp timestamp TYPE minmax GRANULARITY 1,
    INDEX idx_severity severity_number TYPE minmax GRANULARITY 1,
    INDEX idx_service_name service_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_project_name project_name TYPE bloom_filter GRANULARITY 1,
    INDEX idx_environment environment TYPE bloom_filter GRANULARITY 1,
    INDEX idx_trace_id trace_id TYPE bloom_filter GRANULARITY 1,
    INDEX idx_body body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (service_name, severity_number, timestamp)
TTL toDateTime(timestamp) + INTERVAL 90 DAY
SETTINGS index_granularity = 8192, non_replicated_deduplication_window = 10000;
