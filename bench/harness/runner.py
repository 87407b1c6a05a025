"""``automagik-telemetry bench``: run the workload through each backend and each peer.

Each system runs in a child process of its own (``child.py``; the original SDK in its own
virtual environment, ``original_child.py``), three times: throughput (then its landing is
counted at the destination by this process, which polls while the child runs), batch round
trips, and latency at a low rate. One process per system makes peak memory and CPU time that
system's alone, and keeps a peer's threads and imports out of the next one's way.

Servers: the ones the user names (``--clickhouse-url``, ``--otlp-endpoint``) or ones started
here (Debian's ClickHouse server on loopback, the loopback OTLP receiver, chdb directories),
all stopped at the end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

import automagik_telemetry

from .adapters import CLICKHOUSE_CONNECT, FLOOR, ORIGINAL, OTEL
from .destinations import ClickHouseTarget, EmbeddedTarget, Landing, OtlpTarget, Poller
from .peers import (
    ALL_SYSTEMS,
    default_original_venv,
    install,
    missing_reason,
    venv_python,
)
from .workload import Workload

CLICKHOUSE_SYSTEMS: Final = ("ours-clickhouse", CLICKHOUSE_CONNECT, ORIGINAL)
OTLP_SYSTEMS: Final = (
    "ours-otlp-json",
    "ours-otlp-protobuf",
    "ours-otlp-json-caller",
    "ours-otlp-protobuf-caller",
    *OTEL,
)
CHECKOUT: Final = Path(__file__).resolve().parents[2]  # bench/harness/runner.py
CHILD_TIMEOUT: Final = 900.0
SETTLE_SECONDS: Final = 2.0
LANDING_TIMEOUT: Final = 120.0


class BenchError(RuntimeError):
    """The harness itself could not run (not a system that failed: that is reported)."""


@dataclass
class Options:
    workload: Workload = field(default_factory=Workload)
    systems: tuple[str, ...] = ALL_SYSTEMS
    clickhouse_url: str | None = None
    clickhouse_user: str = "default"
    clickhouse_password: str = ""
    otlp_endpoint: str | None = None
    rounds: int = 30
    latency_rate: float = 10.0
    latency_seconds: float = 10.0
    flush_interval: float | None = None
    compression: str = "auto"
    original_venv: Path = field(default_factory=default_original_venv)
    install_peers: bool = False
    flush_timeout: float = 300.0
    keep: bool = False
    codecs: bool = True
    json_path: Path | None = None
    plot_path: Path | None = None
    markdown_path: Path | None = None
    command: str = ""


# --- machine --------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) * 1024
    cores = os.cpu_count() or 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    summary = (
        f"{cores} cores ({cpu or platform.machine()}), {memory / 2**30:.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    return {
        "summary": summary, "cores": cores, "cpu": cpu, "memory_bytes": memory,
        "python": platform.python_version(), "kernel": platform.release(),
        "load_average_at_start": load,
    }  # fmt: skip


# --- progress -------------------------------------------------------------------------------


class Progress:
    """One bar for the whole run on a terminal; a line per step elsewhere."""

    def __init__(self, steps: int, stream: IO[str]) -> None:
        self.steps = max(steps, 1)
        self.stream = stream
        self.tty = stream.isatty()
        self.step = 0
        self.label = ""
        self.started = time.monotonic()
        self._step_started = self.started
        self._lock = threading.Lock()

    def begin(self, label: str) -> None:
        with self._lock:
            self.label = label
            self._step_started = time.monotonic()
            if not self.tty:
                self.stream.write(f"[{self.step + 1:>2}/{self.steps}] {label} ...\n")
                self.stream.flush()
        self.update(0.0)

    def update(self, fraction: float) -> None:
        if not self.tty:
            return
        with self._lock:
            overall = (self.step + min(max(fraction, 0.0), 1.0)) / self.steps
            width = 30
            filled = int(overall * width)
            bar = "█" * filled + "·" * (width - filled)
            elapsed = time.monotonic() - self.started
            text = f"\r[{bar}] {overall:4.0%} {self.step + 1}/{self.steps} {self.label}"
            self.stream.write(f"{text[:110]:<110} {elapsed:5.0f}s")
            self.stream.flush()

    def end(self, outcome: str = "done") -> None:
        with self._lock:
            took = time.monotonic() - self._step_started
            if not self.tty:
                self.stream.write(f"       {self.label}: {outcome} in {took:.1f} s\n")
                self.stream.flush()
            self.step += 1
        self.update(0.0)

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --- child processes ------------------------------------------------------------------------


class ChildFailed(RuntimeError):
    pass


def _child_env(system: str, home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "AUTOMAGIK_TELEMETRY_")) and k != "PYTHONPATH"
    }
    if system == ORIGINAL:
        # The original turns itself off in CI and without an opt-in, and writes a user id file
        # under $HOME: opt in, hide CI markers, give it a home of its own.
        for name in ("CI", "GITHUB_ACTIONS", "TRAVIS", "JENKINS", "GITLAB_CI", "CIRCLECI"):
            env.pop(name, None)
        env.pop("ENVIRONMENT", None)
        env["AUTOMAGIK_TELEMETRY_ENABLED"] = "true"
        env["HOME"] = str(home)
    else:
        # The child imports this harness from the checkout and the engine from where this
        # process imported it (``engine/`` of the same checkout for an editable install).
        engine = Path(automagik_telemetry.__file__).resolve().parents[1]
        env["PYTHONPATH"] = os.pathsep.join([str(CHECKOUT), str(engine)])
    return env


def run_child(
    spec: dict[str, Any],
    *,
    original_venv: Path,
    home: Path,
    on_progress: Any,
    timeout: float = CHILD_TIMEOUT,
) -> dict[str, Any]:
    system = spec["system"]
    if system == ORIGINAL:
        argv = [str(venv_python(original_venv)), str(Path(__file__).with_name("original_child.py"))]
    else:
        argv = [sys.executable, "-m", "bench.harness.child"]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=_child_env(system, home), text=True, start_new_session=True,
    )  # fmt: skip
    tail: collections.deque[str] = collections.deque(maxlen=30)

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("PROGRESS "):
                with contextlib.suppress(ValueError):
                    on_progress(float(line.split()[1]))
            else:
                tail.append(line.rstrip())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert process.stdin is not None and process.stdout is not None
    # stderr belongs to the reader thread (progress), so no communicate(): write the spec, read
    # stdout to its end, and let a timer stop a child that runs past the timeout.
    timer = threading.Timer(timeout, _kill, args=(process,))
    timer.start()
    try:
        process.stdin.write(json.dumps(spec))
        process.stdin.close()
        out = process.stdout.read()
        process.wait()
    except BaseException:
        _kill(process)
        raise
    finally:
        timer.cancel()
        reader.join(5)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        detail = "\n".join(tail) or "(no output)"
        raise ChildFailed(f"{system} {spec['phase']} exited with {process.returncode}:\n{detail}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["stderr_tail"] = [t for t in tail if t][-5:]
    return result


def _kill(process: subprocess.Popen[str]) -> None:
    """Stop a child we started (its own session: its writer process too)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- one system -----------------------------------------------------------------------------


