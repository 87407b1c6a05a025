"""Deduplication on the embedded engine (chdb, a current ClickHouse) with the current schema
(``non_replicated_deduplication_window``): a batch sent twice with the same deduplication token,
which is what a restarted writer does with the batch its predecessor had in flight (it re-cuts
it the same way, hence the same token), must be stored once.

The writer-kill scenario (``test_process_faults.py``) can only hit the window between "the
engine stored the batch" and "the writer committed it" by chance; this drives the sink the writer
uses with the rows the client encodes, so the re-send happens every time.
"""

from __future__ import annotations

import time
from pathlib import Path

from automagik_telemetry.resource import Resource
from automagik_telemetry.ring.layout import KIND_TRACE, KINDS
from automagik_telemetry.rows.clickhouse import ClickHouseRows, clickhouse_row_suffixes
from automagik_telemetry.sinks.embedded import EmbeddedSink
from tests.faults.helpers import embedded_tally, numbers
from tests.faults.report import ScenarioRecord

TABLES = ("traces", "metrics", "logs")


def test_batch_resent_with_the_same_token_embedded_exactly_once(
    tmp_path: Path, scenario: ScenarioRecord
) -> None:
    """A batch re-sent with the same deduplication token (as a restarted writer does)"""
    scenario.backend = "embedded (chdb, current schema)"
    scenario.guarantee = "exactly once"
    path = tmp_path / "chdb"
    resource = Resource.detect("faults", "1.0.0", "namastex", "production")
    sink = EmbeddedSink(
        path=str(path),
        database="telemetry",
        tables=dict(zip(KINDS, TABLES, strict=True)),
        table_names=TABLES,
        row_suffixes=clickhouse_row_suffixes(resource),
    )
    encoder = ClickHouseRows()
    first, second = numbers(200), numbers(200, "n", 200)

    def body(names: list[str]) -> bytes:
        return b"".join(bytes(encoder.span(time.time_ns(), name, None, None)) for name in names)

    batch, other = body(first), body(second)
    token = "automagik-telemetry-1234-abcd-0-0-12345"  # the writer's token: segment-kind-start-end
    try:
        assert sink.discover().ok
        sent = [
            sink.send(sink.prepare(KIND_TRACE, batch, token)),  # the writer that was killed
            sink.send(sink.prepare(KIND_TRACE, batch, token)),  # its successor, same cut
            sink.send(sink.prepare(KIND_TRACE, other, token.replace("12345", "24690"))),
        ]
        statement = bytes(sink.prepare(KIND_TRACE, batch, token).wire[:200]).decode()
    finally:
        sink.close()
    names = first + second
    tally = embedded_tally(path, names)
    scenario.sent, scenario.stored, scenario.distinct = len(names), tally.stored, tally.distinct
    scenario.duplicates, scenario.missing = tally.duplicates, len(tally.missing)
    scenario.note("3 inserts: a batch, the same batch with the same token, another batch")

    assert all(outcome.ok for outcome in sent), sent
    assert tally.missing == [] and tally.unexpected == [], tally.summary()
    assert (tally.stored, tally.distinct, tally.duplicates) == (400, 400, 0), (
        f"{tally.summary()}; the insert was: {statement.splitlines()[0]!r}"
    )
