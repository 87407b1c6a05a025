"""The client's supervisor: starts the writer process of a ring, restarts it when it dies (at
once after a kill, with growing pauses in a crash loop), relays the writer's messages into the
application's ``logging``, adopts the segments earlier applications and their writers left
behind, and stops all of them at shutdown. One thread, waking every ``SUPERVISE_EVERY``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import msgspec

from .processes import process_alive
from .ring import segment as ring
from .ring.spsc import RingWriter
from .settings import WriterSettings
from .sinks import sink_spec

log = logging.getLogger("automagik_telemetry")

SUPERVISE_EVERY: Final = 0.2
CRASH_LOOP_WINDOW: Final = 5.0  # a writer failing sooner than this after its start is looping


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def spawn_writer(
    settings: WriterSettings, pass_fds: tuple[int, ...] = ()
) -> subprocess.Popen[bytes]:
    """Start the writer in a fresh interpreter (spawned, never forked) in its own session, so a
    Ctrl-C aimed at the application does not stop it from draining."""
    env = dict(os.environ)
    root = _package_root()
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    # Batch bodies are large and short-lived: keep freed memory in the writer's heap rather than
    # handing it back to the kernel and faulting it in again (page faults dominate otherwise).
    env.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 * 1024 * 1024))
    env.setdefault("MALLOC_TRIM_THRESHOLD_", str(1024 * 1024 * 1024))
    import multiprocessing.spawn

    process = subprocess.Popen(
        [multiprocessing.spawn.get_executable(), "-m", "automagik_telemetry.writer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        close_fds=True,
        pass_fds=pass_fds,
        start_new_session=True,
    )
    assert process.stdin is not None
    process.stdin.write(msgspec.json.encode(settings))
    process.stdin.close()
    return process


class Supervisor:
    """The writer of one ring (and the writers of adopted segments)."""

    def __init__(
        self,
        ring_writer: RingWriter,
        settings: WriterSettings,
        warn_once: Callable[[str, str], None],
    ) -> None:
        self.ring = ring_writer
        self.settings = settings
        self._warn_once = warn_once
        self.writer: subprocess.Popen[bytes] | None = None
        self.adopted: list[subprocess.Popen[bytes]] = []
        self.restarts = 0
        self.last_error: str | None = None
        self._messages_seen = 0
        self._started_at = 0.0
        self._crash_streak = 0
        self._closed = False
        #: called on every pass (the client passes on what the writer learnt: tables
        #: without attributes, ``Producer.leave_out``)
        self.on_tick: Callable[[], None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="automagik-telemetry-supervisor", daemon=True
        )

    def start(self) -> None:
        self.writer = spawn_writer(self.settings)
        self._started_at = time.monotonic()
        self._thread.start()
        try:
            self._adopt_orphans()
        except Exception as exc:  # adoption is a courtesy: it never stops this client
            log.debug("looking for segments left behind failed: %s", exc)

    @property
    def writer_alive(self) -> bool:
        return self.writer is not None and self.writer.poll() is None

    def _run(self) -> None:
        while not self._stop.wait(SUPERVISE_EVERY):
            self.relay_messages()
            if self.on_tick is not None:
                with contextlib.suppress(ValueError):  # the ring was released meanwhile
                    self.on_tick()
            if self.adopted:  # reap the writers of adopted segments once they are done
                self.adopted = [p for p in self.adopted if p.poll() is None]
            writer = self.writer
            if writer is not None and writer.poll() is not None and not self._closed:
                pause = self._crash_loop_pause(writer.returncode)
                if pause and self._stop.wait(pause):
                    return
                if not self._closed:
                    self._restart(writer.returncode)

    def _crash_loop_pause(self, returncode: int | None) -> float:
        """A writer killed by a signal is restarted at once. One that failed by itself soon
        after it started is in a crash loop: wait 0.2 s, doubling up to 30 s, between tries."""
        lived = time.monotonic() - self._started_at
        if (returncode is not None and returncode < 0) or lived > CRASH_LOOP_WINDOW:
            self._crash_streak = 0
            return 0.0
        self._crash_streak += 1
        return min(SUPERVISE_EVERY * float(1 << min(self._crash_streak - 1, 8)), 30.0)

    def _restart(self, returncode: int | None) -> None:
        """The writer died: start another one, which resumes from the committed tail."""
        self.restarts += 1
        self._warn_once(
            f"writer-died-{min(self.restarts, 2)}",
            f"the writer process exited with code {returncode}; restarting it "
            f"(restart {self.restarts}); rows in the ring are kept",
        )
        self.writer = spawn_writer(self.settings)
        self._started_at = time.monotonic()

    def relay_messages(self) -> None:
        """Log, through the application's ``logging``, what the writer published since."""
        try:
            self._messages_seen, messages = self.ring.messages.read(self._messages_seen)
        except ValueError:  # the ring was released (shut down) meanwhile
            return
        for level, text in messages:
            if level >= logging.WARNING:
                self.last_error = text
            log.log(level, "%s", text)

    def _adopt_orphans(self) -> None:
        """Deliver what earlier applications of this destination left in shared memory when
        they and their writers both died (a SIGKILL to both, say): a segment whose writer lock
        is free, whose application is gone and whose identity names this destination gets a
        writer of its own, which delivers (or spools) its rows, then unlinks it. The writer
        inherits the lock, so two clients never adopt the same segment."""
        mine = self.settings
        if sink_spec(mine.backend).single_session:  # one process opens an embedded database
            return
        for name in ring.segment_names():
            if name == mine.segment:
                continue
            fd = ring.lock_segment(name)
            if fd is None:  # a writer holds it, or it is not ours to open
                continue
            try:
                found = ring.read_identity(fd)
                if found is None or not found[1] or process_alive(found[0]):
                    continue
                pid, stored = found[0], msgspec.json.decode(found[1], type=WriterSettings)
                if stored.destination != mine.destination:
                    continue
                settings = msgspec.structs.replace(
                    stored, segment=name, producer_pid=pid, lock_fd=fd, verbose=mine.verbose,
                    sink=stored.sink.with_credentials_of(mine.sink),
                )  # fmt: skip
                self.adopted.append(spawn_writer(settings, pass_fds=(fd,)))
                log.warning(
                    "delivering the rows left in shared memory (%s) by process %d, which died "
                    "with its writer", name, pid,
                )  # fmt: skip
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.debug("segment %s has an identity this version cannot read: %s", name, exc)
            finally:
                os.close(fd)

    def stop(self, grace: float) -> bool:
        """Stop supervising; give the writer ``grace`` seconds to exit (it was asked through
        the segment). A writer still delivering keeps going on its own for a bounded time and
        unlinks the segment when it exits. True when the writer is gone."""
        self._closed = True
        writer = self.writer
        if writer is not None:
            try:
                writer.wait(grace)
            except subprocess.TimeoutExpired:
                threading.Thread(target=writer.wait, daemon=True).start()
        for adopted in self.adopted:  # writers of segments left behind, finishing their work
            try:
                adopted.wait(0.5)
            except subprocess.TimeoutExpired:
                threading.Thread(target=adopted.wait, daemon=True).start()
        self.adopted = []
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(1.0)
        self.relay_messages()
        return writer is None or writer.poll() is not None
