"""The compose stack's files agree with each other and with the guide (no Docker engine runs
here or in CI, so what can be checked without one is checked here: names, ports, paths)."""

from __future__ import annotations

import json
from pathlib import Path

INFRA = Path(__file__).resolve().parents[2] / "infra"


def test_compose_stack_matches_the_guide_and_mounts_what_exists() -> None:
    compose = (INFRA / "docker-compose.yml").read_text()
    assert "CLICKHOUSE_USER:-telemetry}" in compose
    assert "CLICKHOUSE_PASSWORD:-telemetry_password}" in compose
    assert "CLICKHOUSE_HTTP_PORT:-8123}:8123" in compose
    assert "COLLECTOR_HTTP_PORT:-4318}:4318" in compose
    assert "GRAFANA_PORT:-3000}:3000" in compose
    assert "opentelemetry-collector-contrib" in compose
    assert "GF_INSTALL_PLUGINS: grafana-clickhouse-datasource" in compose
    for line in compose.splitlines():
        if line.strip().startswith("- ./"):
            source = line.strip()[2:].split(":", 1)[0]
            assert (INFRA / source).exists(), source
    for line in compose.splitlines():  # every published port on loopback only
        if line.strip().startswith('- "') and line.count(":") >= 2:
            assert line.strip().startswith('- "127.0.0.1:'), line


def test_grafana_provisioning_points_at_the_dashboards_and_their_datasource() -> None:
    provider = (INFRA / "grafana/provisioning/dashboards/automagik.yaml").read_text()
    compose = (INFRA / "docker-compose.yml").read_text()
    assert "path: /var/lib/grafana/dashboards" in provider
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in compose
    datasource = (INFRA / "grafana/provisioning/datasources/clickhouse.yaml").read_text()
    assert "uid: clickhouse" in datasource and "type: grafana-clickhouse-datasource" in datasource
    for path in (INFRA / "grafana/dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            assert panel["datasource"] == {"type": "grafana-clickhouse-datasource",
                                           "uid": "clickhouse"}  # fmt: skip


def test_collector_receives_otlp_http_and_exports_to_clickhouse() -> None:
    config = (INFRA / "collector/config.yaml").read_text()
    assert "endpoint: 0.0.0.0:4318" in config
    assert "endpoint: tcp://clickhouse:9000" in config
    for signal in ("traces", "metrics", "logs"):
        block = config.split(f"    {signal}:\n", 1)[1].split("\n    ", 3)
        assert "exporters: [clickhouse]" in "\n".join(block[:3])
