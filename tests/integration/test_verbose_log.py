"""``AUTOMAGIK_TELEMETRY_VERBOSE=true``: each batch the writer sends is logged (rows, bytes,
round trip) at INFO through the application's logger ``automagik_telemetry``, so a newcomer
sees it with ``logging.basicConfig(level=logging.DEBUG)``, as the backend guide says."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.support import ClickHouseDatabase

SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG)
from automagik_telemetry import AutomagikTelemetry
client = AutomagikTelemetry(project_name="my-app", version="1.0.0", backend="clickhouse",
                            batch_size=1)
for i in range(3):
    client.track_event("test", {"i": i})
    assert client.flush(timeout=30)
client.shutdown()
"""


def _run(db: ClickHouseDatabase, verbose: str) -> str:
    server = db.server
    env = {
        **os.environ,
        "AUTOMAGIK_TELEMETRY_VERBOSE": verbose,
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT": server.url,
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_DATABASE": db.name,
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_USERNAME": server.username,
        "AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD": server.password,
    }
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


LINE = re.compile(
    r"^INFO:automagik_telemetry[.\w]*:sent (\d+) traces rows to clickhouse: (\d+) bytes, "
    r"(\d+) on the wire, round trip \d+\.\d ms$",
    re.MULTILINE,
)


def test_verbose_logs_each_batch_through_the_applications_logging(
    ch_db: ClickHouseDatabase,
) -> None:
    stderr = _run(ch_db, "true")
    lines = LINE.findall(stderr)
    assert [int(rows) for rows, _, _ in lines] == [1, 1, 1], stderr  # one per flushed batch
    assert all(int(size) > 0 and int(wire) > 0 for _, size, wire in lines)
    assert "automagik-telemetry writer:" not in stderr  # not the writer's own stderr
    assert ch_db.count() == 3


def test_not_verbose_logs_no_batch(ch_db: ClickHouseDatabase) -> None:
    stderr = _run(ch_db, "false")
    assert LINE.findall(stderr) == []
    assert ch_db.count() == 3
