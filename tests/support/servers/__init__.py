"""Servers the tests start on loopback: the strict OTLP/HTTP receiver (``otlp_receiver``, which
also has the fast counting mode the benchmark harness measures against) and the scriptable HTTP
fault front (``http_front``). The local ClickHouse runner is a user tool and stays in the package
(``automagik_telemetry.local_clickhouse``)."""
