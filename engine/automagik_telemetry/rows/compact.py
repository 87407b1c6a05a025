"""OTLP rows as the application thread writes them: one MessagePack array per track call.

The OTLP wire forms (``otlp_json.py``, ``otlp_protobuf.py``) spell every attribute value out
with its type
(``{"key":…,"value":{"stringValue":…}}``, or a nested protobuf ``KeyValue``/``AnyValue``):
Python work per attribute, ~3.5 µs for an event of 8 attributes on the reference machine. The
application thread does not do that work. It encodes what the call holds, once, with one msgspec
call (~0.6 µs), and the writer process turns each row into its wire form when it frames the
batch (``OtlpSink.prepare``), on another core and outside the application's GIL.

Row framing in the ring: a MessagePack ``uint 32`` object (``0xce`` + 4 bytes, big-endian) holding
the length of the row that follows, then the row, a MessagePack array:

* traces: ``[time_ns, ids, name, attributes | nil, error message | nil]``; ``ids`` is 24 random
  bytes (trace id, then span id), drawn here so that a batch sent again (retried, spooled,
  delivered by a later writer) carries the same ids and a receiver can recognise the repeat;
* metrics: ``[time_ns, name, value, "GAUGE" | "COUNTER" | "HISTOGRAM", attributes | nil]``;
* logs: ``[time_ns, message, severity name, attributes | nil]``.

Because each length is itself a MessagePack object, a batch of ``n`` rows prefixed with an
``array 32`` header of ``2n`` elements is one MessagePack document: the writer decodes a whole
batch with one call (``decode_batch``) and finds boundaries with ``ring.split_sized``.

Values keep their type through MessagePack (str, int, float, bool, None, bytes, lists, maps,
NaN and infinities included). What msgspec encodes natively it encodes its way (an Enum member
as its value, a dataclass or Struct as a map, a datetime as itself or ISO 8601 text when naive,
a UUID or Decimal as text); other mappings as dicts; anything else, and str subclasses, travel
as their ``str()``, as with the ClickHouse backend. The rare row msgspec cannot take (an int
beyond 64 bits, a lone surrogate in a string) is encoded again from ``portable`` copies: such
ints as their decimal text, unencodable characters as ``?``.
"""

from __future__ import annotations

import enum
import os
import struct
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import msgspec

from ..schema import LogSeverity, MetricType
from .framing import SIZED_HEADER as HEADER
from .framing import split_sized
from .otlp_common import INT64_LOW

IDS_PER_REFILL: Final = 4096
_INT_END: Final = 1 << 64  # MessagePack carries uint64 too

_pack_header = struct.Struct(">BI").pack_into
_split_ids = struct.Struct("24s" * IDS_PER_REFILL).unpack
_decoder: Final = msgspec.msgpack.Decoder()


def _carried(value: Any) -> Any:
    """The encoder's hook, for what msgspec does not encode by itself: a mapping that is not a
    dict as a dict (a key-value list on the wire), anything else as its ``str()``."""
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def random_ids() -> Iterator[bytes]:
    """24 random bytes per span (16 of trace id, 8 of span id), split from one ``os.urandom``
    call in C. A fresh pool per encoder: a forked child builds its own and never repeats its
    parent's ids."""
    return iter(_split_ids(os.urandom(24 * IDS_PER_REFILL)))


class CompactRows:
    """The producer's OTLP row encoder (``rows.clickhouse.RowEncoder``): not thread-safe (the client
    calls it under its ring lock); the returned buffer is reused by the next call."""

    def __init__(self) -> None:
        self._encode_into = msgspec.msgpack.Encoder(enc_hook=_carried).encode_into
        self._buf = bytearray(1024)
        self._next_ids: Callable[[], bytes] = random_ids().__next__

    def _fresh_ids(self) -> bytes:
        self._next_ids = random_ids().__next__
        return self._next_ids()

    def _put(self, row: tuple[Any, ...]) -> bytearray:
        buf = self._buf
        try:
            self._encode_into(row, buf, HEADER)
        except (OverflowError, UnicodeEncodeError):
            self._encode_into(portable(row), buf, HEADER)
        _pack_header(buf, 0, 0xCE, len(buf) - HEADER)
        return buf

    def span(
        self, time_ns: int, name: str, attributes: Mapping[str, Any] | None, error: str | None
    ) -> bytearray:
        try:
            ids = self._next_ids()
        except StopIteration:
            ids = self._fresh_ids()
        return self._put((time_ns, ids, name, attributes, error))

    def metric(
        self,
        time_ns: int,
        name: str,
        value: float,
        kind: MetricType,
        attributes: Mapping[str, Any] | None,
    ) -> bytearray:
        return self._put((time_ns, name, value, kind._name_, attributes))

    def log(
        self,
        time_ns: int,
        message: str,
        severity: LogSeverity,
        attributes: Mapping[str, Any] | None,
    ) -> bytearray:
        return self._put((time_ns, message, severity._name_, attributes))


def portable(value: Any) -> Any:
    """``value`` with what MessagePack cannot carry made carriable: ints beyond 64 bits as their
    decimal text, strings with lone surrogates with ``?`` in their place (keys too)."""
    t = type(value)
    if t is str:
        return value.encode("utf-8", "replace").decode("utf-8")
    if t is int:
        return value if INT64_LOW <= value < _INT_END else str(value)
    if isinstance(value, Mapping):
        return {_portable_key(k): portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [portable(item) for item in value]
    if isinstance(value, enum.Enum):  # by value, as msgspec encodes members
        return portable(value.value)
    if isinstance(value, str):  # a str subclass: its str(), as the encoder's hook gives it
        return portable(str(value))
    return value


def _portable_key(key: Any) -> Any:
    """A key as msgspec encodes keys: a str subclass by its text (not its ``str()``)."""
    if type(key) is tuple:  # stays hashable (a key's str() is its text on the wire)
        return tuple(_portable_key(item) for item in key)
    if isinstance(key, str) and not isinstance(key, enum.Enum):
        return key.encode("utf-8", "replace").decode("utf-8")
    return portable(key)


def decode_batch(body: bytes | bytearray) -> list[Any]:
    """The rows of a batch of framed rows, decoded with one msgspec call. ValueError when the
    batch does not hold whole compact rows."""
    length, rows = split_sized(body, len(body))
    if length != len(body):
        raise ValueError(f"a batch of compact rows ends inside a row (at byte {length})")
    document = b"".join((b"\xdd", (2 * rows).to_bytes(4, "big"), body))
    decoded: list[Any] = _decoder.decode(document)
    return decoded[1::2]


def is_compact(body: bytes | bytearray) -> bool:
    """True for a batch of compact rows; False for wire rows (an OTLP/JSON object starts with
    ``{``, a protobuf row with tag ``0x12``), which older versions put into rings and spools."""
    return body[:1] == b"\xce"
