"""Every panel of the Grafana dashboards (``infra/grafana/dashboards/*.json``) runs on the
embedded engine (chdb) against ``schema.sql``, with rows the engine itself wrote (events,
errors, the three metric types, logs of each severity, self-health readings), and returns rows.

Grafana macros are replaced by this rule before a query runs (what the ClickHouse data source
does with the dashboard's time range, widened to the last day so that the rows of this test
are inside it):

* ``$__timeFilter(c)``   -> ``(c >= now() - INTERVAL 1 DAY AND c <= now() + INTERVAL 1 HOUR)``
* ``$__timeInterval(c)`` -> ``toStartOfInterval(c, INTERVAL 60 second)``

Any other ``$`` macro or variable fails the test (add its rule here first)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from automagik_telemetry import AutomagikTelemetry, LogSeverity, MetricType
from automagik_telemetry.self_health import SelfHealth

pytest.importorskip("chdb")

DASHBOARDS = Path(__file__).resolve().parents[2] / "infra" / "grafana" / "dashboards"
TIME_FILTER = re.compile(r"\$__timeFilter\((\w+)\)")
TIME_INTERVAL = re.compile(r"\$__timeInterval\((\w+)\)")


def expand_macros(sql: str) -> str:
    sql = TIME_FILTER.sub(r"(\1 >= now() - INTERVAL 1 DAY AND \1 <= now() + INTERVAL 1 HOUR)", sql)
    sql = TIME_INTERVAL.sub(r"toStartOfInterval(\1, INTERVAL 60 second)", sql)
    assert "$" not in sql, f"a macro without a rule in this test: {sql}"
    return sql


def panels() -> list[tuple[str, str, str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for p in board["panels"]:
            for target in p["targets"]:
                found.append((path.stem, p["title"], p["type"], target["rawSql"]))
    return found


def test_there_is_a_dashboard_per_signal_and_the_engine() -> None:
    names = {path.stem for path in DASHBOARDS.glob("*.json")}
    assert names == {"traces", "metrics", "logs", "engine"}
    titles = {title for _, title, _, _ in panels()}
    for wanted in ("Events over time", "Events by name", "Errors over time", "Gauges (average)",
                   "Counters (sum per interval)", "Histograms (p50, p95, p99)",
                   "Logs by severity", "Rows sent", "Rows dropped, spooled, set aside",
                   "Retries and failed attempts"):  # fmt: skip
        assert wanted in titles


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from chdb import session as chdb_session

    root = tmp_path_factory.mktemp("dashboards")
    path = root / "db"
    with pytest.MonkeyPatch.context() as patch:  # module-scoped: before the per-test home
        patch.setenv("HOME", str(root))
        _track(path)
    db = chdb_session.Session(str(path))
    yield db
    db.close()


def _track(path: Path) -> None:
    client = AutomagikTelemetry(project_name="dash-app", version="1.0.0", backend="embedded",
                                embedded_path=str(path), batch_size=50, enabled=True)  # fmt: skip
    health = SelfHealth(client, interval=3600)
    for i in range(60):
        client.track_event(f"job.step{i % 3}", {"i": i})
        client.track_metric("queue.depth", i % 7, MetricType.GAUGE)
        client.track_metric("jobs.done", 1, MetricType.COUNTER)
        client.track_metric("latency_ms", (i * 37) % 900 / 3, MetricType.HISTOGRAM)
    for severity in (LogSeverity.DEBUG, LogSeverity.INFO, LogSeverity.WARN, LogSeverity.ERROR):
        client.track_log(f"a {severity.name} line", severity)
    try:
        raise ValueError("the job failed")
    except ValueError as exc:
        client.track_error(exc, {"job": "nightly"})
    health.tick()
    assert client.flush(timeout=60)
    health.tick()
    assert client.flush(timeout=60)
    client.shutdown()  # the writer holds the database: it exits first


@pytest.mark.parametrize(("board", "title", "kind", "sql"), panels(),
                         ids=[f"{b}:{t}" for b, t, _, _ in panels()])  # fmt: skip
def test_panel_query_runs_and_is_not_empty(
    session: object, board: str, title: str, kind: str, sql: str
) -> None:
    result = session.query(expand_macros(sql), "JSONCompact")  # type: ignore[attr-defined]
    data = json.loads(result.bytes())["data"]
    assert data, f"{board} / {title}: no rows"
    if kind == "stat":
        assert float(data[0][0]) > 0, f"{board} / {title}: {data}"
