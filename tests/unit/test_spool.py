"""The on-disk spool, through what it offers: put, take_oldest, release, remove, len, used_bytes
and stats.

Other writers are real processes (``python -c``) holding a spool of their own on the same
directory. A process dies in the middle of a write for real: with ``RLIMIT_FSIZE`` and
``SIGXFSZ`` at its default action, the kernel ends it inside ``write()``; with ``SIGXFSZ``
ignored (CPython's default), the disk refuses the write and the spool must count the drop.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from automagik_telemetry.spool import Spool, Stored

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 1 << 30


def spool_at(directory: Path, max_bytes: int = LIMIT, policy: str = "drop_newest") -> Spool:
    return Spool(directory, max_bytes, policy)


def body_of(index: int, size: int = 300) -> bytes:
    return (f"batch {index}:".encode() * size)[:size]


def drain(spool: Spool) -> list[str]:
    """Tokens of every batch, oldest first, each removed once taken."""
    tokens = []
    while (batch := spool.take_oldest()) is not None:
        tokens.append(batch.header.token)
        spool.remove(batch.path)
    return tokens


def file_size(kind: int, rows: int, token: str, encoding: str, body: bytes, tmp: Path) -> int:
    """What one batch takes on disk, measured with a spool of its own."""
    scratch = spool_at(tmp / f"scratch-{token}")
    assert scratch.put(kind, rows, token, encoding, body)
    return scratch.used_bytes


def batch_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file())


# --- put and take ---------------------------------------------------------------------------


def test_a_batch_comes_back_as_it_was_put(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "spool")
    body = bytes(range(256)) * 40 + b"\n\x00}\n"
    assert spool.put(1, 37, "seg-1-0-4096", "lz4", body)
    assert (len(spool), spool.stats.batches_written, spool.stats.rows_written) == (1, 1, 37)
    (on_disk,) = batch_files(tmp_path / "spool")
    assert on_disk.name.endswith(".batch")
    size = on_disk.stat().st_size
    assert spool.used_bytes == size > len(body)

    batch = spool.take_oldest()
    assert batch is not None
    header = batch.header
    assert (header.kind, header.rows, header.token, header.encoding) == (
        1,
        37,
        "seg-1-0-4096",
        "lz4",
    )
    assert (header.length, header.crc32) == (len(body), zlib.crc32(body))
    assert batch.body == body
    # claimed: no longer offered, still on disk and counted
    assert len(spool) == 0 and spool.take_oldest() is None
    assert spool.used_bytes == size == len(batch.path.read_bytes())
    spool.remove(batch.path)
    spool.remove(batch.path)  # once acknowledged, removing again is harmless
    assert (len(spool), spool.used_bytes, spool.take_oldest()) == (0, 0, None)
    assert batch_files(tmp_path / "spool") == []


def test_an_empty_body_is_a_batch_too(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    assert spool.put(0, 0, "", "", b"")
    batch = spool.take_oldest()
    assert batch is not None and batch.body == b"" and batch.header.length == 0


def test_batches_come_back_oldest_first_across_kinds_spools_and_restarts(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    first, second = spool_at(directory), spool_at(directory)
    for i in range(12):
        writer = first if i % 3 else second
        assert writer.put(i % 3, i + 1, f"t{i:02d}", "", body_of(i))
    restarted = spool_at(directory)
    assert len(restarted) == 12
    assert drain(restarted) == [f"t{i:02d}" for i in range(12)]


def test_release_gives_a_batch_back_as_the_oldest(tmp_path: Path) -> None:
    spool = spool_at(tmp_path)
    for i in range(3):
        assert spool.put(0, 1, f"t{i}", "", body_of(i))
    a = spool.take_oldest()
    b = spool.take_oldest()
    assert a is not None and b is not None
    assert (a.header.token, b.header.token, len(spool)) == ("t0", "t1", 1)
    spool.release(a)
    assert len(spool) == 2
    again = spool.take_oldest()
    assert again is not None
    assert (again.header, again.body) == (a.header, a.body)
    spool.release(b)
    spool.release(again)
    assert drain(spool) == ["t0", "t1", "t2"]


# --- other writers: claims ------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import json, os, sys
    from automagik_telemetry.spool import Spool

    spool = Spool(sys.argv[1], 1 << 30, "drop_newest")
    taken = []
    print(json.dumps(os.getpid()), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "take":
            batch = spool.take_oldest()
            if batch is not None:
                taken.append(batch)
            print(json.dumps(None if batch is None else batch.header.token), flush=True)
        elif command == "take_all":
            tokens = []
            while (batch := spool.take_oldest()) is not None:
                taken.append(batch)
                tokens.append(batch.header.token)
            print(json.dumps(tokens), flush=True)
        elif command == "release_all":
            for batch in taken:
                spool.release(batch)
            taken.clear()
            print(json.dumps("released"), flush=True)
        elif command == "die":
            os._exit(0)  # as a writer killed mid-replay: its claims stay behind
    """
)


