"""A scriptable HTTP front for fault tests: a real socket server on loopback in front of a real
server (not a mock of the client).

Each request the front reads is either answered from its script (``Answer(429,
retry_after=1)``, ``Answer(503, delay=0.5)``, ``DROP`` to close the connection without an
answer), or passed through to the upstream server with ``http.client`` and the upstream's answer
relayed. One-shot hooks act on a passed-through request: ``kill_during`` sends part of its body
upstream, calls the hook (e.g. SIGKILL the server) and carries on, which kills a server in the
middle of a batch deterministically; ``before_answer`` calls the hook once the upstream has
answered, before relaying the answer (e.g. SIGKILL the client's writer: the server has the
batch, the client never learns it). When the upstream cannot be reached the front answers 502,
like a real load balancer.

Holds slow the destination down without refusing anything: ``delay(3.0)`` forwards each insert
only 3 s after it was read (a server that answers late), ``throttle(25_000)`` lets inserts through
one at a time, each after ``rows / 25,000`` s (a server that takes 25,000 rows/s however many
requests are in flight). A request whose client gave up during its hold (timed out and closed the
connection) is not forwarded: the upstream never sees it, so a held request cannot be stored
behind the client's back. ``release()`` ends the hold and wakes every request waiting in it.

Every exchange is logged (when the request was read, when and how it was answered), so a test can
check how the client behaved, e.g. that it waited out a ``Retry-After``.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import time
import urllib.parse
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final

HOP_BY_HOP: Final = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "trailers", "transfer-encoding", "upgrade", "content-length", "host"}
)  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """A scripted answer: status, optional ``Retry-After`` (seconds) and body."""

    status: int
    retry_after: float | None = None
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before answering (a slow front)

    def headers(self) -> list[tuple[str, str]]:
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if self.retry_after is not None:
            headers.append(("Retry-After", f"{self.retry_after:g}"))
        return headers


DROP: Final = "drop"  # a script step: close the connection without answering
COMPRESSED_BYTES_PER_ROW: Final = 12  # an LZ4-framed row of a numbered event, measured


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> str:
        """The SQL in the ``query`` URL parameter (ClickHouse inserts), or the body (selects)."""
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)
        if "query" in params:
            return params["query"][0]
        return self.body[:200].decode("utf-8", "replace")

    @property
    def is_insert(self) -> bool:
        return self.query.lstrip().upper().startswith("INSERT")

    @property
    def compressed(self) -> bool:
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)
        encoding = {k.lower(): v for k, v in self.headers.items()}.get("content-encoding", "")
        return bool(encoding and encoding != "identity") or params.get("decompress") == ["1"]

    @property
    def rows(self) -> int:
        """Rows in the body of an insert: JSONEachRow ends every row with a newline. A
        compressed body is counted at ``COMPRESSED_BYTES_PER_ROW`` (the client sends
        uncompressed bodies to a server on loopback, so this is a fallback)."""
        if not self.is_insert:
            return 0
        if self.compressed:
            return max(1, len(self.body) // COMPRESSED_BYTES_PER_ROW)
        return self.body.count(b"\n")


def inserts(request: Request) -> bool:
    """The requests holds apply to by default: inserts (the client's discovery queries and
    the tests' own queries pass)."""
    return request.is_insert


@dataclass(frozen=True)
class Exchange:
    """One request and what the front did with it."""

    received: float  # time.monotonic() when the whole request was read
    answered: float  # when the answer was written (or the connection dropped)
    method: str
    query: str
    insert: bool
    action: str  # scripted | forwarded | dropped | upstream-error | hooked | client-gone
    status: int | None  # None when no answer was sent
    retry_after: float | None = None
    body_crc: int = 0  # CRC-32 of the request body: a batch sent twice has the same one
    body_length: int = 0
    body: bytes = field(default=b"", repr=False)  # kept with HttpFront(keep_bodies=True)
    rows: int = 0  # rows of an insert (see Request.rows)
    held: float = 0.0  # seconds the request waited in a hold before it went on


@dataclass
class _KillHook:
    when: Callable[[Request], bool]
    fraction: float
    hook: Callable[[], object]


@dataclass
class _Hold:
    seconds: Callable[[Request], float]
    only: Callable[[Request], bool]
    serial: bool  # one request at a time through the hold (a link of fixed capacity)
    released: threading.Event = field(default_factory=threading.Event)
    link: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Script:
    steps: deque[tuple[Answer | str, Callable[[Request], bool] | None]] = field(
        default_factory=deque
    )


class HttpFront:
    """``with HttpFront("http://127.0.0.1:8123") as front: ... front.url ...``"""

    def __init__(
        self, upstream: str, *, upstream_timeout: float = 60.0, keep_bodies: bool = False
    ) -> None:
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port
        self.upstream_timeout = upstream_timeout
        self.keep_bodies = keep_bodies
        self._lock = threading.Lock()
        self._script = _Script()
        self._kill: _KillHook | None = None
        self._hold: _Hold | None = None
        self._exchanges: list[Exchange] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> HttpFront:
        front = self

        class Handler(_Handler):
            owner = front

        server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name="http-front",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def __enter__(self) -> HttpFront:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the script ----------------------------------------------------------------------------

    def script(self, *steps: Answer | str, only: Callable[[Request], bool] | None = None) -> None:
        """Answer the next requests (those ``only`` accepts, all when None) with ``steps``, in
        order, one each; requests beyond the script pass through."""
        with self._lock:
            for step in steps:
                if not isinstance(step, Answer) and step != DROP:
                    raise ValueError(f"not a script step: {step!r}")
                self._script.steps.append((step, only))

    def clear_script(self) -> None:
        """Drop what is left of the script: from now on everything passes through."""
        with self._lock:
            self._script.steps.clear()

    @property
    def script_left(self) -> int:
        with self._lock:
            return len(self._script.steps)

    def kill_during(
        self, hook: Callable[[], None], *, when: Callable[[Request], bool], fraction: float = 0.5
    ) -> None:
        """Once: while passing through the first request ``when`` accepts, send ``fraction`` of
        its body upstream, call ``hook`` (e.g. SIGKILL the server), then go on as the upstream
        lets it (the client gets no answer if the upstream died)."""
        with self._lock:
            self._kill = _KillHook(when, fraction, hook)

    def before_answer(self, hook: Callable[[], object], *, when: Callable[[Request], bool]) -> None:
        """Once: pass the first request ``when`` accepts through, and when the upstream has
        answered, call ``hook`` (e.g. SIGKILL the client's writer) before relaying the answer:
        the server has the batch, the client never learns it. A hook that blocks (waits on an
        event) holds that answer back while other requests go on."""
        with self._lock:
            self._kill = _KillHook(when, -1.0, hook)

    def delay(self, seconds: float, *, only: Callable[[Request], bool] = inserts) -> None:
        """From now on, hold each request ``only`` accepts (inserts by default) ``seconds``
        before forwarding it: a server that answers every insert that much later. Requests are
        held side by side (two in flight each wait ``seconds``)."""
        self._set_hold(_Hold(lambda _request: seconds, only, serial=False))

    def throttle(self, rows_per_s: float, *, only: Callable[[Request], bool] = inserts) -> None:
        """From now on, let the requests ``only`` accepts (inserts by default) through one at a
        time, each held ``rows / rows_per_s`` seconds: the destination takes ``rows_per_s`` rows
        a second however many requests the client has in flight (a request waits for those
        ahead of it, then for its own rows)."""
        if rows_per_s <= 0:
            raise ValueError(f"rows_per_s must be positive, got {rows_per_s}")
        self._set_hold(_Hold(lambda request: request.rows / rows_per_s, only, serial=True))

    def release(self) -> None:
        """End the hold: requests waiting in it go on at once, new ones are not held."""
        with self._lock:
            hold, self._hold = self._hold, None
        if hold is not None:
            hold.released.set()

    def _set_hold(self, hold: _Hold) -> None:
        with self._lock:
            previous, self._hold = self._hold, hold
        if previous is not None:
            previous.released.set()

    @property
    def hook_armed(self) -> bool:
        """A one-shot hook is waiting for its request."""
        with self._lock:
            return self._kill is not None

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    # -- used by the handler -------------------------------------------------------------------

    def _next_step(self, request: Request) -> Answer | str | None:
        with self._lock:
            steps = self._script.steps
            for index, (step, only) in enumerate(steps):
                if only is None or only(request):
                    del steps[index]
                    return step
            return None

    def _take_kill(self, request: Request) -> _KillHook | None:
        with self._lock:
            kill = self._kill
            if kill is not None and kill.when(request):
                self._kill = None
                return kill
            return None

    def _take_hold(self, request: Request) -> _Hold | None:
        with self._lock:
            hold = self._hold
        return hold if hold is not None and hold.only(request) else None

    def _log(self, exchange: Exchange) -> None:
        with self._lock:
            self._exchanges.append(exchange)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-request is part of the tests, not an error


class _Handler(BaseHTTPRequestHandler):
    owner: HttpFront
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients under test expect

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, dict(self.headers.items()), body)
        received = time.monotonic()
        owner = self.owner
        step = owner._next_step(request)
        held = 0.0
        try:
            hold = owner._take_hold(request) if step is None else None
            if hold is not None:
                held = self._wait(hold, request)
            if hold is not None and self._client_gone():
                action, status, retry_after = "client-gone", None, None
                self.close_connection = True
            elif step is None:
                action, status = self._forward(request, owner._take_kill(request))
                retry_after = None
            elif step == DROP:
                action, status, retry_after = "dropped", None, None
                self.close_connection = True
            else:
                assert isinstance(step, Answer)
                if step.delay:
                    time.sleep(step.delay)
                self._answer(step.status, step.headers(), step.body)
                action, status, retry_after = "scripted", step.status, step.retry_after
        except OSError:  # the client went away (e.g. its read timed out)
            action, status, retry_after = "client-gone", None, None
            self.close_connection = True
        owner._log(Exchange(received, time.monotonic(), request.method, request.query,
                            request.is_insert, action, status, retry_after,
                            zlib.crc32(body), len(body),
                            body if owner.keep_bodies else b"", request.rows,
                            held))  # fmt: skip

    def _wait(self, hold: _Hold, request: Request) -> float:
        """Wait out ``hold`` for ``request`` (cut short by ``release()``); the seconds waited."""
        started = time.monotonic()
        if hold.serial:
            with hold.link:
                if not hold.released.is_set():
                    hold.released.wait(hold.seconds(request))
        else:
            hold.released.wait(hold.seconds(request))
        return time.monotonic() - started

    def _client_gone(self) -> bool:
        """The client closed its end (it gave up on this request): readable with nothing to
        read. HTTP/1.1 clients send no second request before the answer to the first."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _forward(self, request: Request, kill: _KillHook | None) -> tuple[str, int | None]:
        owner = self.owner
        upstream = http.client.HTTPConnection(
            owner.upstream_host, owner.upstream_port, timeout=owner.upstream_timeout
        )
        try:
            try:
                upstream.putrequest(request.method, request.target, skip_accept_encoding=True)
                for name, value in request.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        upstream.putheader(name, value)
                upstream.putheader("Content-Length", str(len(request.body)))
                upstream.endheaders()
                if kill is not None and kill.fraction >= 0:
                    cut = int(len(request.body) * kill.fraction)
                    upstream.send(request.body[:cut])
                    kill.hook()
                    with contextlib.suppress(OSError):
                        upstream.send(request.body[cut:])
                elif request.body:
                    upstream.send(request.body)
                response = upstream.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                if kill is not None and kill.fraction >= 0:
                    # the server died under the request: so does the answer
                    self.close_connection = True
                    return "hooked", None
                message = f"bad gateway: {type(exc).__name__}: {exc}".encode()
                self._answer(502, [("Content-Type", "text/plain")], message)
                return "upstream-error", 502
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            if kill is None:
                self._answer(response.status, headers, data)
                return "forwarded", response.status
            kill.hook()
            try:
                self._answer(response.status, headers, data)
            except OSError:  # the hook killed the client
                self.close_connection = True
                return "hooked", None
            return "hooked", response.status
        finally:
            upstream.close()
