"""The OTLP/HTTP backend.

* ``config``: where each signal goes (``endpoint`` options and ``OTEL_EXPORTER_OTLP_*``),
  consent per signal;
* ``encode``: the application side: the row encoder of a track call and the writer's settings;
* ``sink``: the writer side: requests per batch (``framing``), their answers (``answers``).
"""
