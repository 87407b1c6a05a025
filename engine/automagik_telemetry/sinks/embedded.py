"""The embedded ClickHouse engine (chdb): the same rows, the same schema, no server.

The writer process owns the chdb session (a chdb data directory is used by one process at a
time), creates the schema on first use, and inserts each batch with one statement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..rows.clickhouse import complete_rows
from ..transport import Outcome, Prepared
from .clickhouse import schema_statements


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


@dataclass
class EmbeddedSink:
    path: str
    database: str
    tables: Mapping[int, str]  # ring kind -> table name
    table_names: tuple[str, str, str]  # traces, metrics, logs
    row_suffixes: tuple[bytes, bytes, bytes] = (b"}\n", b"}\n", b"}\n")
    _session: Any = field(default=None, repr=False)

    name = "embedded"

    def discover(self) -> Outcome:
        if self._session is not None:
            return Outcome.delivered()
        try:
            from chdb import session as chdb_session

            self._session = chdb_session.Session(self.path)
            for statement in schema_statements(self.database, *self.table_names):
                self._session.query(statement)
        except Exception as exc:  # chdb raises its own error types
            self._session = None
            return Outcome(
                ok=False,
                retryable=True,
                key="embedded-open",
                message=f"cannot open the embedded ClickHouse at {self.path}: {exc}",
            )
        return Outcome.delivered()

    def prepare(self, kind: int, body: bytes | bytearray, token: str | None) -> Prepared:
        table = f"{self.database}.{self.tables[kind]}"
        settings = "SETTINGS input_format_skip_unknown_fields = 1"
        if token:  # a re-sent batch is stored once (the schema keeps a deduplication window)
            settings += f", insert_deduplication_token = '{_quote(token)}'"
        statement = f"INSERT INTO {table} {settings} FORMAT JSONEachRow\n"
        rows = complete_rows(bytes(body), self.row_suffixes[kind])
        return Prepared(kind, statement.encode() + rows, raw_bytes=len(rows))

    def send(self, prepared: Prepared) -> Outcome:
        try:
            self._session.query(prepared.wire.decode("utf-8"))
        except Exception as exc:
            return Outcome(
                ok=False,
                retryable=False,
                key="embedded-insert",
                message=f"the embedded ClickHouse rejected a batch: {exc}",
            )
        return Outcome.delivered()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
