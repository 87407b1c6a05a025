# ruff: noqa: E501 -- one panel, one line: the SQL of a panel reads best unbroken
"""Writes the Grafana dashboards of ``infra/grafana/dashboards/`` (run it after editing a panel):

    python infra/grafana/make_dashboards.py

Each panel is one SQL query for the ClickHouse data source (grafana-clickhouse-datasource,
uid ``clickhouse``), on the tables of ``infra/clickhouse/schema.sql``. Queries use the data
source's macros ``$__timeFilter(column)`` and ``$__timeInterval(column)`` (Grafana's time range
and the interval it picks). ``tests/integration/test_dashboards.py`` runs every panel's query on
the embedded engine against schema.sql with rows in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
ENGINE = "metric_name LIKE 'automagik_telemetry.%'"
NOT_ENGINE = "metric_name NOT LIKE 'automagik_telemetry.%'"
TIME = "$__timeFilter(timestamp)"
BUCKET = "$__timeInterval(timestamp) AS time"


def panel(
    kind: str, title: str, sql: str, x: int, y: int, w: int = 12, h: int = 8
) -> dict[str, Any]:
    table_like = kind in ("stat", "table", "piechart", "barchart", "bargauge")
    return {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [
            {
                "refId": "A",
                "datasource": DATASOURCE,
                "queryType": "sql",
                "editorType": "sql",
                "format": 1 if table_like else 0,  # 1: table, 0: time series
                "rawSql": " ".join(sql.split()),
            }
        ],
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": kind != "stat"}
        }
        if kind in ("stat", "piechart")
        else {},
        "fieldConfig": {"defaults": {}, "overrides": []},
    }


def dashboard(uid: str, title: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    for number, p in enumerate(panels, 1):
        p["id"] = number
    return {
        "uid": uid,
        "title": title,
        "tags": ["automagik-telemetry"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": panels,
    }


TRACES = dashboard(
    "automagik-traces",
    "Automagik Traces",
    [
        panel(
            "stat",
            "Events",
            f"SELECT count() AS events FROM telemetry.traces WHERE {TIME}",
            0,
            0,
            6,
            4,
        ),
        panel(
            "stat",
            "Errors",
            f"SELECT countIf(status_code = 'ERROR') AS errors FROM telemetry.traces WHERE {TIME}",
            6,
            0,
            6,
            4,
        ),
        panel(
            "stat",
            "Services",
            f"SELECT uniq(service_name) AS services FROM telemetry.traces WHERE {TIME}",
            12,
            0,
            6,
            4,
        ),
        panel(
            "stat",
            "Error rate",
            f"SELECT round(countIf(status_code = 'ERROR') / count(), 4) AS error_rate FROM telemetry.traces WHERE {TIME}",
            18,
            0,
            6,
            4,
        ),
        panel(
            "timeseries",
            "Events over time",
            f"SELECT {BUCKET}, count() AS events FROM telemetry.traces WHERE {TIME} GROUP BY time ORDER BY time",
            0,
            4,
            24,
        ),
        panel(
            "barchart",
            "Events by name",
            f"SELECT span_name AS event, count() AS events FROM telemetry.traces WHERE {TIME} GROUP BY event ORDER BY events DESC LIMIT 20",
            0,
            12,
        ),
        panel(
            "piechart",
            "Events by project",
            f"SELECT project_name, count() AS events FROM telemetry.traces WHERE {TIME} GROUP BY project_name ORDER BY events DESC",
            12,
            12,
        ),
        panel(
            "timeseries",
            "Errors over time",
            f"SELECT {BUCKET}, countIf(status_code = 'ERROR') AS errors FROM telemetry.traces WHERE {TIME} GROUP BY time ORDER BY time",
            0,
            20,
        ),
        panel(
            "table",
            "Recent errors",
            f"SELECT timestamp, project_name, span_name, status_message FROM telemetry.traces WHERE {TIME} AND status_code = 'ERROR' ORDER BY timestamp DESC LIMIT 100",
            12,
            20,
        ),
    ],
)

METRICS = dashboard(
    "automagik-metrics",
    "Automagik Metrics",
    [
        panel(
            "timeseries",
            "Gauges (average)",
            f"SELECT {BUCKET}, metric_name, avg(value_double) AS value FROM telemetry.metrics WHERE {TIME} AND metric_type = 'GAUGE' AND {NOT_ENGINE} GROUP BY time, metric_name ORDER BY time",
            0,
            0,
        ),
        panel(
            "timeseries",
            "Counters (sum per interval)",
            f"SELECT {BUCKET}, metric_name, sum(value_double) AS value FROM telemetry.metrics WHERE {TIME} AND metric_type = 'SUM' AND {NOT_ENGINE} GROUP BY time, metric_name ORDER BY time",
            12,
            0,
        ),
        panel(
            "timeseries",
            "Histograms (p50, p95, p99)",
            f"SELECT {BUCKET}, quantile(0.5)(value_double) AS p50, quantile(0.95)(value_double) AS p95, quantile(0.99)(value_double) AS p99 FROM telemetry.metrics WHERE {TIME} AND metric_type = 'HISTOGRAM' GROUP BY time ORDER BY time",
            0,
            8,
        ),
        panel(
            "table",
            "Histogram buckets",
            f"SELECT metric_name, any(histogram_explicit_bounds) AS bounds, sumForEach(histogram_bucket_counts) AS counts, sum(histogram_count) AS observations FROM telemetry.metrics WHERE {TIME} AND metric_type = 'HISTOGRAM' GROUP BY metric_name",
            12,
            8,
        ),
        panel(
            "table",
            "Metrics by name",
            f"SELECT metric_name, metric_type, count() AS points, argMax(value_double, timestamp) AS last_value FROM telemetry.metrics WHERE {TIME} AND {NOT_ENGINE} GROUP BY metric_name, metric_type ORDER BY points DESC",
            0,
            16,
            24,
        ),
    ],
)

LOGS = dashboard(
    "automagik-logs",
    "Automagik Logs",
    [
        panel(
            "stat", "Logs", f"SELECT count() AS logs FROM telemetry.logs WHERE {TIME}", 0, 0, 8, 4
        ),
        panel(
            "stat",
            "Errors and worse",
            f"SELECT countIf(severity_number >= 17) AS errors FROM telemetry.logs WHERE {TIME}",
            8,
            0,
            8,
            4,
        ),
        panel(
            "stat",
            "Warnings",
            f"SELECT countIf(severity_number BETWEEN 13 AND 16) AS warnings FROM telemetry.logs WHERE {TIME}",
            16,
            0,
            8,
            4,
        ),
        panel(
            "timeseries",
            "Logs by severity",
            f"SELECT {BUCKET}, severity_text, count() AS logs FROM telemetry.logs WHERE {TIME} GROUP BY time, severity_text ORDER BY time",
            0,
            4,
            16,
        ),
        panel(
            "piechart",
            "Severity",
            f"SELECT severity_text, count() AS logs FROM telemetry.logs WHERE {TIME} GROUP BY severity_text ORDER BY logs DESC",
            16,
            4,
            8,
        ),
        panel(
            "table",
            "Recent logs",
            f"SELECT timestamp, severity_text, project_name, body FROM telemetry.logs WHERE {TIME} ORDER BY timestamp DESC LIMIT 200",
            0,
            12,
            24,
            10,
        ),
    ],
)


def _engine_series(title: str, names: list[str], x: int, y: int) -> dict[str, Any]:
    wanted = ", ".join(f"'automagik_telemetry.{n}'" for n in names)
    return panel(
        "timeseries",
        title,
        f"SELECT {BUCKET}, replaceOne(metric_name, 'automagik_telemetry.', '') AS what, sum(value_double) AS rows FROM telemetry.metrics WHERE {TIME} AND metric_name IN ({wanted}) GROUP BY time, what ORDER BY time",
        x,
        y,
    )


ENGINE_DASHBOARD = dashboard(
    "automagik-engine",
    "Automagik Engine (self-health)",
    [
        _engine_series("Rows sent", ["rows_sent"], 0, 0),
        _engine_series(
            "Rows dropped, spooled, set aside",
            ["rows_dropped", "rows_spooled", "rows_set_aside"],
            12,
            0,
        ),
        _engine_series("Retries and failed attempts", ["retries", "send_failures"], 0, 8),
        panel(
            "timeseries",
            "Ring fill (max per process)",
            f"SELECT {BUCKET}, concat(service_name, '@', hostname) AS process, max(value_double) AS fill FROM telemetry.metrics WHERE {TIME} AND metric_name = 'automagik_telemetry.ring_fill' GROUP BY time, process ORDER BY time",
            12,
            8,
        ),
        panel(
            "timeseries",
            "Spool (bytes on disk)",
            f"SELECT {BUCKET}, concat(service_name, '@', hostname) AS process, max(value_double) AS bytes FROM telemetry.metrics WHERE {TIME} AND metric_name = 'automagik_telemetry.spool_bytes' GROUP BY time, process ORDER BY time",
            0,
            16,
        ),
        panel(
            "table",
            "Totals per service",
            f"SELECT service_name, sumIf(value_double, metric_name = 'automagik_telemetry.rows_sent') AS sent, sumIf(value_double, metric_name = 'automagik_telemetry.rows_dropped') AS dropped, sumIf(value_double, metric_name = 'automagik_telemetry.rows_spooled') AS spooled, sumIf(value_double, metric_name = 'automagik_telemetry.retries') AS retries FROM telemetry.metrics WHERE {TIME} AND {ENGINE} GROUP BY service_name",
            12,
            16,
        ),
    ],
)

DASHBOARDS = {"traces": TRACES, "metrics": METRICS, "logs": LOGS, "engine": ENGINE_DASHBOARD}

if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    for name, board in DASHBOARDS.items():
        (HERE / f"{name}.json").write_text(json.dumps(board, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {HERE / name}.json ({len(board['panels'])} panels)")
