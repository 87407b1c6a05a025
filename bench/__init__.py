"""Benchmarks: the harness behind ``automagik-telemetry bench`` (``harness/``), micro-benchmarks
(``test_*.py``, pytest-benchmark), scripts (``bench_*.py``) and their results (``results/``).

A package, so that ``bench.harness`` imports from the checkout's root, as ``tests.support`` does.
None of it is part of the installed package."""