class Bench:
    def __init__(self, options: Options, out: IO[str], err: IO[str]) -> None:
        self.o = options
        self.out = out
        self.err = err
        self.clickhouse: ClickHouseTarget | None = None
        self.otlp: OtlpTarget | None = None
        self.embedded: EmbeddedTarget | None = None
        self.home = Path(tempfile.mkdtemp(prefix="automagik-bench-home-"))
        self.results: dict[str, Any] = {}
        self.problems: list[str] = []
        self.progress: Progress | None = None

    # destinations

    def open_targets(self, systems: list[str]) -> None:
        if any(s in CLICKHOUSE_SYSTEMS for s in systems):
            self.clickhouse = ClickHouseTarget(
                self.o.clickhouse_url, self.o.clickhouse_user, self.o.clickhouse_password,
                keep=self.o.keep,
            )  # fmt: skip
        if any(s in OTLP_SYSTEMS for s in systems):
            self.otlp = OtlpTarget(self.o.otlp_endpoint)
        if "ours-embedded" in systems:
            self.embedded = EmbeddedTarget()

    def close_targets(self) -> None:
        for target in (self.clickhouse, self.otlp, self.embedded):
            if target is not None:
                with contextlib.suppress(Exception):
                    target.stop()
        self.clickhouse = self.otlp = self.embedded = None
        import shutil

        shutil.rmtree(self.home, ignore_errors=True)

    def destination(self, system: str, label: str) -> tuple[dict[str, Any], Any]:
        """The destination spec of one child, and a function counting what landed there."""
        if system in CLICKHOUSE_SYSTEMS:
            assert self.clickhouse is not None
            ch = self.clickhouse
            dest = ch.new_database(f"{system}_{label}")
            database = dest["database"]
            return dest, lambda: ch.count(database)
        if system in OTLP_SYSTEMS:
            assert self.otlp is not None
            otlp = self.otlp
            otlp.reset()
            return otlp.destination(), (otlp.count if otlp.countable else None)
        if system == "ours-embedded":
            assert self.embedded is not None
            return self.embedded.new_path(label), None
        return {"kind": "none", "loopback": True}, None

    def spec(self, system: str, phase: str, destination: dict[str, Any]) -> dict[str, Any]:
        o = self.o
        return {
            "system": system,
            "phase": phase,
            "workload": o.workload.to_dict(),
            "destination": destination,
            "rounds": o.rounds if phase == "roundtrip" else 0,
            "flush_timeout": o.flush_timeout,
            "flush_interval": o.flush_interval,
            "compression": o.compression,
            "large_queue": o.workload.count + (o.rounds + 1) * o.workload.batch_size,
            "latency": {
                "rate": o.latency_rate,
                "seconds": o.latency_seconds,
                # long enough for a batch that waits its flush interval to go out and land
                "linger": (o.flush_interval or 5.0) + min(2.0, o.flush_interval or 5.0),
            },
        }

    def child(self, spec: dict[str, Any]) -> dict[str, Any]:
        progress = self.progress
        return run_child(
            spec, original_venv=self.o.original_venv, home=self.home,
            on_progress=progress.update if progress else (lambda f: None),
        )  # fmt: skip

    # phases

    def throughput(self, system: str) -> dict[str, Any]:
        dest, count = self.destination(system, "t")
        spec = self.spec(system, "throughput", dest)
        if system == "ours-embedded" or count is None:
            result = self.child(spec)
            return self._landed_without_polling(system, dest, result)
        landing = Landing()
        poller = Poller(lambda: landing.add(count()), 0.025).start()
        try:
            result = self.child(spec)
            expected = result["calls"] + result["warmup_calls"]
            deadline = time.monotonic() + LANDING_TIMEOUT
            while time.monotonic() < deadline and landing.final < expected:
                last = landing.final_at or time.time()
                if time.time() - last > SETTLE_SECONDS and landing.series:
                    break
                time.sleep(0.05)
        finally:
            poller.stop()
        if poller.errors:
            self.problems.append(f"{system}: counting at the destination: {poller.errors[0]}")
        landed = max(0, landing.final - result["warmup_calls"])
        figures = self._common_figures(result)
        figures["landed"] = landed
        if landed and landing.final_at is not None:
            figures["events_per_s_landed"] = landed / (landing.final_at - result["wall_start"])
        else:
            figures["landed_note"] = f"0 of {result['calls']:,} landed"
        figures["lost"] = max(0, result["calls"] - landed)
        figures["duplicates"] = max(0, landed - result["calls"])
        if landed > result["calls"]:
            self.problems.append(
                f"{system}: {landed - result['calls']:,} rows more than were sent landed "
                "(stored twice)"
            )
        if self.otlp is not None and system in OTLP_SYSTEMS:
            figures["wire_bytes_per_event"] = self.otlp.wire_bytes() / max(landing.final, 1)
            errors = self.otlp.errors()
            if errors:
                self.problems.append(f"{system}: the receiver refused requests: {errors[0]}")
        else:
            wire = result["stats"].get("wire_bytes")
            total = result["calls"] + result["warmup_calls"]
            figures["wire_bytes_per_event"] = wire / total if wire else None
        figures["codec"] = self._codec(system)
        return {"throughput": result, "figures": figures}

    def _codec(self, system: str) -> str:
        """The Content-Encoding the system's requests carried."""
        if self.otlp is not None and system in OTLP_SYSTEMS and self.otlp.receiver is not None:
            seen = sorted({r.content_encoding or "none" for r in self.otlp.receiver.requests})
            return ", ".join(seen) or "n/a"
        loopback = self.clickhouse is not None and self.clickhouse.loopback
        if system == "ours-clickhouse":
            if self.o.compression == "auto":
                return "none (auto, loopback)" if loopback else "auto (gzip on 18.16)"
            return self.o.compression
        if system == CLICKHOUSE_CONNECT:
            return "none (loopback)" if loopback else "gzip"
        if system == ORIGINAL:
            return "gzip (bodies > 1 KiB)"
        return "n/a"

    def _landed_without_polling(
        self, system: str, dest: dict[str, Any], result: dict[str, Any]
    ) -> dict[str, Any]:
        figures = self._common_figures(result)
        if system == FLOOR:
            figures["events_per_s_landed"] = result["calls"] / result["produce_seconds"]
            figures["landed_note"] = "put rate"
            figures["wire_bytes_per_event"] = None
            figures["wire_note"] = "nothing is sent"
            return {"throughput": result, "figures": figures}
        if system == "ours-embedded":
            assert self.embedded is not None
            landed = self.embedded.count(dest["path"]) - result["warmup_calls"]
            figures["landed"] = landed
            if result["flush_ok"]:
                # flush() returned when the writer's chdb had the rows; counted after exit
                figures["events_per_s_landed"] = landed / result["flush_seconds_after_start"]
            figures["wire_bytes_per_event"] = None
            figures["wire_note"] = "in-process engine, nothing on a wire"
            figures["lost"] = max(0, result["calls"] - landed)
            figures["duplicates"] = max(0, landed - result["calls"])
            return {"throughput": result, "figures": figures}
        # an OTLP endpoint of the user's: nothing to count there
        figures["events_per_s_landed"] = None
        figures["landed_note"] = "not counted (external endpoint)"
        wire = result["stats"].get("wire_bytes")
        figures["wire_bytes_per_event"] = wire / result["calls"] if wire else None
        figures["codec"] = self._codec(system)
        return {"throughput": result, "figures": figures}

    @staticmethod
    def _common_figures(result: dict[str, Any]) -> dict[str, Any]:
        calls = result["calls"]
        stats = result["stats"]
        writer_cpu = result["writer_cpu_seconds"]
        return {
            "calls": calls,
            "producer_ns_median": result["producer_ns_median"],
            "producer_ns_p99": result["producer_ns_p99"],
            "producer_ns_p999": result["producer_ns_p999"],
            "dropped_reported": stats.get("dropped_total"),
            "writer_cpu_us_per_event": writer_cpu / calls * 1e6 if calls else None,
            "total_cpu_us_per_event": result["total_cpu_seconds"] / calls * 1e6,
            "peak_rss_bytes": result["peak_rss_bytes"],
            "rss_growth_bytes": max(0, result["peak_rss_bytes"] - result["rss_before_bytes"]),
            "writer_peak_rss_bytes": result.get("writer_peak_rss_bytes"),
            "flush_ok": result["flush_ok"],
        }

    def roundtrip(self, system: str) -> dict[str, Any]:
        dest, _ = self.destination(system, "r")
        result = self.child(self.spec(system, "roundtrip", dest))
        return result

    def latency(self, system: str) -> dict[str, Any]:
        dest, _ = self.destination(system, "l")
        seen: dict[int, float] = {}
        read: Any
        if system in CLICKHOUSE_SYSTEMS:
            assert self.clickhouse is not None
            ch, database = self.clickhouse, dest["database"]

            def read() -> None:
                before = time.time()
                names = ch.probe_names(database)
                at = (before + time.time()) / 2
                for name in names:
                    if name.startswith("probe.") and name[6:].isdigit():
                        seen.setdefault(int(name[6:]), at)

            interval = 0.01
        else:
            assert self.otlp is not None
            otlp = self.otlp

            def read() -> None:
                for seq, at in otlp.probes().items():
                    seen.setdefault(seq, at)

            interval = 0.05
        poller = Poller(read, interval).start()
        try:
            result = self.child(self.spec(system, "latency", dest))
            sent = result["sent_ns"]
            deadline = time.monotonic() + 15.0
            while len(seen) < len(sent) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            poller.stop()
        latencies = sorted(
            (seen[i] - sent_ns / 1e9) * 1e3 for i, sent_ns in enumerate(sent) if i in seen
        )
        result.pop("sent_ns", None)
        result["seen"] = len(latencies)
        result["sent"] = len(sent)
        if latencies:
            result["latency_ms_p50"] = latencies[len(latencies) // 2]
            result["latency_ms_p99"] = latencies[
                min(len(latencies) - 1, int(0.99 * len(latencies)))
            ]
            result["latency_ms_max"] = latencies[-1]
        return result

    # the run

    def measure(self, system: str) -> dict[str, Any]:
        assert self.progress is not None
        progress = self.progress
        entry: dict[str, Any] = {}
        progress.begin(f"{system}: throughput")
        try:
            entry = self.throughput(system)
            progress.end()
        except ChildFailed as exc:
            progress.end("failed")
            self.problems.append(str(exc).splitlines()[0])
            return {"error": str(exc), "figures": {}}
        figures = entry["figures"]
        if system != FLOOR and self.o.rounds:
            progress.begin(f"{system}: batch round trips")
            try:
                rt = self.roundtrip(system)
                entry["roundtrip"] = rt
                for key in ("roundtrip_ms_p50", "roundtrip_ms_p99", "roundtrip_ms_max"):
                    figures[key] = rt.get(key)
                progress.end()
            except ChildFailed as exc:
                progress.end("failed")
                self.problems.append(str(exc).splitlines()[0])
        latency_possible = system in CLICKHOUSE_SYSTEMS or (
            system in OTLP_SYSTEMS and self.otlp is not None and self.otlp.countable
        )
        if self.o.latency_seconds > 0 and latency_possible:
            progress.begin(f"{system}: latency at {self.o.latency_rate:g}/s")
            try:
                lat = self.latency(system)
                entry["latency"] = lat
                figures["latency_ms_p50"] = lat.get("latency_ms_p50")
                figures["latency_ms_p99"] = lat.get("latency_ms_p99")
                figures["latency_seen"] = f"{lat['seen']}/{lat['sent']}"
                progress.end()
            except ChildFailed as exc:
                progress.end("failed")
                self.problems.append(str(exc).splitlines()[0])
        elif system == "ours-embedded":
            figures["latency_note"] = "n/a: the writer holds the chdb directory, no 2nd reader"
        return entry

    def steps_for(self, systems: list[str]) -> int:
        steps = 0
        for system in systems:
            steps += 1
            steps += int(system != FLOOR and self.o.rounds > 0)
            steps += int(
                self.o.latency_seconds > 0
                and (
                    system in CLICKHOUSE_SYSTEMS
                    or (system in OTLP_SYSTEMS and self.o.otlp_endpoint is None)
                )
            )
        return steps

    def run(self) -> dict[str, Any]:
        o = self.o
        wanted = list(o.systems)
        if o.install_peers:
            install(wanted, o.original_venv, log=lambda m: self.err.write(m + "\n"))
        results: dict[str, Any] = {
            "machine": machine(),
            "command": o.command,
            "workload": o.workload.to_dict(),
            "workload_counts": ", ".join(f"{n:,} {k}s" for k, n in o.workload.counts().items()),
            "options": {
                "rounds": o.rounds,
                "latency_rate": o.latency_rate,
                "latency_seconds": o.latency_seconds,
                "flush_interval": o.flush_interval,
                "compression": o.compression,
            },
            "destinations": {},
            "systems": {},
            "skipped": {},
            "versions": _versions(o.original_venv),
        }
        self.results = results
        started = time.monotonic()
        try:
            self.open_targets(wanted)
            if self.clickhouse is not None:
                results["destinations"]["clickhouse"] = self.clickhouse.describe()
            if self.otlp is not None:
                results["destinations"]["otlp"] = self.otlp.describe()
            if self.embedded is not None:
                results["destinations"]["embedded"] = self.embedded.describe()
            legacy = self.clickhouse.legacy if self.clickhouse is not None else None
            runnable = []
            for system in wanted:
                reason = missing_reason(system, o.original_venv, legacy)
                if reason:
                    results["skipped"][system] = reason
                else:
                    runnable.append(system)
            if ORIGINAL in runnable and self.clickhouse is not None:
                if self.clickhouse.started_here:
                    if not self.clickhouse.skip_unknown_fields_for_user():
                        self.problems.append(
                            "could not turn on input_format_skip_unknown_fields for the "
                            "original SDK's inserts"
                        )
                elif self.clickhouse.legacy:
                    self.problems.append(
                        "the original SDK sends columns 18.16's tables lack and cannot send "
                        "settings: its inserts into this server will be refused"
                    )
            self.progress = Progress(self.steps_for(runnable), self.err)
            for system in runnable:
                results["systems"][system] = self.measure(system)
            self.progress.close()
            if o.codecs:
                from .codecs import codec_table

                results["codecs"] = codec_table(o.workload)
        finally:
            self.close_targets()
        results["problems"] = self.problems
        results["seconds"] = time.monotonic() - started
        return results


def _versions(original_venv: Path) -> dict[str, str | None]:
    from automagik_telemetry import __version__

    from .peers import version_of

    return {
        "automagik-telemetry (ours)": __version__,
        "opentelemetry-sdk": version_of("opentelemetry-sdk"),
        "opentelemetry-exporter-otlp-proto-http": version_of(
            "opentelemetry-exporter-otlp-proto-http"
        ),
        "clickhouse-connect": version_of("clickhouse-connect"),
        "original automagik-telemetry": "0.1.4" if venv_python(original_venv).exists() else None,
    }


# --- command line ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    w = Workload()
    a = parser.add_argument
    a(
        "--events",
        "--count",
        dest="count",
        type=int,
        default=w.count,
        help=f"calls in the throughput phase ({w.count:,}; 1 in 10 a metric, 1 in 10 a log)",
    )
    a("--rate", type=float, default=0.0, help="calls per second in all (default: unthrottled)")
    a("--threads", type=int, default=1, help="calling threads (1)")
    a("--batch-size", type=int, default=w.batch_size, help="batch_size of every system (100)")
    a(
        "--systems",
        default=",".join(ALL_SYSTEMS),
        help="comma-separated subset of: " + ", ".join(ALL_SYSTEMS),
    )
    a("--clickhouse-url", help="a ClickHouse HTTP URL to use instead of starting one")
    a("--clickhouse-user", default="default")
    a(
        "--clickhouse-password",
        default=os.environ.get("AUTOMAGIK_TELEMETRY_CLICKHOUSE_PASSWORD", ""),
    )
    a("--otlp-endpoint", help="an OTLP/HTTP base URL to use instead of the loopback receiver")
    a("--rounds", type=int, default=30, help="batch round trips per system (30)")
    a("--latency-rate", type=float, default=10.0, help="calls per second, latency phase (10)")
    a("--latency-seconds", type=float, default=10.0, help="length of the latency phase (0: skip)")
    a(
        "--flush-interval",
        type=float,
        help="flush interval of every system (default: each system's own, 5 s for all)",
    )
    a("--compression", default="auto", help="ours: auto, gzip, lz4, zstd or none")
    a(
        "--original-venv",
        type=Path,
        default=default_original_venv(),
        help="virtual environment holding automagik-telemetry 0.1.4",
    )
    a("--install-peers", action="store_true", help="install missing peers (pinned) first")
    a("--no-codecs", action="store_true", help="skip the per-codec compression table")
    a("--keep", action="store_true", help="keep the bench databases on a server you named")
    a("--json", type=Path, dest="json_path", help="write every figure as JSON here")
    a("--plot", type=Path, dest="plot_path", help="write the PNG plot here (needs matplotlib)")
    a("--markdown", type=Path, dest="markdown_path", help="write the tables (Markdown) here")
    a(
        "--smoke",
        action="store_true",
        help="tiny workload (2,000 calls, 3 round trips, 1 s of latency): checks that it runs",
    )


def options_from_args(args: argparse.Namespace, command: str = "") -> Options:
    if args.smoke:
        args.count, args.rounds = min(args.count, 2_000), min(args.rounds, 3)
        args.latency_seconds = min(args.latency_seconds, 1.0)
        args.latency_rate = max(args.latency_rate, 10.0)
        if args.flush_interval is None:
            args.flush_interval = 0.5
    systems = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = [s for s in systems if s not in ALL_SYSTEMS]
    if unknown:
        raise BenchError(f"unknown system(s) {unknown}; known: {', '.join(ALL_SYSTEMS)}")
    for name in ("count", "threads", "batch_size"):
        if getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')} must be at least 1")
    return Options(
        workload=Workload(
            count=args.count, rate=args.rate, threads=args.threads, batch_size=args.batch_size
        ),
        systems=systems,
        clickhouse_url=args.clickhouse_url,
        clickhouse_user=args.clickhouse_user,
        clickhouse_password=args.clickhouse_password,
        otlp_endpoint=args.otlp_endpoint,
        rounds=args.rounds,
        latency_rate=args.latency_rate,
        latency_seconds=args.latency_seconds,
        flush_interval=args.flush_interval,
        compression=args.compression,
        original_venv=args.original_venv,
        install_peers=args.install_peers,
        keep=args.keep,
        codecs=not args.no_codecs,
        json_path=args.json_path,
        plot_path=args.plot_path,
        markdown_path=args.markdown_path,
        command=command,
    )


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(options: Options, out: IO[str] | None = None, err: IO[str] | None = None) -> dict[str, Any]:
    """Run the bench; print the tables; write the JSON, Markdown and plot asked for."""
    from .report import markdown

    out = out or sys.stdout
    err = err or sys.stderr

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        results = Bench(options, out, err).run()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    text = markdown(results)
    out.write("\n" + text)
    out.write(f"\n(run took {results['seconds']:.0f} s)\n")
    if options.markdown_path:
        options.markdown_path.parent.mkdir(parents=True, exist_ok=True)
        options.markdown_path.write_text(text)
    if options.plot_path:
        try:
            from .plot import plot

            results["plot"] = str(plot(results, options.plot_path))
        except ImportError:
            err.write("no plot: matplotlib is not installed (pip install matplotlib==3.11.2)\n")
    if options.json_path:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return results


def main(argv: Sequence[str]) -> int:
    """Entry point of ``automagik-telemetry bench``: ``argv`` are the arguments after ``bench``."""
    given = list(argv)
    parser = argparse.ArgumentParser(
        prog="automagik-telemetry bench",
        description="Measure the backends and the peers on this machine and these servers.",
    )
    add_arguments(parser)
    args = parser.parse_args(given)
    command = "automagik-telemetry bench " + " ".join(shlex.quote(a) for a in given)
    try:
        options = options_from_args(args, command.strip())
        results = run(options)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nbench: interrupted; every server started here was stopped", file=sys.stderr)
        return 130
    failed = [name for name, entry in results["systems"].items() if "error" in entry]
    return 1 if failed else 0
