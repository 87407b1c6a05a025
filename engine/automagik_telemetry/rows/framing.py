"""Row boundaries: the longest run of whole rows under a byte limit, for each way rows are
delimited in a ring (newline-ended JSON, length-delimited protobuf fields, sized compact rows)."""

from __future__ import annotations

import struct
from typing import Final

SIZED_HEADER: Final = 5
_sized_length = struct.Struct(">I").unpack_from


def split_lines(data: bytes, limit: int) -> tuple[int, int]:
    """(length, rows) of the longest prefix of ``data`` made of whole newline-ended rows and no
    longer than ``limit`` bytes (at least one row, whatever its size)."""
    if len(data) > limit:
        cut = data.rfind(b"\n", 0, limit)
        if cut < 0:
            cut = data.find(b"\n")
        length = cut + 1
        return length, data.count(b"\n", 0, length)
    if data[-1:] == b"\n" or not data:
        return len(data), data.count(b"\n")
    length = data.rfind(b"\n") + 1  # a window that ends inside a row stops before it
    return length, data.count(b"\n", 0, length)


def split_delimited(data: bytes, limit: int) -> tuple[int, int]:
    """``split_lines`` for length-delimited protobuf fields (tag byte, varint length, bytes)."""
    position = rows = 0
    size = len(data)
    while position < size:
        shift = length = 0
        cursor = position + 1  # one tag byte: field numbers below 16
        while cursor < size:
            byte = data[cursor]
            length |= (byte & 0x7F) << shift
            cursor += 1
            if byte < 0x80:
                break
            shift += 7
        else:
            break  # a row cut short by the end of ``data``
        end = cursor + length
        if end > size or (end > limit and rows):
            break
        position = end
        rows += 1
    return position, rows


def split_sized(data: bytes | bytearray, limit: int) -> tuple[int, int]:
    """``split_lines`` for rows that each follow their length as a MessagePack ``uint 32``
    (``0xce`` + 4 bytes, big-endian): the compact OTLP rows of ``rows.compact``."""
    position = rows = 0
    size = len(data)
    unpack = _sized_length
    while position + SIZED_HEADER <= size:
        end = position + SIZED_HEADER + unpack(data, position + 1)[0]
        if end > size or (end > limit and rows):
            break
        position = end
        rows += 1
    return position, rows


SPLITTERS: Final = {"lines": split_lines, "protobuf": split_delimited, "sized": split_sized}
