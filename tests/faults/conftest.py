"""Fixtures and hooks of the fault suite.

* ``fault_server``: a Debian ClickHouse server per test module that tests may kill, halt,
  SIGSTOP and restart (same port, same data directory); ``fault_db``: a fresh database with
  the legacy schema on it, the server brought back to normal first if a test left it down.
* ``clients``: a factory of clients that are shut down after the test and whose writers are
  waited for (and SIGKILLed by pid if they outlive the test).
* ``scenario``: the test's row in ``bench/results/faults.md`` (see ``report.py``), written at
  the end of the session.
* Tests marked ``soak`` run only when selected (``-m soak``); their table goes to
  ``bench/results/faults-soak.md``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from automagik_telemetry import AutomagikTelemetry
from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.sinks.clickhouse import schema_statements
from tests.faults.helpers import FaultDatabase, ensure_running, reap_writer
from tests.faults.report import REPORT, RESULTS, ScenarioRecord, write_markdown


@pytest.fixture(scope="module")
def fault_server() -> Iterator[LocalClickHouse]:
    with LocalClickHouse(username="telemetry") as server:
        yield server


@pytest.fixture
def fault_db(fault_server: LocalClickHouse) -> Iterator[FaultDatabase]:
    ensure_running(fault_server)
    name = "f_" + secrets.token_hex(4)
    for statement in schema_statements(name, legacy=True):
        fault_server.query(statement)
    yield FaultDatabase(fault_server, name)
    ensure_running(fault_server)
    fault_server.query(f"DROP DATABASE IF EXISTS {name}")


ClientFactory = Callable[..., AutomagikTelemetry]


@pytest.fixture
def clients() -> Iterator[ClientFactory]:
    made: list[AutomagikTelemetry] = []

    def make(**options: Any) -> AutomagikTelemetry:
        client = AutomagikTelemetry(**options)
        made.append(client)
        return client

    yield make
    for client in made:
        pid = client.get_status().get("writer_pid")
        client.shutdown(timeout=5.0)
        reap_writer(pid)


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> ScenarioRecord:
    doc = (request.function.__doc__ or "").strip().split("\n\n")[0]
    title = " ".join(doc.split()).rstrip(".") or request.node.name
    return REPORT.scenario(request.node.nodeid, title)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.option.markexpr:
        return
    soak = [item for item in items if item.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        REPORT.set_outcome(item.nodeid, report.outcome)
    elif report.when == "teardown" and report.outcome == "failed":
        REPORT.set_outcome(item.nodeid, "error in teardown")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # the default run writes faults.md; a run of the soak tests (-m soak) its own file
    markexpr = (session.config.option.markexpr or "").replace(" ", "")
    soak = "soak" in markexpr and "notsoak" not in markexpr
    path = write_markdown(REPORT, RESULTS.with_name("faults-soak.md") if soak else RESULTS)
    if path is not None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"fault suite report: {path}")
