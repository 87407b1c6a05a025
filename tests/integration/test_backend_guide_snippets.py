"""Every Python snippet of the backend guide (``../shared/backend-guide.md``), verbatim, run
against a real ClickHouse server (Debian's 18.16) where it needs one, its rows counted by query.

How the snippets are run, and the only liberties taken:

* The snippets are copied here character for character (``test_the_snippets_are_the_guides``
  checks them against ``docs/backend-guide.md``, and that copy against the team's guide when
  it is next to this checkout). Those that continue an
  earlier one (``client = AutomagikTelemetry(...)`` without the import, ``config =
  TelemetryConfig(...)``, ``client.track_event(...)``) run with what the guide has introduced by
  then in their namespace: ``AutomagikTelemetry``, ``TelemetryConfig``, ``MetricType``, a
  ``client``, and for "All Existing Code Works!" an ``exception`` that was raised and caught.
* The server is started by the test, with the guide's own user and password (``telemetry`` /
  ``telemetry_password``) and its database ``telemetry``, on a free port of 127.0.0.1.
* A snippet that names no destination gets it from the guide's own environment variables
  (``AUTOMAGIK_TELEMETRY_BACKEND=clickhouse``, ``..._CLICKHOUSE_ENDPOINT``, ``..._USERNAME``,
  ``..._PASSWORD``, as the guide's "Environment Variables" block sets them), with the test
  server's port in the endpoint; what the snippet gives in code is never overridden.
* A snippet that names ``http://localhost:8123`` literally runs with that one URL replaced by
  the test server's (``http://127.0.0.1:<port>``): the port substitution is the only change to
  its text, and ``with_test_server`` checks that the URL occurs exactly once and nothing else
  changes. Why not bind the test server to 8123: on a shared machine (CI runners, other
  engineers' servers) port 8123 may belong to a ClickHouse this test did not start, and a test
  must never insert rows into a server that is not its own, nor fail because the port is taken.
* The OTLP snippets name the vendor's endpoint: they run as written and must send nothing
  (sending there needs an opt-in, see the README's "Consent"); the test checks that the client
  is disabled with the resolved vendor endpoints, and never opts in.
* The verbose snippet mixes Python with a shell line (``export AUTOMAGIK_TELEMETRY_VERBOSE=true``,
  under "# Or via environment"): its Python lines run as Python, its shell line is applied as
  the environment variable it exports.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from automagik_telemetry import AutomagikTelemetry, MetricType, TelemetryConfig
from automagik_telemetry.local_clickhouse import LocalClickHouse
from automagik_telemetry.sinks.clickhouse import schema_statements

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "backend-guide.md"  # the copy kept with the code
SHARED_GUIDE = ROOT.parent / "shared" / "backend-guide.md"  # the team's, in a working checkout
LITERAL_URL: Final = "http://localhost:8123"
USER, PASSWORD, DATABASE = "telemetry", "telemetry_password", "telemetry"
VENDOR = (
    "https://telemetry.namastex.ai/v1/traces",
    "https://telemetry.namastex.ai/v1/metrics",
    "https://telemetry.namastex.ai/v1/logs",
)

# --- the snippets, verbatim -----------------------------------------------------------------

# OTLP Backend, Quick Setup
OTLP_SETUP = """\
from automagik_telemetry import AutomagikTelemetry

client = AutomagikTelemetry(
    project_name="my-app",
    version="1.0.0",
    backend="otlp",  # Default
    endpoint="https://telemetry.namastex.ai/v1/traces"
)
"""

# ClickHouse Backend, Quick Setup
CLICKHOUSE_SETUP = """\
from automagik_telemetry import AutomagikTelemetry

