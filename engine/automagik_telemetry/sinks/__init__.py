"""The sink registry: one place that maps a backend's name to everything that differs between
backends, on both sides of the ring.

* application side (cheap, no delivery code imported): the row encoder of a track call, where
  rows go (for the destination key and the spool's directory), whether configuring it is the
  user's consent, the default request size, the package it needs, the writer's settings;
* writer side: how the writer builds its sink (the sink's module is imported only there).

No other module compares backend names: an unknown name is a ``ConfigError`` (``sink_spec``),
never an ``else``. A new sink is a module under ``sinks/``, a settings struct in
``settings.py`` and one entry in ``SINKS``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ..settings import ClickHouseSettings, EmbeddedSettings, SinkSettings

if TYPE_CHECKING:
    from ..config import TelemetryConfig
    from ..resource import Resource
    from ..rows.clickhouse import RowEncoder
    from ..settings import WriterSettings
    from ..transport import Sink

MiB: Final = 1024 * 1024


@dataclass(frozen=True)
class SinkSpec:
    name: str
    #: the default cap of one request body (``max_batch_bytes`` unset)
    max_batch_bytes: int
    #: a package the backend needs, and the extra that installs it
    requires: tuple[str, str] | None
    #: one session serves one query at a time, and one process opens the destination
    single_session: bool
    #: the row encoder of a track call
    encoder: Callable[[TelemetryConfig, Resource], RowEncoder]
    #: what names where rows go (hashed into the destination key)
    where: Callable[[TelemetryConfig], list[str]]
    #: configuring this backend is the user's consent (consent rule 4)
    configured: Callable[[TelemetryConfig, Mapping[str, str]], bool]
    #: the backend's part of ``WriterSettings``, and how its rings delimit rows
    settings: Callable[[TelemetryConfig, Resource], tuple[SinkSettings, str]]
    #: the endpoint ``get_status()`` shows as ``clickhouse_endpoint``
    shown_endpoint: Callable[[TelemetryConfig], str | None]
    #: (writer process) the sink
    build: Callable[[WriterSettings], Sink]


def sink_spec(name: str) -> SinkSpec:
    spec = SINKS.get(name)
    if spec is None:
        from ..config import ConfigError

        raise ConfigError(f"backend={name!r} is not allowed: expected one of {', '.join(SINKS)}")
    return spec


def _tables(config: TelemetryConfig) -> tuple[str, str, str]:
    return (config.clickhouse_table, config.clickhouse_metrics_table, config.clickhouse_logs_table)


def _clickhouse_rows(config: TelemetryConfig, resource: Resource) -> RowEncoder:
    from ..rows.clickhouse import ClickHouseRows

    return ClickHouseRows()


def _suffixes(resource: Resource) -> tuple[bytes, bytes, bytes]:
    from ..rows.clickhouse import clickhouse_row_suffixes

    return clickhouse_row_suffixes(resource)


def _clickhouse_settings(config: TelemetryConfig, resource: Resource) -> tuple[SinkSettings, str]:
    return ClickHouseSettings(
        endpoint=config.clickhouse_endpoint, database=config.clickhouse_database,
        tables=_tables(config), username=config.clickhouse_username,
        password=config.clickhouse_password, row_suffixes=_suffixes(resource),
    ), "lines"  # fmt: skip


def _embedded_settings(config: TelemetryConfig, resource: Resource) -> tuple[SinkSettings, str]:
    return EmbeddedSettings(
        path=config.resolved_embedded_path(), database=config.clickhouse_database,
        tables=_tables(config), row_suffixes=_suffixes(resource),
    ), "lines"  # fmt: skip


def _otlp_rows(config: TelemetryConfig, resource: Resource) -> RowEncoder:
    from .otlp.encode import otlp_row_encoder

    return otlp_row_encoder(config, resource)


def _otlp_settings(config: TelemetryConfig, resource: Resource) -> tuple[SinkSettings, str]:
    from .otlp.encode import otlp_settings

    return otlp_settings(config, resource)


def _otlp_where(config: TelemetryConfig) -> list[str]:
    from .otlp.config import resolve_otlp

    destination = resolve_otlp(config, os.environ)
    return [*destination.endpoints, destination.protocol]


def _otlp_configured(config: TelemetryConfig, environ: Mapping[str, str]) -> bool:
    """An OTLP endpoint that is not the vendor's, for at least one signal."""
    from .otlp.config import resolve_otlp

    return any(resolve_otlp(config, environ).configured)


def _build_clickhouse(settings: WriterSettings) -> Sink:
    from ..transport import HttpClient
    from .clickhouse import ClickHouseSink

    sink = settings.sink
    assert isinstance(sink, ClickHouseSettings)
    return ClickHouseSink(
        endpoint=sink.endpoint,
        database=sink.database,
        tables=dict(enumerate(sink.tables)),
        username=sink.username,
        password=sink.password,
        http=HttpClient(settings.timeout, pool_size=settings.max_in_flight + 1),
        compression=settings.compression,
        compression_threshold=settings.compression_threshold,
        row_suffixes=sink.row_suffixes,
    )


def _build_embedded(settings: WriterSettings) -> Sink:
    from .embedded import EmbeddedSink

    sink = settings.sink
    assert isinstance(sink, EmbeddedSettings)
    return EmbeddedSink(
        path=sink.path,
        database=sink.database,
        tables=dict(enumerate(sink.tables)),
        table_names=sink.tables,
        row_suffixes=sink.row_suffixes,
    )


def _build_otlp(settings: WriterSettings) -> Sink:
    from ..transport import HttpClient
    from .otlp.sink import OtlpSink

    return OtlpSink.from_settings(settings, HttpClient(settings.timeout))


SINKS: Final[dict[str, SinkSpec]] = {
    "otlp": SinkSpec(
        name="otlp",
        # a receiver parses a request whole (the Collector takes 20 MiB by default, vendors
        # often less); smaller requests let the writer spell out one batch while the receiver
        # reads the one before (see config.resolved_max_batch_bytes)
        max_batch_bytes=4 * MiB,
        requires=None,
        single_session=False,
        encoder=_otlp_rows,
        where=_otlp_where,
        configured=_otlp_configured,
        settings=_otlp_settings,
        shown_endpoint=lambda config: None,
        build=_build_otlp,
    ),
    "clickhouse": SinkSpec(
        name="clickhouse",
        max_batch_bytes=16 * MiB,
        requires=None,
        single_session=False,
        encoder=_clickhouse_rows,
        where=lambda c: [c.clickhouse_endpoint, c.clickhouse_database, *_tables(c)],
        configured=lambda config, environ: True,
        settings=_clickhouse_settings,
        shown_endpoint=lambda config: config.clickhouse_endpoint,
        build=_build_clickhouse,
    ),
    "embedded": SinkSpec(
        name="embedded",
        max_batch_bytes=16 * MiB,
        requires=("chdb", "embedded"),
        single_session=True,  # one chdb session serves one query at a time, one process
        encoder=_clickhouse_rows,
        where=lambda c: [c.resolved_embedded_path(), c.clickhouse_database],
        configured=lambda config, environ: True,
        settings=_embedded_settings,
        shown_endpoint=lambda config: None,
        build=_build_embedded,
    ),
}
BACKENDS: Final = tuple(SINKS)
