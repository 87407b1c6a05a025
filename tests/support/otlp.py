"""Expected OTLP values, built with the official opentelemetry-proto messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList


def any_value(value: Any) -> AnyValue:
    """The AnyValue the official API builds for ``value``: the type a receiver must see."""
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        if -(1 << 63) <= value < 1 << 63:
            return AnyValue(int_value=int(value))
        return AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))


def key_values(attributes: Mapping[Any, Any]) -> list[KeyValue]:
    return [KeyValue(key=str(k), value=any_value(v)) for k, v in attributes.items()]


def plain(value: AnyValue) -> Any:
    """An AnyValue's Python value (scalars only)."""
    kind = value.WhichOneof("value")
    return None if kind is None else getattr(value, kind)


def attribute_dict(attributes: Any) -> dict[str, Any]:
    return {kv.key: plain(kv.value) for kv in attributes}


def assert_no_unknown_fields(message: Message) -> None:
    stripped = type(message)()
    stripped.CopyFrom(message)
    stripped.DiscardUnknownFields()
    assert stripped.ByteSize() == message.ByteSize(), "unknown protobuf fields"