client = AutomagikTelemetry(
    project_name="my-app",
    version="1.0.0",
    backend="clickhouse",
    clickhouse_endpoint="http://localhost:8123",
    clickhouse_database="telemetry",
    clickhouse_username="telemetry",
    clickhouse_password="telemetry_password"
)
"""

# Migration Guide, Step 1, Before (OTLP)
BEFORE_OTLP = """\
client = AutomagikTelemetry(
    project_name="my-app",
    version="1.0.0",
    endpoint="https://telemetry.namastex.ai/v1/traces"  # OTLP
)
"""

# Migration Guide, Step 1, After (ClickHouse)
AFTER_CLICKHOUSE = """\
client = AutomagikTelemetry(
    project_name="my-app",
    version="1.0.0",
    backend="clickhouse",                           # NEW
    clickhouse_endpoint="http://localhost:8123",    # NEW
    clickhouse_database="telemetry",                # NEW
    clickhouse_username="telemetry",                # NEW
    clickhouse_password="telemetry_password"        # NEW
)
"""

# Migration Guide, Step 2: All Existing Code Works!
EXISTING_CODE = """\
# These work identically with both backends âœ…
client.track_event("user.login", {"user_id": "123"})
client.track_metric("api.requests", value=1, metric_type=MetricType.COUNTER)
client.track_error(exception)
client.flush()
"""

# Performance Tuning, Real-Time Visibility (Small Batches)
SMALL_BATCHES = """\
config = TelemetryConfig(
    backend="clickhouse",
    batch_size=10,  # Events appear quickly
    compression_enabled=False  # Skip compression overhead
)
# Good for: Development, debugging, low-volume apps
"""

# Performance Tuning, Balanced (Default)
BALANCED_BATCHES = """\
config = TelemetryConfig(
    backend="clickhouse",
    batch_size=100,  # Default
    compression_enabled=True
)
# Good for: Most production applications
"""

# Performance Tuning, High Throughput (Large Batches)
LARGE_BATCHES = """\
config = TelemetryConfig(
    backend="clickhouse",
    batch_size=1000,  # Maximize throughput
    compression_enabled=True
)
# Good for: High-volume applications, batch processing
"""

# Troubleshooting, Connection Refused, 2. Check endpoint configuration
ENDPOINT_CHECK = """\
config = TelemetryConfig(
    clickhouse_endpoint="http://localhost:8123",  # Not https, not port 9000
)
"""

# Troubleshooting, Authentication Failed, 3. Update configuration
CREDENTIALS = """\
config = TelemetryConfig(
    clickhouse_username="telemetry",
    clickhouse_password="telemetry_password",  # Must match ClickHouse user
)
"""

# Troubleshooting, No Data Appearing, 1. Force flush
FORCE_FLUSH = """\
client.track_event("test", {})
client.flush()  # Important!
"""

# Troubleshooting, No Data Appearing, 2. Reduce batch size for testing
BATCH_OF_ONE = """\
config = TelemetryConfig(
    backend="clickhouse",
    batch_size=1,  # Immediate send
)
"""

# Troubleshooting, No Data Appearing, 3. Enable verbose logging
VERBOSE = """\
import logging
logging.basicConfig(level=logging.DEBUG)

# Or via environment
export AUTOMAGIK_TELEMETRY_VERBOSE=true
"""

SNIPPETS: Final = (
    OTLP_SETUP,
    CLICKHOUSE_SETUP,
    BEFORE_OTLP,
    AFTER_CLICKHOUSE,
    EXISTING_CODE,
    SMALL_BATCHES,
    BALANCED_BATCHES,
    LARGE_BATCHES,
    ENDPOINT_CHECK,
    CREDENTIALS,
    FORCE_FLUSH,
    BATCH_OF_ONE,
    VERBOSE,
)


# --- running them ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guide_server() -> Iterator[LocalClickHouse]:
    """A ClickHouse server with the guide's user and password."""
    with LocalClickHouse(username=USER, password=PASSWORD) as server:
        yield server


@pytest.fixture
def server(guide_server: LocalClickHouse) -> Iterator[LocalClickHouse]:
    """The guide's database ``telemetry``, fresh for each test."""
    guide_server.query(f"DROP DATABASE IF EXISTS {DATABASE}")
    for statement in schema_statements(DATABASE, legacy=True):
        guide_server.query(statement)
    yield guide_server
    guide_server.query(f"DROP DATABASE IF EXISTS {DATABASE}")


