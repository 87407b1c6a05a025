#!/usr/bin/env bash
# Run a throwaway ClickHouse server (no Docker) with the legacy telemetry schema, until Ctrl-C.
#
#   infra/local/run-clickhouse.sh [--port 8123] [--password secret] [--username telemetry]
#
# Needs the Debian/Ubuntu package: apt-get update && apt-get install -y clickhouse-server
# (or AUTOMAGIK_TELEMETRY_CLICKHOUSE_SERVER=/path/to/clickhouse-server).
# Python: $PYTHON if set, else the repository's .venv, else python3.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if [[ -n "${PYTHON:-}" ]]; then
    python="$PYTHON"
elif [[ -x "$repo_root/.venv/bin/python" ]]; then
    python="$repo_root/.venv/bin/python"
else
    python="python3"
fi

export PYTHONPATH="$repo_root/engine${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m automagik_telemetry.local_clickhouse "$@"
