"""The benchmark's peers are pinned in three places, which must agree: the ``[bench]`` extra,
``bench/requirements-peers.txt`` and the harness's own pins (``--install-peers``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from bench.harness.peers import PEER_PINS

ROOT = Path(__file__).resolve().parents[2]


def test_bench_extra_requirements_file_and_harness_pin_the_same_peers() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = {r for r in project["optional-dependencies"]["bench"] if "==" in r}
    text = (ROOT / "bench" / "requirements-peers.txt").read_text()
    listed = {line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")}
    assert extra == listed == set(PEER_PINS)
