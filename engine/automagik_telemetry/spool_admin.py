"""The spool by hand: what a destination's spool holds, replaying it now, discarding it.

A destination's spool directory (``spool_dir``/``<backend>-<hash>``, see ``client.spool_directory``)
has three parts:

* the batches *waiting* there (``*.batch``; ``*.claimed-<pid>`` while a writer sends one): the
  next writer of that destination replays them on its own;
* ``rejected/``: batches the destination refused for what they hold, *set aside* (never
  replayed on their own: the same bytes would be refused again until the cause is fixed);
* ``corrupt/``: files that did not read back (a bad header, a checksum mismatch).

``inventory`` counts each part (batches, rows, bytes, the oldest batch's age). ``replay`` sends
batches now through the sink the writer uses (the same requests: each batch keeps its
deduplication token, so a batch that had landed after all is stored once where the server
deduplicates), deleting each file once the destination acknowledged it; a batch refused for its
content again goes (back) to ``rejected/``; any other failure leaves it where it was and stops
the replay, with the destination's message. ``discard`` deletes files of one part.

Spool files hold the rows without the columns every row of a client shares (service, host,
session...); each file's header keeps them (its *origin*), and a replay puts them back, whoever
replays it. Files written before origins were kept (earlier versions) get
the replaying configuration's: ``Part.without_origin`` counts them, and the CLI then asks for
the ``--project-name`` and ``--project-version`` of the application that spooled them.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lz4.frame
import msgspec

from .config import TelemetryConfig
from .spool import SUFFIX, Spool, SpooledBatch, SpoolHeader

SET_ASIDE = "rejected"
CORRUPT = "corrupt"
SPOOL_ENCODING = "lz4-rows"  # as writer/spooling.py writes them


@dataclass(frozen=True)
class Part:
    """One part of a spool directory."""

    batches: int = 0
    rows: int = 0
    bytes: int = 0
    oldest_age_s: float | None = None
    claimed: int = 0  # being sent by a live writer now (waiting part only)
    without_origin: int = 0  # written before origins were kept: replayed with the replayer's


@dataclass(frozen=True)
class Inventory:
    directory: str
    waiting: Part
    rejected: Part
    corrupt: Part

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stamp(name: str) -> int:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def _part(directory: Path, *, headers: bool = True) -> Part:
    try:
        entries = [e for e in os.scandir(directory) if e.is_file()]
    except OSError:
        return Part()
    batches = rows = size = claimed = without_origin = 0
    oldest = 0
    for entry in entries:
        name = entry.name
        is_claimed = ".claimed-" in name
        if headers and not (name.endswith(SUFFIX) or is_claimed):
            continue  # temporary files of a write in progress
        try:
            size += entry.stat().st_size
            if headers:
                with open(entry.path, "rb") as file:
                    header = msgspec.json.decode(file.readline(), type=SpoolHeader)
                rows += header.rows
                without_origin += not header.origin
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            pass  # read again, properly, when replayed (a bad one goes to corrupt/)
        batches += 1
        claimed += is_claimed
        stamp = _stamp(name)
        if stamp and (not oldest or stamp < oldest):
            oldest = stamp
    age = round(max(0.0, (time.time_ns() - oldest) / 1e9), 1) if oldest else None
    return Part(batches, rows, size, age, claimed, without_origin)


def inventory(directory: str | os.PathLike[str]) -> Inventory:
    """What the spool directory of one destination holds (nothing for a missing directory)."""
    root = Path(directory)
    return Inventory(
        str(root), _part(root), _part(root / SET_ASIDE), _part(root / CORRUPT, headers=False)
    )


def destination_directory(config: TelemetryConfig) -> str:
    """The spool directory of the destination ``config`` sends to ('' with no spool)."""
    from .client import spool_directory

    return spool_directory(config)


def all_directories(config: TelemetryConfig) -> list[str]:
    """Every destination's directory under the spool root of ``config``."""
    root = Path(config.resolved_spool_dir())
    with contextlib.suppress(OSError):
        return sorted(str(p) for p in root.iterdir() if p.is_dir())
    return []


# --- replay ---------------------------------------------------------------------------------


@dataclass
class Replayed:
    batches: int = 0
    rows: int = 0
    set_aside_batches: int = 0  # refused for their content: in rejected/
    left_batches: int = 0  # not sent (the destination failed): still where they were
    error: str | None = None
    messages: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def given_options(config: TelemetryConfig) -> dict[str, Any]:
    """The options of ``config`` that were not left at their default (from code or the
    environment), to build a config like it with some changed."""
    return {n: getattr(config, n) for n, src in config.sources.items() if src != "default"}


