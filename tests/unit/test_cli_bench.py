"""``automagik-telemetry bench`` imports the harness of the checkout on demand, and says what to
do when there is none (an installed wheel carries no harness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from automagik_telemetry import cli

ROOT = Path(__file__).resolve().parents[2]


def test_the_harness_is_found_in_the_checkout_the_package_runs_from() -> None:
    harness = cli.load_harness()
    assert harness is not None
    assert Path(harness.__file__ or "") == ROOT / "bench" / "harness" / "__init__.py"


def test_bench_without_the_harness_names_the_extra_and_the_checkout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "load_harness", lambda: None)
    assert cli.main(["bench", "--smoke"]) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert "bench/harness/ of a checkout" in printed.err
    assert "pip install -e '.[bench]'" in printed.err
    assert "Traceback" not in printed.err
