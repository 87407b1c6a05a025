"""The peers: which are installed, the releases the harness pins, and how to install them.

Pinned releases (also in the ``[bench]`` extra of ``pyproject.toml`` and in
``bench/requirements-peers.txt``):

* ``opentelemetry-sdk`` + ``opentelemetry-exporter-otlp-proto-http`` 1.45.2;
* ``clickhouse-connect`` 1.6.0: the newest release that works with Debian's ClickHouse 18.16
  (1.7.0 and later ask the server for the ``readonly`` setting in a query 18.16 rejects with
  "Unknown identifier: readonly"; found by trying 0.5.25 to 1.12.0 against it);
* ``matplotlib`` 3.11.2 for the plot;
* the original ``automagik-telemetry`` 0.1.4 from the package index, in its own virtual
  environment (same import name as this package). It declares Python >= 3.12 but runs on
  3.11, so it is installed with ``--ignore-requires-python``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

from .adapters import CLICKHOUSE_CONNECT, FLOOR, ORIGINAL, OTEL, OURS

OTEL_PINS: Final = (
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
)
CLICKHOUSE_CONNECT_PIN: Final = "clickhouse-connect==1.6.0"
MATPLOTLIB_PIN: Final = "matplotlib==3.11.2"
ORIGINAL_PIN: Final = "automagik-telemetry==0.1.4"
PEER_PINS: Final = (*OTEL_PINS, CLICKHOUSE_CONNECT_PIN, MATPLOTLIB_PIN)
ORIGINAL_VENV_ENV: Final = "AUTOMAGIK_TELEMETRY_BENCH_ORIGINAL_VENV"
LAST_CLICKHOUSE_CONNECT_FOR_18: Final = (1, 6)

ALL_SYSTEMS: Final = (*OURS, *OTEL, CLICKHOUSE_CONNECT, ORIGINAL, FLOOR)
PEERS: Final = (*OTEL, CLICKHOUSE_CONNECT, ORIGINAL, FLOOR)


def default_original_venv() -> Path:
    """``bench/.venv-original`` when run from the repository, else a per-user cache."""
    if value := os.environ.get(ORIGINAL_VENV_ENV):
        return Path(value)
    repo = Path.cwd() / "bench"
    if repo.is_dir():
        return repo / ".venv-original"
    return Path.home() / ".cache" / "automagik-telemetry" / "bench-venv-original"


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def missing_reason(system: str, original_venv: Path, clickhouse_legacy: bool | None) -> str | None:
    """Why ``system`` cannot run here (None: it can)."""
    hint = "pip install -e '.[bench]' from the checkout, or run with --install-peers"
    if system in OTEL:
        if not _installed("opentelemetry.sdk.trace") or not _installed(
            "opentelemetry.exporter.otlp.proto.http"
        ):
            return f"the OpenTelemetry SDK is not installed ({' '.join(OTEL_PINS)}; {hint})"
    elif system == CLICKHOUSE_CONNECT:
        version = version_of("clickhouse-connect")
        if version is None:
            return f"clickhouse-connect is not installed ({CLICKHOUSE_CONNECT_PIN}; {hint})"
        major_minor = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
        if clickhouse_legacy and major_minor > LAST_CLICKHOUSE_CONNECT_FOR_18:
            return (
                f"clickhouse-connect {version} cannot talk to ClickHouse 18.16 (1.6.0 is the "
                f"last release that can: {CLICKHOUSE_CONNECT_PIN})"
            )
    elif system == ORIGINAL:
        if not venv_python(original_venv).exists():
            return (
                f"the original {ORIGINAL_PIN} is not installed in {original_venv} (run with "
                f"--install-peers, or: python -m venv {original_venv} && "
                f"{original_venv}/bin/pip install --ignore-requires-python {ORIGINAL_PIN})"
            )
    elif system.startswith("ours-otlp-"):
        if not _installed("opentelemetry.proto"):
            return "the loopback OTLP receiver needs the [otlp-proto] extra"
    elif system == "ours-embedded" and not _installed("chdb"):
        return "the embedded engine needs the [embedded] extra (chdb)"
    return None


def install(systems: list[str], original_venv: Path, log: object = print) -> None:
    """Install what ``systems`` need and is missing: the pinned peers into this interpreter,
    the original SDK into its own virtual environment."""
    say = log if callable(log) else print
    wanted: list[str] = []
    if any(s in OTEL for s in systems) and missing_reason(OTEL[0], original_venv, None):
        wanted.extend(OTEL_PINS)
    if CLICKHOUSE_CONNECT in systems and version_of("clickhouse-connect") != "1.6.0":
        wanted.append(CLICKHOUSE_CONNECT_PIN)
    if not _installed("matplotlib"):
        wanted.append(MATPLOTLIB_PIN)
    if wanted:
        say(f"installing {' '.join(wanted)}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *wanted], check=True)
        importlib.invalidate_caches()
    if ORIGINAL in systems and not venv_python(original_venv).exists():
        say(f"installing {ORIGINAL_PIN} into {original_venv}")
        subprocess.run([sys.executable, "-m", "venv", str(original_venv)], check=True)
        subprocess.run(
            [
                str(venv_python(original_venv)), "-m", "pip", "install", "--quiet",
                "--ignore-requires-python", ORIGINAL_PIN,
            ],
            check=True,
        )  # fmt: skip