def _sink(config: TelemetryConfig) -> Any:
    """The writer's sink for ``config`` (its requests, codecs and settings), built as the
    writer builds it."""
    from .client import AutomagikTelemetry
    from .sinks import sink_spec

    options = given_options(config)
    options["enabled"] = False  # a client that only builds the writer's settings
    shell = AutomagikTelemetry(config=TelemetryConfig(**options))
    settings = shell._writer_settings("")
    return sink_spec(config.backend).build(settings)


def replay(config: TelemetryConfig, *, rejected: bool = False, directory: str = "") -> Replayed:
    """Send the waiting batches (``rejected``: the set-aside ones) of ``config``'s destination
    now, oldest first; each file is deleted once acknowledged."""
    root = Path(directory or destination_directory(config))
    result = Replayed()
    if not root.is_dir():
        return result
    source = Spool(root / SET_ASIDE if rejected else root, 1 << 62, "drop_newest")
    aside = Spool(root / SET_ASIDE, 1 << 62, "drop_newest")
    sink = _sink(config)
    refused: list[SpooledBatch] = []
    try:
        ready = sink.discover()
        if not ready.ok:
            result.error = ready.message
            result.left_batches = _part(source.directory).batches
            return result
        while True:
            batch = source.take_oldest()
            if batch is None:
                break
            outcome = _send(sink, batch)
            if outcome.ok:
                source.remove(batch.path)
                result.batches += 1
                result.rows += batch.header.rows
                if outcome.message:
                    result.messages.append(outcome.message)
                continue
            if outcome.refused_content and not rejected:
                _move(batch, aside)
                result.set_aside_batches += 1
                result.messages.append(outcome.message)
                continue
            if outcome.refused_content:  # a set-aside batch refused again: it stays there
                refused.append(batch)  # (claimed until the end: not taken twice)
                result.set_aside_batches += 1
                result.messages.append(outcome.message)
                continue
            source.release(batch)
            result.error = outcome.message
            result.left_batches = _part(source.directory).batches
            break
    finally:
        for batch in refused:
            with contextlib.suppress(OSError):
                source.release(batch)
        with contextlib.suppress(Exception):
            sink.close()
    return result


def _body(batch: SpooledBatch) -> bytes:
    if batch.header.encoding == SPOOL_ENCODING:
        return bytes(lz4.frame.decompress(batch.body))
    return batch.body


def _send(sink: Any, batch: SpooledBatch) -> Any:
    from .transport import BatchTooLarge, Outcome

    try:
        header = batch.header
        prepared = sink.prepare(header.kind, _body(batch), header.token, header.origin)
    except (BatchTooLarge, ValueError) as exc:
        return Outcome(ok=False, refused_content=True, message=f"cannot send the batch: {exc}")
    return sink.send(prepared)


def _move(batch: SpooledBatch, to: Spool) -> None:
    to.directory.mkdir(parents=True, exist_ok=True)
    name = batch.path.name.split(".claimed-")[0]
    os.replace(batch.path, to.directory / name)


# --- discard --------------------------------------------------------------------------------


def discard(directory: str | os.PathLike[str], part: str) -> Part:
    """Delete the files of one part (``waiting``, ``rejected`` or ``corrupt``) of a spool
    directory; returns what was deleted. Batches a live writer has claimed are left alone."""
    root = Path(directory)
    where = {"waiting": root, "rejected": root / SET_ASIDE, "corrupt": root / CORRUPT}[part]
    before = _part(where, headers=part != "corrupt")
    removed = rows = size = 0
    oldest: float | None = None
    try:
        entries = list(os.scandir(where))
    except OSError:
        return Part()
    for entry in entries:
        if not entry.is_file() or ".claimed-" in entry.name:
            continue
        if part != "corrupt" and not entry.name.endswith(SUFFIX):
            continue
        try:
            size_here = entry.stat().st_size
            if part != "corrupt":
                with open(entry.path, "rb") as file:
                    rows += msgspec.json.decode(file.readline(), type=SpoolHeader).rows
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            size_here = 0
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed += 1
            size += size_here
    if removed:
        oldest = before.oldest_age_s
    return Part(removed, rows, size, oldest)
