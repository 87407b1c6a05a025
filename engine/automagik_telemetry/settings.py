"""What the client hands its writer process (as JSON on the writer's stdin): a leaf module, so
the application imports none of the writer's delivery stack.

``WriterSettings`` holds what every writer needs (batching, retries, spool); ``sink`` holds one
backend's own settings, a tagged union (the tag is the backend's name, ``"backend"`` in the
JSON): a writer can only read the fields of the backend it serves, and a new sink adds its own
struct here and one entry in the registry (``sinks/__init__.py``).
"""

from __future__ import annotations

from typing import Any

import msgspec

Tables = tuple[str, str, str]  # traces, metrics, logs
Suffixes = tuple[bytes, bytes, bytes]  # per ring: the shared columns the writer appends
_PLAIN_ROWS: Suffixes = (b"}\n", b"}\n", b"}\n")


class ClickHouseSettings(msgspec.Struct, frozen=True, tag="clickhouse", tag_field="backend"):
    endpoint: str
    database: str = "telemetry"
    tables: Tables = ("traces", "metrics", "logs")
    username: str = "default"
    password: str = ""
    row_suffixes: Suffixes = _PLAIN_ROWS

    def without_credentials(self) -> ClickHouseSettings:
        return msgspec.structs.replace(self, password="")

    def with_credentials_of(self, other: SinkSettings) -> ClickHouseSettings:
        assert isinstance(other, ClickHouseSettings)
        return msgspec.structs.replace(self, password=other.password)


class EmbeddedSettings(msgspec.Struct, frozen=True, tag="embedded", tag_field="backend"):
    path: str
    database: str = "telemetry"
    tables: Tables = ("traces", "metrics", "logs")
    row_suffixes: Suffixes = _PLAIN_ROWS

    def without_credentials(self) -> EmbeddedSettings:
        return self

    def with_credentials_of(self, other: SinkSettings) -> EmbeddedSettings:
        return self


class OtlpSettings(msgspec.Struct, frozen=True, tag="otlp", tag_field="backend"):
    endpoints: tuple[str, str, str] = ("", "", "")
    protocol: str = "http/json"
    headers: dict[str, str] = {}
    resource: bytes = b""
    signal_headers: tuple[dict[str, str], dict[str, str], dict[str, str]] | None = None
    compressions: tuple[str, str, str] = ("", "", "")  # per signal; "" = compression
    timeouts: tuple[float, float, float] = (0.0, 0.0, 0.0)  # per signal; 0 = timeout

    def without_credentials(self) -> OtlpSettings:
        blank: dict[str, Any] = {"headers": {}}
        if self.signal_headers is not None:
            blank["signal_headers"] = ({}, {}, {})
        return msgspec.structs.replace(self, **blank)

    def with_credentials_of(self, other: SinkSettings) -> OtlpSettings:
        assert isinstance(other, OtlpSettings)
        return msgspec.structs.replace(
            self, headers=other.headers, signal_headers=other.signal_headers
        )


SinkSettings = ClickHouseSettings | EmbeddedSettings | OtlpSettings


class WriterSettings(msgspec.Struct, frozen=True):
    """Everything the writer process needs, sent by the client on the writer's stdin."""

    segment: str
    producer_pid: int
    sink: SinkSettings
    batch_size: int
    flush_interval: float
    max_batch_bytes: int
    timeout: float
    max_retries: int
    retry_backoff_base: float
    compression: str  # auto | lz4 | gzip | zstd | none
    compression_threshold: int
    max_in_flight: int = 2
    record_format: str = "lines"  # how rows are delimited in the rings: lines | protobuf | sized
    spool_dir: str = ""  # this destination's spool; "" disables spooling
    destination: str = ""  # backend and a hash of where it sends: who may adopt the segment
    lock_fd: int = -1  # an inherited descriptor already holding the segment's writer lock
    spool_max_bytes: int = 256 * 1024 * 1024
    spool_full_policy: str = "drop_newest"
    verbose: bool = False

    @property
    def backend(self) -> str:
        """The name of the backend this writer serves (its sink settings' tag)."""
        return str(self.sink.__struct_config__.tag)


def identity(settings: WriterSettings) -> bytes:
    """What a segment says about its writer's settings, for a client that adopts it: all of
    them but the credentials (the adopter, a client of the same destination, adds its own)."""
    blank = msgspec.structs.replace(settings, segment="", sink=settings.sink.without_credentials())
    return msgspec.json.encode(blank)
