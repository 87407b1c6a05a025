"""The benchmark harness, end to end, on a tiny workload, so that it cannot rot.

Runs ``automagik-telemetry bench --smoke`` against servers it starts itself (Debian's ClickHouse
server, the embedded engine, the loopback OTLP receiver): every backend of ours, the floor, and
the peers that are importable here (the OpenTelemetry SDK, clickhouse-connect). Our own parts
are never skipped: a missing server or extra fails the test. The original SDK 0.1.4 (its own
virtual environment) is left to the full run."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from automagik_telemetry.cli import main
from bench.harness.report import FIGURES

OURS = ("ours-clickhouse", "ours-embedded", "ours-otlp-json", "ours-otlp-protobuf")


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _children() -> set[int]:
    """Live processes whose parent is this one."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == me and "Z" not in fields.get("State", ""):
            found.add(int(entry.name))
    return found


@pytest.mark.timeout(240)
def test_bench_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    peers = ["floor"]
    if _importable("opentelemetry.sdk.trace") and _importable(
        "opentelemetry.exporter.otlp.proto.http"
    ):
        peers.append("otel-sdk")
    if _importable("clickhouse_connect"):
        peers.append("clickhouse-connect")
    systems = [*OURS, *peers]
    out_json, out_md, out_png = tmp_path / "b.json", tmp_path / "b.md", tmp_path / "b.png"
    argv = [
        "bench", "--smoke", "--systems", ",".join(systems),
        "--json", str(out_json), "--markdown", str(out_md),
    ]  # fmt: skip
    if _importable("matplotlib"):
        argv += ["--plot", str(out_png)]
    before = _children()

    code = main(argv)

    printed = capsys.readouterr()
    results = json.loads(out_json.read_text())
    assert not results["skipped"].keys() & set(OURS), results["skipped"]
    assert code == 0, (results["problems"], printed.err[-3000:])
    assert not _children() - before, "the bench left processes running"
    assert set(results["systems"]) == set(systems)
    for name in systems:
        figures = results["systems"][name]["figures"]
        # the floor's put costs about what the timer does: on a loaded machine its median, net
        # of the calibrated timer overhead, can be 0; every real system costs more than that
        assert figures["producer_ns_median"] > 0 or name == "floor", name
        assert figures["producer_ns_median"] >= 0, name
        assert figures["producer_ns_p99"] >= figures["producer_ns_median"], name
        assert figures["events_per_s_landed"] > 0, name
        assert figures["peak_rss_bytes"] > 0, name
        if name == "floor":
            continue
        assert figures["landed"] == figures["calls"] == 2_000, (name, figures)
        assert figures["roundtrip_ms_p50"] > 0, name
        assert figures["total_cpu_us_per_event"] > 0, name
        if name != "ours-embedded":
            assert figures["latency_ms_p50"] > 0, name
            assert figures["wire_bytes_per_event"] > 0, name
    assert {row["codec"] for row in results["codecs"]} >= {"none", "gzip", "lz4"}
    table = out_md.read_text()
    for figure in FIGURES:
        assert figure.title in table
    assert table in printed.out
    if _importable("matplotlib"):
        assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