@pytest.fixture
def clients() -> Iterator[list[AutomagikTelemetry]]:
    """Clients a test made: shut down at its end (their writers and segments go)."""
    made: list[AutomagikTelemetry] = []
    yield made
    for client in made:
        client.shutdown()


def count(server: LocalClickHouse, table: str = "traces", where: str = "1") -> int:
    return int(server.query(f"SELECT count() FROM {DATABASE}.{table} WHERE {where}").strip())


def with_test_server(snippet: str, server: LocalClickHouse) -> str:
    """The snippet with its literal ``http://localhost:8123`` pointing at the test server."""
    assert snippet.count(LITERAL_URL) == 1
    text = snippet.replace(LITERAL_URL, server.url)
    assert text.split(server.url) == snippet.split(LITERAL_URL)  # nothing else changed
    return text


def run(snippet: str, **names: Any) -> dict[str, Any]:
    """Execute a snippet in a namespace holding what the guide introduced before it."""
    namespace: dict[str, Any] = {
        "__name__": "backend_guide",
        "AutomagikTelemetry": AutomagikTelemetry,
        "TelemetryConfig": TelemetryConfig,
        "MetricType": MetricType,
        **names,
    }
    exec(compile(snippet, "<backend-guide.md>", "exec"), namespace)
    return namespace


def guide_environment(
    monkeypatch: pytest.MonkeyPatch, server: LocalClickHouse, *, endpoint: bool = True
) -> None:
    """The guide's "Environment Variables" for ClickHouse, with the test server's port."""
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_BACKEND", "clickhouse")
    if endpoint:
        monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT", server.url)
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_DATABASE", DATABASE)
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_USERNAME", USER)
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD", PASSWORD)


def test_the_snippets_are_the_guides() -> None:
    if SHARED_GUIDE.exists():  # the copy in docs/ is the team's guide as it stands
        assert GUIDE.read_bytes() == SHARED_GUIDE.read_bytes(), f"copy {SHARED_GUIDE} to {GUIDE}"
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert tuple(blocks) == SNIPPETS


@pytest.mark.parametrize("snippet", [OTLP_SETUP, BEFORE_OTLP], ids=["setup", "before"])
def test_the_otlp_snippets_name_the_vendor_and_send_nothing_without_an_opt_in(
    snippet: str, clients: list[AutomagikTelemetry]
) -> None:
    client = run(snippet)["client"]
    clients.append(client)
    assert isinstance(client, AutomagikTelemetry)
    assert (client.endpoint, client.metrics_endpoint, client.logs_endpoint) == VENDOR
    assert client.config.project_name == "my-app" and client.config.version == "1.0.0"
    assert client.is_enabled() is False
    client.track_event("user.login", {"user_id": "123"})
    status = client.get_status()
    assert status["accepted"] == 0 and status["writer_alive"] is False
    assert "opt-in" in status["disabled_reason"]


@pytest.mark.parametrize(
    "snippet", [CLICKHOUSE_SETUP, AFTER_CLICKHOUSE], ids=["setup", "after-migration"]
)
def test_the_clickhouse_snippets_and_all_existing_code_deliver(
    snippet: str, server: LocalClickHouse, clients: list[AutomagikTelemetry]
) -> None:
    names = run(with_test_server(snippet, server))
    client = names["client"]
    clients.append(client)
    assert client.is_enabled() and client.config.backend == "clickhouse"
    try:
        raise ValueError("payment declined")
    except ValueError as caught:
        exception = caught
    run(EXISTING_CODE, client=client, exception=exception)  # ends with client.flush()
    assert count(server) == 2
    assert count(server, where="span_name = 'user.login' AND project_name = 'my-app'") == 1
    assert count(server, where="status_code = 'ERROR' AND status_message = 'payment declined'") == 1
    assert count(server, "metrics", "metric_name = 'api.requests' AND value_int = 1") == 1
    assert client.get_status()["sent"] == 3


