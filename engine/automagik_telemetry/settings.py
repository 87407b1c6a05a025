"""What the client hands its writer process (as JSON on the writer's stdin): a leaf module, so
the application imports none of the writer's delivery stack."""

from __future__ import annotations

from typing import Any

import msgspec


class WriterSettings(msgspec.Struct, frozen=True):
    """Everything the writer process needs, sent by the client on the writer's stdin."""

    segment: str
    producer_pid: int
    backend: str
    batch_size: int
    flush_interval: float
    max_batch_bytes: int
    timeout: float
    max_retries: int
    retry_backoff_base: float
    compression: str  # auto | lz4 | gzip | zstd | none
    compression_threshold: int
    max_in_flight: int = 2
    record_format: str = "lines"  # how rows are delimited in the rings: lines | protobuf
    spool_dir: str = ""  # this destination's spool; "" disables spooling
    destination: str = ""  # backend and a hash of where it sends: who may adopt the segment
    lock_fd: int = -1  # an inherited descriptor already holding the segment's writer lock
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_full_policy: str = "drop_newest"
    verbose: bool = False
    # ClickHouse and embedded
    clickhouse_endpoint: str = ""
    clickhouse_database: str = "telemetry"
    clickhouse_tables: tuple[str, str, str] = ("traces", "metrics", "logs")
    clickhouse_username: str = "default"
    clickhouse_password: str = ""
    embedded_path: str = ""
    row_suffixes: tuple[bytes, bytes, bytes] = (b"}\n", b"}\n", b"}\n")
    # OTLP
    otlp_endpoints: tuple[str, str, str] = ("", "", "")
    otlp_protocol: str = "http/json"
    otlp_headers: dict[str, str] = {}
    otlp_resource: bytes = b""
    otlp_signal_headers: tuple[dict[str, str], dict[str, str], dict[str, str]] | None = None
    otlp_compressions: tuple[str, str, str] = ("", "", "")  # per signal; "" = compression
    otlp_timeouts: tuple[float, float, float] = (0.0, 0.0, 0.0)  # per signal; 0 = timeout


def identity(settings: WriterSettings) -> bytes:
    """What a segment says about its writer's settings, for a client that adopts it: all of
    them but the credentials (the adopter, a client of the same destination, adds its own)."""
    blank: dict[str, Any] = {"segment": "", "clickhouse_password": "", "otlp_headers": {}}
    if settings.otlp_signal_headers is not None:
        blank["otlp_signal_headers"] = ({}, {}, {})
    return msgspec.json.encode(msgspec.structs.replace(settings, **blank))
