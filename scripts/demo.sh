#!/usr/bin/env bash
# Main job: set up, then ship a batch job's telemetry (1,000,000 events plus metrics and logs)
# into the embedded ClickHouse engine and print what landed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[embedded]'
exec .venv/bin/automagik-telemetry demo "$@"