@pytest.mark.parametrize(
    ("snippet", "batch_size", "compressed"),
    [(SMALL_BATCHES, 10, False), (BALANCED_BATCHES, 100, True), (LARGE_BATCHES, 1000, True),
     (BATCH_OF_ONE, 1, True)],
    ids=["small", "balanced", "large", "one"],
)  # fmt: skip
def test_the_tuning_snippets_deliver(
    snippet: str,
    batch_size: int,
    compressed: bool,
    server: LocalClickHouse,
    clients: list[AutomagikTelemetry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    guide_environment(monkeypatch, server)
    config = run(snippet)["config"]
    assert (config.backend, config.batch_size) == ("clickhouse", batch_size)
    assert config.compression_enabled is compressed
    assert config.sources["batch_size"] == "code"
    assert config.sources["clickhouse_endpoint"] == "AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT"
    client = AutomagikTelemetry(config=config)
    clients.append(client)
    for i in range(2 * batch_size + 3):
        client.track_event("tuned", {"i": i})
    assert client.flush(timeout=30)
    assert count(server, where="span_name = 'tuned'") == 2 * batch_size + 3


def test_the_endpoint_snippet_delivers(
    server: LocalClickHouse, clients: list[AutomagikTelemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    guide_environment(monkeypatch, server, endpoint=False)
    config = run(with_test_server(ENDPOINT_CHECK, server))["config"]
    assert config.clickhouse_endpoint == server.url and config.sources["clickhouse_endpoint"] == (
        "code"
    )
    client = AutomagikTelemetry(config=config)
    clients.append(client)
    client.track_event("reachable")
    assert client.flush(timeout=30)
    assert count(server, where="span_name = 'reachable'") == 1


def test_the_credentials_snippet_delivers(
    server: LocalClickHouse, clients: list[AutomagikTelemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    guide_environment(monkeypatch, server)
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_USERNAME", "someone_else")
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD", "wrong")
    config = run(CREDENTIALS)["config"]  # the snippet's credentials beat the environment's
    assert (config.clickhouse_username, config.clickhouse_password) == (USER, PASSWORD)
    assert "telemetry_password" not in repr(config)
    client = AutomagikTelemetry(config=config)
    clients.append(client)
    client.track_event("authenticated")
    assert client.flush(timeout=30)
    assert count(server, where="span_name = 'authenticated'") == 1
    assert client.get_status()["failed"] == 0


def test_the_force_flush_snippet_makes_the_row_queryable(
    server: LocalClickHouse, clients: list[AutomagikTelemetry]
) -> None:
    names = run(with_test_server(CLICKHOUSE_SETUP, server))
    clients.append(names["client"])
    run(FORCE_FLUSH, client=names["client"])
    assert count(server, where="span_name = 'test'") == 1  # right after flush(), no wait


def test_the_verbose_snippet(
    server: LocalClickHouse, clients: list[AutomagikTelemetry], monkeypatch: pytest.MonkeyPatch
) -> None:
    python, shell = [], []
    for line in VERBOSE.splitlines():
        (shell if line.startswith("export ") else python).append(line)
    assert shell == ["export AUTOMAGIK_TELEMETRY_VERBOSE=true"]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.handlers = []  # basicConfig acts only on a root logger without handlers
    try:
        run("\n".join(python))
        assert root.level == logging.DEBUG
    finally:
        root.handlers, root.level = handlers, level
    variable, _, value = shell[0].removeprefix("export ").partition("=")
    monkeypatch.setenv(variable, value)
    names = run(with_test_server(CLICKHOUSE_SETUP, server))
    client = names["client"]
    clients.append(client)
    assert client.config.verbose is True and client.get_status()["verbose"] is True
    client.track_event("verbose")
    assert client.flush(timeout=30)
    assert count(server, where="span_name = 'verbose'") == 1
