"""``automagik-telemetry bench``: measure this engine, and what a user would pick instead, on the
user's own machine and servers.

Not part of the installed package: the harness is ``bench/harness`` of a checkout, imported as
``bench.harness`` with the checkout's root on ``sys.path`` (the command does that for an editable
install, pytest for the tests). ``pip install -e '.[bench]'`` adds the pinned peers.

Modules: ``workload`` (the calls), ``driver`` (timing inside each system's process),
``adapters`` (ours, the OpenTelemetry SDK, clickhouse-connect with hand-written batching, the
floor), ``original_child`` (automagik-telemetry 0.1.4 in its own environment), ``destinations``
(servers, counting what landed), ``peers`` (pins, install), ``codecs`` (bytes per codec),
``report`` (tables with ratios), ``plot`` (PNG), ``runner`` (the command).
"""

from __future__ import annotations

from .runner import Options, add_arguments, main, run

__all__ = ["Options", "add_arguments", "main", "run"]
