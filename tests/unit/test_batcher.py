"""The batcher's decisions, on a real ring in shared memory, without a writer process or a
network: which rows make the next batch given the positions, the clock, flush and exit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automagik_telemetry.control import CutTable
from automagik_telemetry.ring.layout import KIND_LOG, KIND_TRACE
from automagik_telemetry.ring.segment import SharedSegment, create_segment
from automagik_telemetry.ring.spsc import RingReader, RingWriter
from automagik_telemetry.rows.framing import split_lines
from automagik_telemetry.writer.batcher import Batcher, Take

CAPACITY = 64 * 1024
CAP = 4096


@pytest.fixture
def segment() -> Iterator[SharedSegment]:
    seg = create_segment(CAPACITY)
    yield seg
    seg.close()
    seg.unlink()


def row(n: int, size: int = 40) -> bytes:
    text = f'{{"n":{n}}}'.encode()
    return text + b" " * (size - len(text) - 1) + b"\n"


def fill(writer: RingWriter, count: int, start: int = 0, kind: int = KIND_TRACE) -> bytes:
    rows = [row(n) for n in range(start, start + count)]
    for r in rows:
        assert writer.put(kind, r)
    return b"".join(rows)


def batcher(segment: SharedSegment, batch_size: int = 10, flush_interval: float = 5.0) -> Batcher:
    reader = RingReader(segment)
    return Batcher(reader, CutTable(reader.words), split_lines, batch_size=batch_size,
                   flush_interval=flush_interval)  # fmt: skip


def test_nothing_unread_is_no_batch(segment: SharedSegment) -> None:
    b = batcher(segment)
    assert b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.ALL) is None
    assert b.waiting_since[KIND_TRACE] is None


def test_ready_waits_for_batch_size_rows_then_takes_them_all(segment: SharedSegment) -> None:
    writer = RingWriter(segment)
    b = batcher(segment, batch_size=10)
    fill(writer, 9)
    assert b.take(KIND_TRACE, 100.0, cap=CAP) is None
    assert b.waiting_since[KIND_TRACE] == 100.0  # the clock of the oldest unread row
    body = fill(writer, 3, start=9)
    batch = b.take(KIND_TRACE, 100.5, cap=CAP)
    assert batch is not None
    assert (batch.rows, batch.start, batch.end) == (12, 0, 12 * 40)
    assert batch.body.endswith(body)
    assert b.waiting_since[KIND_TRACE] is None
    assert b.take(KIND_TRACE, 100.5, cap=CAP) is None  # read position moved past them


@pytest.mark.parametrize("reason", ["interval", "flush", "exit"])
def test_due_rows_go_whatever_their_number(segment: SharedSegment, reason: str) -> None:
    writer = RingWriter(segment)
    b = batcher(segment, batch_size=1000, flush_interval=5.0)
    fill(writer, 2)
    assert b.take(KIND_TRACE, 10.0, cap=CAP, mode=Take.FULL) is None
    now = 15.0 if reason == "interval" else 10.1
    batch = b.take(
        KIND_TRACE, now, cap=CAP, mode=Take.FULL,
        exiting=reason == "exit", flush_target=80 if reason == "flush" else 0,
    )  # fmt: skip
    assert batch is not None and batch.rows == 2


def test_full_waits_for_a_full_batch_and_cuts_it_at_a_row_boundary(
    segment: SharedSegment,
) -> None:
    writer = RingWriter(segment)
    b = batcher(segment, batch_size=10)
    fill(writer, 100)  # 4,000 bytes: under the cap of 4,096
    assert b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.FULL) is None
    fill(writer, 10, start=100)  # 4,400 bytes: more than one batch
    batch = b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.FULL)
    assert batch is not None
    assert batch.rows == CAP // 40 and len(batch.body) == (CAP // 40) * 40 <= CAP
    assert batch.body == b"".join(row(n) for n in range(CAP // 40))
    rest = b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.ALL)
    assert rest is not None and rest.start == batch.end and rest.rows == 110 - batch.rows


def test_all_takes_a_single_row_at_once(segment: SharedSegment) -> None:
    writer = RingWriter(segment)
    b = batcher(segment, batch_size=1000)
    fill(writer, 1)
    batch = b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.ALL)
    assert batch is not None and batch.body == row(0)


def test_ready_takes_half_a_full_batch_below_batch_size(segment: SharedSegment) -> None:
    writer = RingWriter(segment)
    b = batcher(segment, batch_size=1000)
    fill(writer, (CAP // 2) // 40)  # just under half of the cap
    assert b.take(KIND_TRACE, 0.0, cap=CAP) is None
    fill(writer, 2, start=1000)
    assert b.take(KIND_TRACE, 0.0, cap=CAP) is not None


def test_a_range_a_previous_writer_cut_is_cut_the_same_way(segment: SharedSegment) -> None:
    writer = RingWriter(segment)
    reader = RingReader(segment)
    cuts = CutTable(reader.words)
    cuts.remember(KIND_TRACE, 0, 5 * 40)  # the dead writer sent rows 0-4 as one batch
    fill(writer, 50)
    b = Batcher(reader, cuts, split_lines, batch_size=1, flush_interval=5.0)
    first = b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.ALL)
    assert first is not None and (first.start, first.end, first.rows) == (0, 200, 5)
    second = b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.ALL)
    assert second is not None and (second.start, second.rows) == (200, 45)


def test_rings_are_independent(segment: SharedSegment) -> None:
    writer = RingWriter(segment)
    b = batcher(segment, batch_size=1)
    fill(writer, 3, kind=KIND_LOG)
    assert b.take(KIND_TRACE, 0.0, cap=CAP, mode=Take.ALL) is None
    batch = b.take(KIND_LOG, 0.0, cap=CAP, mode=Take.ALL)
    assert batch is not None and batch.kind == KIND_LOG and batch.rows == 3


def test_a_batch_across_the_end_of_a_lap_holds_its_rows_in_order(segment: SharedSegment) -> None:
    writer = RingWriter(segment)
    reader = RingReader(segment)
    b = Batcher(reader, CutTable(reader.words), split_lines, batch_size=1, flush_interval=5.0)
    per_lap = CAPACITY // 48
    big = [b"x" * 47 + b"\n" for _ in range(per_lap - 2)]
    for r in big:
        assert writer.put(KIND_TRACE, r)
    first = b.take(KIND_TRACE, 0.0, cap=CAPACITY, mode=Take.ALL)
    assert first is not None and first.rows == len(big)
    reader.commit(KIND_TRACE, first.end)
    tail_rows = [row(n, 100) for n in range(10)]  # the lap's end is too short for some
    for r in tail_rows:
        assert writer.put(KIND_TRACE, r)
    second = b.take(KIND_TRACE, 0.0, cap=CAPACITY, mode=Take.ALL)
    assert second is not None
    assert second.body == b"".join(tail_rows) and second.rows == 10
    assert second.end == reader.head(KIND_TRACE)
