"""Row formats: how one track call is encoded, once, on the calling thread, and how the writer
finds row boundaries in a batch.

* ``clickhouse``: JSONEachRow lines for the tables of ``schema/clickhouse.sql``, and the shared
  columns the writer adds per batch;
* ``compact``: the OTLP row the calling thread writes (one MessagePack array), decoded per batch;
* ``otlp_common``, ``otlp_json``, ``otlp_protobuf``: the OTLP wire rows;
* ``framing``: row boundaries in a batch (newlines, protobuf lengths, sized rows).
"""
