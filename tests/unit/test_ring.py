"""The shared-memory rings: byte-exact delivery across processes, wrap-arounds, full rings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from automagik_telemetry.ring.layout import (
    KIND_LOG,
    KIND_METRIC,
    KIND_TRACE,
    KINDS,
    MESSAGE_SLOTS,
    MESSAGE_TEXT_MAX,
)
from automagik_telemetry.ring.segment import create_segment
from automagik_telemetry.ring.spsc import RingReader, RingWriter
from automagik_telemetry.rows.framing import split_delimited, split_lines
from tests.support.ring_producer import expected_rows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def segment():  # type: ignore[no-untyped-def]
    seg = create_segment(64 * 1024)
    yield seg
    seg.close()
    seg.unlink()


def drain_across_processes(segment, seed: int, count: int, threads: int) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """Run a producer process with ``threads`` threads; read everything it writes, checking
    each row byte for byte against the rows it was meant to write. Returns rows per thread."""
    reader = RingReader(segment)
    max_size = reader.max_row
    expected = {t: expected_rows(seed, t, count, max_size) for t in range(threads)}
    seen = dict.fromkeys(range(threads), 0)
    producer = subprocess.Popen(
        [sys.executable, "-m", "tests.support.ring_producer", segment.name, str(seed), str(count),
         str(threads)],
        cwd=ROOT,
    )  # fmt: skip
    wraps = 0
    try:
        while True:
            start, head = reader.available(KIND_TRACE)
            if start == head:
                if producer.poll() is not None:
                    start, head = reader.available(KIND_TRACE)
                    if start == head:
                        break
                else:
                    time.sleep(0.0005)
                    continue
            data = reader.copy(KIND_TRACE, start, head)
            length, _ = split_lines(data, len(data))
            assert length == len(data), "a copy must end at a row boundary"
            for row in data.split(b"\n")[:-1]:
                thread = int(row.split(b":", 1)[0])
                assert row + b"\n" == next(expected[thread]), f"row {seen[thread]} of {thread}"
                seen[thread] += 1
            end = start + len(data)
            if (start ^ (head - 1)) >= reader.capacity:  # the window crossed a lap
                wraps += 1
                end = head
            reader.advance(KIND_TRACE, end)
            reader.commit(KIND_TRACE, end)
    finally:
        producer.wait(60)
        reader.release()
    assert producer.returncode == 0
    assert wraps > 10, "the test must wrap around the ring many times"
    for thread in range(threads):  # nothing left that the producer meant to write
        assert next(expected[thread], None) is None
    return seen


def test_two_million_rows_cross_processes_byte_for_byte(segment) -> None:  # type: ignore[no-untyped-def]
    seen = drain_across_processes(segment, seed=7, count=2_000_000, threads=1)
    assert seen == {0: 2_000_000}


def test_several_producer_threads_lose_and_duplicate_nothing(segment) -> None:  # type: ignore[no-untyped-def]
    seen = drain_across_processes(segment, seed=11, count=150_000, threads=4)
    assert seen == dict.fromkeys(range(4), 150_000)


def test_full_ring_refuses_exactly_what_does_not_fit(segment) -> None:  # type: ignore[no-untyped-def]
    writer = RingWriter(segment)
    row = b"x" * 99 + b"\n"  # 100 bytes
    accepted = sum(writer.try_put(KIND_METRIC, row) for _ in range(1000))
    assert accepted == writer.capacity // 100
    assert writer.free_bytes(KIND_METRIC) == writer.capacity % 100
    # the other rings are untouched
    assert all(writer.free_bytes(k) == writer.capacity for k in KINDS if k != KIND_METRIC)
    reader = RingReader(segment)
    start, head = reader.available(KIND_METRIC)
    assert head - start == accepted * 100
    reader.advance(KIND_METRIC, start + 1000)
    reader.commit(KIND_METRIC, start + 1000)  # room for ten more rows, and no more
    assert sum(writer.try_put(KIND_METRIC, row) for _ in range(20)) == 10
    writer.release()
    reader.release()


def test_a_row_never_wraps(segment) -> None:  # type: ignore[no-untyped-def]
    writer = RingWriter(segment)
    reader = RingReader(segment)
    capacity = writer.capacity
    first = b"a" * (capacity - 50) + b"\n"
    with pytest.raises(ValueError, match="exceeds the ring's limit"):
        writer.try_put(KIND_LOG, first)
    rows = [b"b" * 999 + b"\n"] * (capacity // 1000)
    for row in rows:
        assert writer.try_put(KIND_LOG, row)
    _, head = reader.available(KIND_LOG)
    reader.advance(KIND_LOG, head)
    reader.commit(KIND_LOG, head)
    tail_row = b"c" * 2999 + b"\n"  # does not fit in the end of the lap: starts the next one
    assert writer.try_put(KIND_LOG, tail_row)
    start2, head2 = reader.available(KIND_LOG)
    assert start2 == capacity and head2 == capacity + 3000
    assert reader.copy(KIND_LOG, start2, head2) == tail_row
    writer.release()
    reader.release()


def test_rows_land_back_to_back_as_written(segment) -> None:  # type: ignore[no-untyped-def]
    writer = RingWriter(segment)
    reader = RingReader(segment)
    with writer.lock:
        assert writer.put(KIND_TRACE, b'{"a":1}\n')
        assert writer.put(KIND_TRACE, bytearray(b'{"b":2}\n'))
    start, head = reader.available(KIND_TRACE)
    assert reader.copy(KIND_TRACE, start, head) == b'{"a":1}\n{"b":2}\n'
    writer.release()
    reader.release()


def test_split_lines_and_delimited() -> None:
    data = b"aa\nbbbb\ncc\n"
    assert split_lines(data, 100) == (len(data), 3)
    assert split_lines(data, 8) == (8, 2)
    assert split_lines(data, 2) == (3, 1)  # at least one row, whatever its size
    fields = b"".join(b"\x12" + bytes([n]) + b"x" * n for n in (3, 200 & 0x7F, 5))
    assert split_delimited(fields, len(fields)) == (len(fields), 3)
    assert split_delimited(fields, 6) == (5, 1)
    big = b"\x12\xac\x02" + b"y" * 300  # a two-byte varint length
    assert split_delimited(big + fields, 10_000) == (len(big) + len(fields), 4)
    # a window that ends inside a row (its varint length or its bytes) stops before that row
    assert split_lines(data[:9], 100) == (8, 2)
    assert split_delimited(fields + big[:2], 10_000) == (len(fields), 3)
    assert split_delimited(fields + big[:10], 10_000) == (len(fields), 3)


def test_the_writers_messages_close_together_all_reach_the_application(segment) -> None:  # type: ignore[no-untyped-def]
    reader, writer = RingReader(segment), RingWriter(segment)
    assert writer.messages.read(0) == (0, [])
    reader.messages.write(30, "first")
    reader.messages.write(40, "second " + "é" * 600)  # longer than a slot: cut, still UTF-8
    seen, messages = writer.messages.read(0)
    assert seen == 2
    assert messages[0] == (30, "first")
    assert messages[1][0] == 40 and messages[1][1].startswith("second é")
    assert len(messages[1][1].encode("utf-8")) <= MESSAGE_TEXT_MAX
    assert "\ufffd" not in messages[1][1]
    assert writer.messages.read(seen) == (2, [])
    for n in range(3, 3 + MESSAGE_SLOTS + 2):  # more than the slots hold before a read
        reader.messages.write(20, f"m{n}")
    seen, messages = writer.messages.read(seen)
    assert seen == 2 + MESSAGE_SLOTS + 2
    # the latest MESSAGE_SLOTS, in order; older ones were overwritten
    assert [t for _, t in messages] == [f"m{n}" for n in range(seen - MESSAGE_SLOTS + 1, seen + 1)]
    reader.release()
    writer.release()
