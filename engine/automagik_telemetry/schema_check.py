"""Which columns the engine writes into each table, and how live tables compare
(``automagik-telemetry schema --check``, and the doctor's table checks).

The columns are not listed by hand: they are read off rows the engine's own encoder makes (one
of each shape: an event with an error, a gauge, a counter, a histogram, a log with an exception)
with the shared columns the writer adds, so the list cannot drift from the rows. A column is
*expected* in a live table when the engine writes it and the schema for that server has it:
the legacy schema (servers older than 22.8) keeps no ``attributes``, and the engine's inserts
skip it there (``input_format_skip_unknown_fields``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

import msgspec

from .resource import Resource
from .rows.clickhouse import ClickHouseRows, clickhouse_row_suffixes, complete_rows
from .schema import LogSeverity, MetricType
from .sinks.clickhouse import schema_statements

KIND_TABLES: Final = ("traces", "metrics", "logs")  # the schema's names, in ring kind order
_COLUMN: Final = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+(.+?),?\s*$")


@cache
def written_columns() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Every column the engine's rows name, per ring kind (traces, metrics, logs)."""
    rows = ClickHouseRows()
    suffixes = clickhouse_row_suffixes(Resource.detect("p", "1", "o", "e"))
    attributes = {"a": 1}
    exception = {"exception.type": "E", "exception.message": "m",
                 "exception.stacktrace": "s", "trace_id": "t", "span_id": "s"}  # fmt: skip
    samples: list[list[bytes]] = [
        [bytes(rows.span(1, "e", attributes, None)), bytes(rows.span(1, "e", None, "boom"))],
        [bytes(rows.metric(1, "m", v, k, attributes)) for k in MetricType for v in (2, 1.5)],
        [bytes(rows.log(1, "l", LogSeverity.ERROR, {**attributes, **exception}))],
    ]
    out: list[tuple[str, ...]] = []
    for kind, lines in enumerate(samples):
        names: dict[str, None] = {}
        for line in lines:
            row = msgspec.json.decode(complete_rows(line, suffixes[kind]))
            names.update(dict.fromkeys(row))
        out.append(tuple(names))
    return out[0], out[1], out[2]


@cache
def schema_columns(*, legacy: bool) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """Column name -> definition (type, default) of each table of the schema."""
    tables: dict[str, dict[str, str]] = {}
    for statement in schema_statements(legacy=legacy):
        head, _, body = statement.partition("(")
        match = re.search(r"TABLE IF NOT EXISTS telemetry\.(\w+)", head)
        if not match:
            continue
        columns: dict[str, str] = {}
        for line in body.rsplit(")", 1)[0].splitlines():
            found = _COLUMN.match(line)
            if found and found.group(1) not in ("INDEX", "PROJECTION", "CONSTRAINT"):
                columns[found.group(1)] = found.group(2)
        tables[match.group(1)] = columns
    return tables["traces"], tables["metrics"], tables["logs"]


def expected_columns(*, legacy: bool) -> tuple[tuple[str, ...], ...]:
    """Per ring kind: the columns the engine writes that the schema for the server has."""
    schema = schema_columns(legacy=legacy)
    return tuple(
        tuple(c for c in written if c in schema[kind])
        for kind, written in enumerate(written_columns())
    )


def add_column_statements(
    qualified: str, kind: int, missing: list[str], *, legacy: bool
) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN`` for each missing column, as the schema defines it."""
    schema = schema_columns(legacy=legacy)[kind]
    return [f"ALTER TABLE {qualified} ADD COLUMN {c} {schema[c]}" for c in missing]