class OtherWriter:
    """A process with a spool of its own on ``directory``, driven line by line."""

    def __init__(self, directory: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(directory)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.pid = self.ask_nothing()

    def ask_nothing(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the other writer ended"
        return json.loads(line)

    def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.ask_nothing()

    def die(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("die\n")
        self.process.stdin.flush()
        assert self.process.wait(30) == 0
        self.process.stdin.close()
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def other_writers() -> Iterator[list[OtherWriter]]:
    made: list[OtherWriter] = []
    yield made
    for writer in made:
        if writer.process.poll() is None:
            writer.process.kill()  # by its own handle: only what this test started
            writer.process.wait(10)
        for stream in (writer.process.stdin, writer.process.stdout):
            if stream is not None and not stream.closed:
                stream.close()


def test_a_batch_claimed_by_a_live_writer_is_not_taken_nor_released(
    tmp_path: Path, other_writers: list[OtherWriter]
) -> None:
    directory = tmp_path / "spool"
    mine = spool_at(directory)
    assert mine.put(0, 3, "t0", "", body_of(0)) and mine.put(0, 4, "t1", "", body_of(1))
    everything = mine.used_bytes
    other = OtherWriter(directory)
    other_writers.append(other)
    assert other.ask("take") == "t0"
    opened_now = spool_at(directory)  # opening does not release a live writer's claim
    assert len(opened_now) == 1
    batch = opened_now.take_oldest()
    assert batch is not None and batch.header.token == "t1"
    assert opened_now.take_oldest() is None
    assert opened_now.used_bytes == everything  # what is being replayed is still here
    assert other.ask("release_all") == "released"
    assert drain(opened_now) == ["t0"]


def test_a_claim_of_a_writer_that_died_is_released_when_a_spool_opens(
    tmp_path: Path, other_writers: list[OtherWriter]
) -> None:
    directory = tmp_path / "spool"
    mine = spool_at(directory)
    for i in range(3):
        assert mine.put(1, 10 + i, f"t{i}", "gzip", body_of(i))
    other = OtherWriter(directory)
    other_writers.append(other)
    assert other.ask("take_all") == ["t0", "t1", "t2"]
    other.die()
    assert (len(mine), mine.take_oldest()) == (0, None)  # opened before: its view is as it was
    reopened = spool_at(directory)
    assert len(reopened) == 3
    batch = reopened.take_oldest()
    assert batch is not None
    assert (batch.header.token, batch.header.rows, batch.body) == ("t0", 10, body_of(0))
    reopened.remove(batch.path)
    assert drain(reopened) == ["t1", "t2"]


def test_two_writers_racing_over_one_directory_never_take_the_same_batch(
    tmp_path: Path, other_writers: list[OtherWriter]
) -> None:
    directory = tmp_path / "spool"
    mine = spool_at(directory)
    tokens = [f"t{i:03d}" for i in range(300)]
    for i, token in enumerate(tokens):
        assert mine.put(i % 3, 1, token, "", body_of(i, 64))
    other = OtherWriter(directory)
    other_writers.append(other)
    assert other.process.stdin is not None
    other.process.stdin.write("take_all\n")
    other.process.stdin.flush()  # it takes while this process takes
    taken_here = []
    while (batch := mine.take_oldest()) is not None:
        taken_here.append(batch.header.token)
    taken_there = other.ask_nothing()
    assert set(taken_here).isdisjoint(taken_there)
    assert sorted(taken_here + taken_there) == tokens
    assert taken_here == sorted(taken_here) and taken_there == sorted(taken_there)


def test_two_spools_of_one_process_never_take_the_same_batch(tmp_path: Path) -> None:
    first, second = spool_at(tmp_path), spool_at(tmp_path)
    assert first.put(0, 1, "only", "", b"x")
    taken = first.take_oldest()
    assert taken is not None
    assert second.take_oldest() is None


# --- atomic writes --------------------------------------------------------------------------

PAUSED_PUT = textwrap.dedent(
    """
    import os, stat, sys
    from automagik_telemetry.spool import Spool

    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):  # the batch's bytes are written, not yet renamed
            print("written", flush=True)
            sys.stdin.readline()
        real_fsync(fd)

    os.fsync = fsync
    spool = Spool(sys.argv[1], 1 << 30, "drop_newest")
    print(spool.put(2, 5, "paused", "", b"x" * 200_000), flush=True)
    """
)


def test_a_batch_being_written_is_invisible_until_whole(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    writer = subprocess.Popen(
        [sys.executable, "-c", PAUSED_PUT, str(directory)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline() == "written\n"
        (temporary,) = batch_files(directory)
        assert temporary.stat().st_size > 200_000  # all its bytes, under a temporary name
        reader = spool_at(directory)
        assert (len(reader), reader.take_oldest(), reader.used_bytes) == (0, None, 0)
        assert temporary.exists()  # the writer is alive: its temporary file is left alone
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline() == "True\n"
        assert writer.wait(30) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
        writer.stdin.close()
        writer.stdout.close()
    assert not temporary.exists()
    batch = reader.take_oldest()
    assert batch is not None
    assert (batch.header.token, batch.header.rows, batch.body) == ("paused", 5, b"x" * 200_000)


def limited_put(directory: Path, sigxfsz: str) -> subprocess.CompletedProcess[str]:
    """Put a 1 MB batch, then a small one, in a process whose files may not exceed 64 KiB."""
    script = textwrap.dedent(
        f"""
        import json, os, resource, signal, sys
        from automagik_telemetry.spool import Spool

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGXFSZ, signal.{sigxfsz})
        spool = Spool(sys.argv[1], 1 << 30, "drop_newest")
        len(spool)  # the directory is made before the limit applies
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, resource.RLIM_INFINITY))
        big = spool.put(0, 7, "big", "", b"y" * 1_000_000)
        small = spool.put(0, 2, "small", "", b"z" * 1000)
        stats = spool.stats
        files = sorted(os.listdir(sys.argv[1]))
        print(json.dumps([big, small, stats.batches_dropped, stats.rows_dropped,
                          stats.batches_written, stats.rows_written, files,
                          str(spool.last_error)]))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, str(directory)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_a_writer_killed_mid_write_leaves_nothing_a_spool_would_read(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    done = limited_put(directory, "SIG_DFL")
    assert done.returncode == -signal.SIGXFSZ, done.stderr
    (partial,) = batch_files(directory)
    assert not partial.name.endswith(".batch")
    assert 0 < partial.stat().st_size <= 65536
    spool = spool_at(directory)
    assert (len(spool), spool.take_oldest(), spool.used_bytes) == (0, None, 0)
    assert batch_files(directory) == []  # its writer is gone: the temporary file is cleaned up
    assert spool.stats.corrupt_files == 0
    assert spool.put(0, 1, "after", "", b"a") and drain(spool) == ["after"]


def test_a_write_the_disk_refuses_is_not_a_drop_and_leaves_nothing(tmp_path: Path) -> None:
    """The disk refusing a write is not the spool's policy dropping a batch: the caller keeps
    the batch (the writer leaves its rows in the ring), and the error is kept for its message."""
    directory = tmp_path / "spool"
    done = limited_put(directory, "SIG_IGN")
    assert done.returncode == 0, done.stderr
    big, small, batches_dropped, rows_dropped, batches_written, rows_written, files, error = (
        json.loads(done.stdout)
    )
    assert (big, small) == (False, True)
    assert (batches_dropped, rows_dropped, batches_written, rows_written) == (0, 0, 1, 2)
    assert len(files) == 1 and files[0].endswith(".batch")  # the small one, no temporary file
    assert "File too large" in error
    assert drain(spool_at(directory)) == ["small"]


# --- corrupt files --------------------------------------------------------------------------


def corrupt(path: Path, how: str) -> bytes:
    data = path.read_bytes()
    head, _, body = data.partition(b"\n")
    if how == "bad-header":
        data = b'{"kind": 0, "rows": 1\n' + body
    elif how == "missing-fields":
        data = b'{"kind": 0}\n' + body
    elif how == "not-json":
        data = b"\xff\xfe garbage\n" + body
    elif how == "no-newline":
        data = b"just some bytes"
    elif how == "empty":
        data = b""
    elif how == "bad-crc":
        data = head + b"\n" + bytes([body[0] ^ 0x01]) + body[1:]
    elif how == "truncated":
        data = data[:-10]
    elif how == "longer":
        data = data + b"trailing"
    path.write_bytes(data)
    return data


CORRUPTIONS = [
    "bad-header",
    "missing-fields",
    "not-json",
    "no-newline",
    "empty",
    "bad-crc",
    "truncated",
    "longer",
]


def test_corrupt_files_are_moved_aside_counted_and_never_raise(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spool"
    spool = spool_at(directory)
    count = len(CORRUPTIONS) + 2
    for i in range(count):
        assert spool.put(0, 1, f"t{i}", "", body_of(i))
    files = batch_files(directory)
    broken = {files[i + 1].name: corrupt(files[i + 1], how) for i, how in enumerate(CORRUPTIONS)}

    reader = spool_at(directory)
    assert len(reader) == count  # unread yet: still batch files
    with caplog.at_level(logging.WARNING, logger="automagik_telemetry"):
        assert drain(reader) == ["t0", f"t{count - 1}"]
    assert reader.stats.corrupt_files == len(CORRUPTIONS)
    assert (reader.stats.batches_dropped, reader.stats.rows_dropped) == (0, 0)
    moved = {p.name: p.read_bytes() for p in (directory / "corrupt").iterdir()}
    assert moved == broken  # kept as they were, under their own names
    assert (len(reader), reader.used_bytes) == (0, 0)  # corrupt/ is not the spool's
    lines = [r.getMessage() for r in caplog.records if r.name == "automagik_telemetry.spool"]
    assert len(lines) == len(CORRUPTIONS)
    for name in broken:
        assert sum(name in line for line in lines) == 1


# --- bounds ---------------------------------------------------------------------------------


def test_a_full_spool_keeps_the_oldest_and_counts_the_new_batch_dropped(tmp_path: Path) -> None:
    size = file_size(0, 10, "t0", "", body_of(0), tmp_path)
    spool = spool_at(tmp_path / "spool", max_bytes=3 * size, policy="drop_newest")
    for i in range(3):  # the third fills it to the byte
        assert spool.put(0, 10 + i, f"t{i}", "", body_of(i))
    assert spool.used_bytes == 3 * size
    assert not spool.put(0, 40, "t3", "", body_of(3))
    assert not spool.put(0, 5, "tiny", "", b"")
    stats = spool.stats
    assert (stats.batches_written, stats.rows_written) == (3, 33)
    assert (stats.batches_dropped, stats.rows_dropped) == (2, 45)
    assert drain(spool) == ["t0", "t1", "t2"]


def test_drop_oldest_makes_room_and_counts_every_row_it_dropped(tmp_path: Path) -> None:
    size = file_size(0, 10, "t0", "", body_of(0), tmp_path)
    spool = spool_at(tmp_path / "spool", max_bytes=3 * size, policy="drop_oldest")
    for i in range(5):
        assert spool.put(0, 10 + i, f"t{i}", "", body_of(i))
    assert spool.used_bytes <= 3 * size
    stats = spool.stats
    assert (stats.batches_dropped, stats.rows_dropped) == (2, 10 + 11)
    assert (stats.batches_written, stats.rows_written) == (5, 10 + 11 + 12 + 13 + 14)
    # one batch twice as large: the two oldest go
    assert spool.put(0, 100, "big", "", body_of(9, 2 * 300 + 20))
    assert (stats.batches_dropped, stats.rows_dropped) == (4, 10 + 11 + 12 + 13)
    assert drain(spool) == ["t4", "big"]


def test_a_batch_larger_than_the_spool_is_dropped_without_dropping_others(
    tmp_path: Path,
) -> None:
    for policy in ("drop_oldest", "drop_newest"):
        size = file_size(0, 1, "t0", "", body_of(0), tmp_path / policy)
        spool = spool_at(tmp_path / policy / "spool", max_bytes=2 * size, policy=policy)
        assert spool.put(0, 1, "t0", "", body_of(0))
        assert not spool.put(0, 99, "huge", "", body_of(1, 3 * size))
        assert (spool.stats.batches_dropped, spool.stats.rows_dropped) == (1, 99)
        assert drain(spool) == ["t0"]


def test_drop_oldest_never_drops_a_batch_being_replayed(tmp_path: Path) -> None:
    size = file_size(0, 10, "t0", "", body_of(0), tmp_path)
    spool = spool_at(tmp_path / "spool", max_bytes=2 * size, policy="drop_oldest")
    assert spool.put(0, 10, "t0", "", body_of(0)) and spool.put(0, 11, "t1", "", body_of(1))
    replaying = spool.take_oldest()
    assert replaying is not None and replaying.header.token == "t0"
    assert spool.put(0, 12, "t2", "", body_of(2))  # room made from t1, not from t0
    assert (spool.stats.batches_dropped, spool.stats.rows_dropped) == (1, 11)
    assert replaying.path.exists()
    spool.release(replaying)
    assert drain(spool) == ["t0", "t2"]


def test_drop_oldest_drops_nothing_old_for_a_batch_that_cannot_fit_anyway(
    tmp_path: Path,
) -> None:
    size = file_size(0, 10, "t0", "", body_of(0), tmp_path)
    spool = spool_at(tmp_path / "spool", max_bytes=2 * size, policy="drop_oldest")
    assert spool.put(0, 10, "t0", "", body_of(0)) and spool.put(0, 11, "t1", "", body_of(1))
    replaying = spool.take_oldest()
    assert replaying is not None
    # t0 holds half the room while it is replayed; this batch needs more than the other half
    assert not spool.put(0, 13, "t3", "", body_of(3, 2 * 300))
    assert (spool.stats.batches_dropped, spool.stats.rows_dropped) == (1, 13)
    spool.release(replaying)
    assert drain(spool) == ["t0", "t1"]


def test_a_spool_of_no_bytes_drops_and_counts_everything(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "spool", max_bytes=0, policy="drop_oldest")
    for rows in (1, 2, 3):
        assert not spool.put(0, rows, "t", "", b"x")
    assert (spool.stats.batches_dropped, spool.stats.rows_dropped) == (3, 6)
    assert (len(spool), spool.used_bytes, spool.stats.batches_written) == (0, 0, 0)


# --- claimed copies of batches in flight ------------------------------------------------------


def test_a_claimed_copy_is_replayed_by_nobody_until_released(tmp_path: Path) -> None:
    spool = spool_at(tmp_path / "spool")
    outcome, copy = spool.put_claimed(0, 5, "in-flight", "", body_of(0))
    assert outcome is Stored.STORED and copy is not None
    assert spool_at(tmp_path / "spool").take_oldest() is None  # claimed: nobody else takes it
    assert spool.level().batches == 1  # but it is counted as held
    spool.release(copy)
    assert drain(spool_at(tmp_path / "spool")) == ["in-flight"]


def test_no_room_for_a_claimed_copy_is_not_a_drop(tmp_path: Path) -> None:
    size = file_size(0, 10, "t0", "", body_of(0), tmp_path)
    spool = spool_at(tmp_path / "spool", max_bytes=size)
    assert spool.put(0, 10, "t0", "", body_of(0))
    outcome, copy = spool.put_claimed(0, 7, "copy", "", body_of(1))
    assert (outcome, copy) == (Stored.FULL, None)
    assert (spool.stats.batches_dropped, spool.stats.rows_dropped) == (0, 0)
    assert not spool.put(0, 3, "t2", "", body_of(2))  # a batch of its own is dropped, counted
    assert (spool.stats.batches_dropped, spool.stats.rows_dropped) == (1, 3)
