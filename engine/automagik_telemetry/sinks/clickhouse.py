"""ClickHouse over its HTTP interface: plan inserts, learn what the server accepts, read errors.

Requests are planned by pure functions (``insert_url``, ``auth_headers``, ``classify``) and sent
by ``ClickHouseSink``. Credentials go in ``X-ClickHouse-User`` / ``X-ClickHouse-Key``, never in
the URL, and no message this module produces contains the password.

Facts about servers this relies on (measured against 18.16 and current releases):
* 18.16 reads only gzip and deflate request bodies (lz4/zstd answer code 89), knows no
  ``insert_deduplication_token`` and no ``input_format_json_read_*`` settings, and answers 404
  for an unknown setting. So the sink asks ``system.settings`` once which settings exist and
  probes which codecs the server reads, and sends only those.
* A ClickHouse answer of 200 can still carry an exception: ``X-ClickHouse-Exception-Code``.
* ``input()`` (19.15 and newer) lets an insert carry the shared columns once, as constants
  (``insert_plan``); 18.16 lacks it (``system.table_functions`` says so), and gets rows
  completed with them, as before. Query parameters (``{name:Type}`` with ``param_name``) came
  in 19.11, before ``input()``: a server with ``input()`` knows them.
* The tables' columns are learnt once (``system.columns``): no field a table lacks is sent.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Final

import urllib3

from .._net import is_loopback
from ..retry import RETRYABLE_STATUS as SHARED_RETRYABLE_STATUS
from ..transport import (
    USER_AGENT,
    Codec,
    HttpClient,
    Outcome,
    Prepared,
    codec,
    connection_failure,
    parse_retry_after,
)
from .insert_plan import (
    Column,
    InsertPlan,
    Plans,
    columns_query,
    parse_columns,
    plan_insert,
    sql_string,
)

# ClickHouse answers 500 for errors that pass (a merge, a replica): worth another attempt.
RETRYABLE_STATUS: Final = SHARED_RETRYABLE_STATUS | {500}

# Settings sent with every insert when the server knows them.
INSERT_SETTINGS: Final = {
    "input_format_skip_unknown_fields": "1",
    "input_format_defaults_for_omitted_fields": "1",
    "insert_sample_with_metadata": "1",  # the name of the setting above before 19.x
    "input_format_null_as_default": "1",
    "input_format_json_read_numbers_as_strings": "1",
    "input_format_json_read_bools_as_strings": "1",
    "input_format_json_read_objects_as_strings": "1",
    "input_format_json_read_arrays_as_strings": "1",
}
DEDUP_SETTING: Final = "insert_deduplication_token"

# ClickHouse exception codes.
# unknown user, wrong password, ..., readonly user (164), access denied (497)
AUTH_CODES: Final = frozenset({164, 192, 193, 194, 195, 497, 516})
UNKNOWN_TABLE_CODES: Final = frozenset({60, 81})  # unknown table, unknown database
# the table's columns are not those learnt (altered since): learn them again and retry
# 16 no such column in table, 47 unknown identifier
CHANGED_COLUMNS_CODES: Final = frozenset({16, 47})
RETRYABLE_CODES: Final = frozenset({159, 202, 203, 209, 210, 252, 394, 241})
# 159 timeout, 202 too many simultaneous queries, 209/210 socket, 252 too many parts,
# 394 query cancelled, 241 memory limit
# The server could not take what the insert holds (a value it cannot parse or convert, an enum
# element it does not know): the same bytes will be refused again, other inserts may pass.
# 6 cannot parse text, 26 quoted string, 27 input assertion, 32/33 truncated input, 36 bad
# arguments, 38/41 date/datetime, 49 logical error (18.16's unknown enum element), 53 type
# mismatch, 69 argument out of bound, 70 cannot convert type, 72 number, 117 incorrect data,
# 130 array, 131 string too large, 321 value out of range, 407 decimal overflow, 691 unknown
# enum element (22.x+)
REFUSED_CONTENT_CODES: Final = frozenset(
    {6, 26, 27, 32, 33, 36, 38, 41, 49, 53, 69, 70, 72, 117, 130, 131, 321, 407, 691}
)

CODEC_PREFERENCE: Final = ("lz4", "zstd", "gzip")
# What the server accepts, and the tables' columns, are learnt again this often (seconds): a
# column added to a table (ALTER TABLE ... ADD COLUMN) is then filled without a restart.
RELEARN_AFTER: Final = 300.0


def insert_url(
    endpoint: str,
    table: str,
    settings: Mapping[str, str],
    plan: InsertPlan | None = None,
) -> str:
    """The URL of one insert: its statement, its settings and (constants path) the values of
    the statement's parameters, each ``param_<name>``."""
    if plan is None or not plan.constants:
        query = f"INSERT INTO {table} FORMAT JSONEachRow"
        return f"{endpoint}/?{urllib.parse.urlencode({'query': query, **settings})}"
    query = plan.statement(f"input({sql_string(plan.structure)}) FORMAT JSONEachRow")
    params = {"query": query, **settings}
    params.update({f"param_{name}": value for name, value in plan.params.items()})
    return f"{endpoint}/?{urllib.parse.urlencode(params)}"


def auth_headers(username: str, password: str) -> dict[str, str]:
    return {"X-ClickHouse-User": username, "X-ClickHouse-Key": password, "User-Agent": USER_AGENT}


def server_message(body: bytes) -> str:
    """The first line of a ClickHouse error body, trimmed of the stack-trace boilerplate."""
    text = body.decode("utf-8", "replace").strip()
    for marker in (", e.what() = DB::Exception", " (version "):
        cut = text.find(marker)
        if cut > 0:
            text = text[:cut]
    return " ".join(text.split())[:600]


def exception_code(response: urllib3.BaseHTTPResponse) -> int | None:
    header = response.headers.get("X-ClickHouse-Exception-Code")
    if header and header.strip().isdigit():
        return int(header)
    body = response.data[:200].decode("utf-8", "replace")
    if body.startswith("Code: "):
        digits = body[6:].split(".", 1)[0].split(",", 1)[0].strip()
        if digits.isdigit():
            return int(digits)
    return None


@dataclass(frozen=True)
class Target:
    """One table and what trouble with it should tell the operator."""

    database: str
    table: str

    @property
    def qualified(self) -> str:
        return f"{self.database}.{self.table}"


def classify(
    response: urllib3.BaseHTTPResponse, *, endpoint: str, username: str, target: Target | None
) -> Outcome:
    """Turn a ClickHouse answer into an Outcome, with the server's message and the fix."""
    status = response.status
    code = exception_code(response)
    if status == 200 and code is None:
        return Outcome.delivered(status)
    message = server_message(response.data) or f"HTTP {status}"
    where = f"ClickHouse at {endpoint}"
    if status in (401, 403) or code in AUTH_CODES:
        return Outcome(
            ok=False,
            retryable=False,
            status=status,
            key="auth",
            message=(
                f"{where} refused user {username!r}: {message}. Fix: set clickhouse_username and "
                "clickhouse_password (or AUTOMAGIK_TELEMETRY_CLICKHOUSE_USERNAME / _PASSWORD) to "
                "an account that may insert; the rows are kept and sent once it works"
            ),
        )
    if code in UNKNOWN_TABLE_CODES:
        name = target.qualified if target else "the table"
        return Outcome(
            ok=False,
            retryable=False,
            status=status,
            key=f"missing:{name}",
            message=(
                f"{where} has no table {name}: {message}. Fix: run `automagik-telemetry schema "
                "--apply` (or infra/clickhouse/schema.sql) or point clickhouse_database / "
                "clickhouse_*table at existing tables; the rows are kept and sent once it exists"
            ),
        )
    name = target.qualified if target else "the table"
    if code in CHANGED_COLUMNS_CODES and target is not None:
        return Outcome(
            ok=False,
            retryable=True,
            status=status,
            key=f"columns:{name}",
            message=(
                f"{where} has other columns in {name} than it had: {message}; learning them "
                "again and retrying (the rows are kept)"
            ),
        )
    if code in REFUSED_CONTENT_CODES or status == 413:
        return Outcome(
            ok=False,
            retryable=False,
            status=status,
            key=f"rejected:{code}",
            refused_content=status != 413,
            too_large=status == 413,
            message=(
                f"{where} rejected the insert into {name} (HTTP {status}): {message}. Fix: make "
                "the table's columns match infra/clickhouse/schema.sql"
            ),
        )
    if status in RETRYABLE_STATUS or (code in RETRYABLE_CODES) or (status >= 500 and code is None):
        return Outcome(
            ok=False,
            retryable=True,
            status=status,
            key=f"server:{status}:{code}",
            retry_after=parse_retry_after(response.headers),
            message=f"{where} answered {status}: {message}; retrying",
        )
    return Outcome(
        ok=False,
        retryable=False,
        status=status,
        key=f"rejected:{code}",
        message=(
            f"{where} rejected the insert into {name} (HTTP {status}): {message}. Fix: make "
            "the table's columns match infra/clickhouse/schema.sql; the rows are kept"
        ),
    )


def connection_outcome(exc: Exception, endpoint: str) -> Outcome:
    return connection_failure(
        exc,
        lambda cause: (
            f"cannot reach ClickHouse at {endpoint}: {cause}. Fix: start the server or set "
            "clickhouse_endpoint (AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT); rows are kept and "
            "retried"
        ),
    )


class _NoAnswer(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


@dataclass
class ServerFacts:
    version: str = ""
    settings: frozenset[str] = frozenset()
    codecs: tuple[str, ...] = ("gzip",)
    known: bool = False
    has_input: bool = False  # the input() table function (19.15+)
    learned_at: float = 0.0  # monotonic time of the discovery
    #: the tables' columns, by table name (a table missing here: not known, rows go whole)
    columns: Mapping[str, Mapping[str, Column]] = field(default_factory=dict)

    @property
    def major(self) -> tuple[int, int]:
        parts = self.version.split(".")
        try:
            return int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            return 0, 0


@dataclass
class ClickHouseSink:
    """Inserts JSONEachRow batches into the configured tables."""

    endpoint: str
    database: str
    tables: Mapping[int, str]  # ring kind -> table name
    username: str
    password: str
    http: HttpClient
    compression: str = "auto"  # auto | lz4 | gzip | zstd | none
    compression_threshold: int = 1024
    row_suffixes: tuple[bytes, bytes, bytes] = (b"}\n", b"}\n", b"}\n")
    facts: ServerFacts = field(default_factory=ServerFacts)
    #: False: never the constants path (the bench's comparison of the two)
    constants: bool = True
    _codec: Codec | None = None
    _plans: Plans | None = None

    name = "clickhouse"

    # --- discovery

    def query(self, sql: str) -> urllib3.BaseHTTPResponse:
        return self.http.post(
            f"{self.endpoint}/", sql.encode(), auth_headers(self.username, self.password)
        )

    def discover(self) -> Outcome:
        """Learn the server's version, settings and codecs (once; again after a failure)."""
        facts = self.facts
        if facts.known:
            if time.monotonic() - facts.learned_at < RELEARN_AFTER:
                return Outcome.delivered()
            if not self._learn().ok:  # what was learnt still holds: learn again later
                facts.learned_at = time.monotonic()
            return Outcome.delivered()
        return self._learn()

    def _learn(self) -> Outcome:
        names = ", ".join(f"'{s}'" for s in (*INSERT_SETTINGS, DEDUP_SETTING))
        sql = (
            "SELECT version(), name FROM system.settings "
            f"WHERE name IN ({names}) FORMAT TabSeparated"
        )
        try:
            response = self.query(sql)
        except urllib3.exceptions.HTTPError as exc:
            return connection_outcome(exc, self.endpoint)
        outcome = classify(response, endpoint=self.endpoint, username=self.username, target=None)
        if not outcome.ok:
            return outcome
        lines = [line.split("\t") for line in response.data.decode().splitlines() if line]
        version = lines[0][0] if lines else ""
        if not version:  # no setting matched: ask for the version alone
            try:
                version = self.query("SELECT version()").data.decode().strip()
            except urllib3.exceptions.HTTPError as exc:
                return connection_outcome(exc, self.endpoint)
        settings = frozenset(line[1] for line in lines if len(line) > 1)
        answers = {c: self._accepts(c) for c in CODEC_PREFERENCE}
        if None in answers.values():  # a probe got no real answer (429, 503, timeout)
            return Outcome(
                ok=False, retryable=True, key="probe",
                message=f"ClickHouse at {self.endpoint} did not answer the codec probes; retrying",
            )  # fmt: skip
        codecs = tuple(c for c, ok in answers.items() if ok)
        # an account that may insert but not read these system tables still gets its rows
        # in, the old way (every field sent, the server skips what it lacks)
        try:
            has_input = self._ask(
                "SELECT count() FROM system.table_functions WHERE name = 'input'"
            ).strip() not in (b"", b"0")
            tables = [*self.tables.values()]
            columns = parse_columns(self._ask(columns_query(self.database, tables)))
        except _NoAnswer as exc:
            if exc.outcome.retryable:
                return exc.outcome
            has_input, columns = False, {}
        self.facts = ServerFacts(
            version, settings, codecs or ("gzip",), True, has_input, time.monotonic(), columns
        )
        self._codec = codec(self._pick_codec())
        self._plan_inserts()
        return Outcome.delivered()

    def _plan_inserts(self) -> None:
        facts = self.facts
        constants = facts.has_input and self.constants

        def build(kind: int, suffix: bytes) -> InsertPlan:
            table = self.tables[kind]
            columns = facts.columns.get(table)
            return plan_insert(kind, self.target(kind).qualified, suffix, columns,
                               constants=constants)  # fmt: skip

        self._plans = Plans(build, self.row_suffixes)

    def origin(self, kind: int) -> str:
        return self.row_suffixes[kind].decode("utf-8")

    def unstored_attributes(self) -> int:
        """A bit per ring kind whose table has no ``attributes`` column (18.16's legacy
        tables): the producer then leaves them out of the rows (``Producer.leave_out``)."""
        return self._plans.unstored("attributes") if self._plans is not None else 0

    def _leave_constants(self, outcome: Outcome, said: str) -> Outcome:
        """The server refused an insert through ``input()`` for a reason other than access, a
        missing table, a request too large or passing trouble: from now on this sink sends
        completed rows (the way every server takes), and the batch is prepared again that way.
        A refusal of the rows themselves is then met again, and set aside, on that way."""
        self.constants = False
        self._plan_inserts()
        return Outcome(
            ok=False,
            retryable=True,
            replan=True,
            status=outcome.status,
            key="constants-refused",
            message=(
                f"ClickHouse at {self.endpoint} refused an insert through input() with its "
                f"shared columns as query parameters (HTTP {outcome.status}): {said}. "
                "From now on rows are sent with every column (the way every server takes); the "
                "batch is sent again that way, nothing is lost. Please report this server's "
                f"version ({self.facts.version or 'unknown'}) to automagik-telemetry"
            ),
        )

    def _ask(self, sql: str) -> bytes:
        """The answer to a discovery query, or ``_NoAnswer`` with why not."""
        try:
            response = self.query(sql)
        except urllib3.exceptions.HTTPError as exc:
            raise _NoAnswer(connection_outcome(exc, self.endpoint)) from exc
        outcome = classify(response, endpoint=self.endpoint, username=self.username, target=None)
        if not outcome.ok:
            raise _NoAnswer(outcome)
        return response.data

    def _accepts(self, name: str) -> bool | None:
        """Whether the server reads request bodies in this codec; None when it gave no real
        answer (busy, down): ask again later rather than decide for good."""
        if name == "gzip":
            return True
        try:
            body = codec(name).compress(b"SELECT 1")
        except ImportError:
            return False
        try:
            response = self.http.post(
                f"{self.endpoint}/",
                body,
                {**auth_headers(self.username, self.password), "Content-Encoding": name},
            )
        except urllib3.exceptions.HTTPError:
            return None
        if response.status == 200:
            return response.data.strip() == b"1"
        code = exception_code(response)
        if code is not None and code not in RETRYABLE_CODES:
            return False  # a ClickHouse answer: 89 is "unknown Content-Encoding" (HTTP 500)
        if response.status in RETRYABLE_STATUS or code in RETRYABLE_CODES:
            return None
        return False

    def _pick_codec(self) -> str:
        wanted = self.compression
        if wanted == "none":
            return "none"
        if wanted == "auto":
            if is_loopback(self.endpoint):
                return "none"  # on this machine compression costs CPU and saves nothing
            return "lz4" if "lz4" in self.facts.codecs else "gzip"
        return wanted if wanted in self.facts.codecs else "gzip"

    @property
    def codec_name(self) -> str:
        return self._codec.name if self._codec else "?"

    def insert_settings(self, token: str | None) -> dict[str, str]:
        known = self.facts.settings
        chosen = {k: v for k, v in INSERT_SETTINGS.items() if k in known}
        if token and DEDUP_SETTING in known:
            chosen[DEDUP_SETTING] = token
        return chosen

    # --- inserts

    def target(self, kind: int) -> Target:
        return Target(self.database, self.tables[kind])

    def prepare(
        self, kind: int, body: bytes | bytearray, token: str | None, origin: str = ""
    ) -> Prepared:
        """URL, wire body and headers of one insert; the body is compressed here, once."""
        assert self._codec is not None and self._plans is not None, "discover() first"
        plan = self._plans.for_batch(kind, origin)
        body = plan.rows(bytes(body))
        headers = auth_headers(self.username, self.password)
        headers["Content-Type"] = "application/x-ndjson"
        if len(body) >= self.compression_threshold and self._codec.content_encoding:
            wire = self._codec.compress(body)
            headers["Content-Encoding"] = self._codec.content_encoding
        else:
            wire = body  # sent as it is: no copy
        url = insert_url(
            self.endpoint, self.target(kind).qualified, self.insert_settings(token), plan
        )
        return Prepared(kind, wire, url, headers, len(body))

    def send(self, prepared: Prepared) -> Outcome:
        try:
            response = self.http.post(prepared.url, prepared.wire, prepared.headers)
        except urllib3.exceptions.HTTPError as exc:
            return connection_outcome(exc, self.endpoint)
        outcome = classify(
            response,
            endpoint=self.endpoint,
            username=self.username,
            target=self.target(prepared.kind),
        )
        if outcome.key.startswith("missing:") or outcome.key.startswith("columns:"):
            # the tables are not what discovery saw: learn them again before the next attempt
            self.facts = ServerFacts()
            return replace(outcome, replan=True)
        if (
            not outcome.ok
            and not outcome.retryable
            and not outcome.too_large
            and outcome.key != "auth"
            and self._plans is not None
            and self._plans[prepared.kind].constants  # so was this request (never turns back)
        ):
            return self._leave_constants(outcome, server_message(response.data))
        return outcome

    def close(self) -> None:
        self.http.close()


# --- schema ---------------------------------------------------------------------------------

MIN_SCHEMA_VERSION: Final = (22, 8)


def schema_sql(*, legacy: bool = False) -> str:
    name = "clickhouse-legacy.sql" if legacy else "clickhouse.sql"
    return resources.files("automagik_telemetry").joinpath("schema", name).read_text("utf-8")


def schema_statements(
    database: str = "telemetry",
    traces: str = "traces",
    metrics: str = "metrics",
    logs: str = "logs",
    *,
    legacy: bool = False,
) -> list[str]:
    """The schema's statements, with the configured database and table names."""
    text = "\n".join(
        line
        for line in schema_sql(legacy=legacy).splitlines()
        if not line.lstrip().startswith("--")
    )
    renames = {
        "telemetry.traces": f"{database}.{traces}",
        "telemetry.metrics": f"{database}.{metrics}",
        "telemetry.logs": f"{database}.{logs}",
        "DATABASE IF NOT EXISTS telemetry": f"DATABASE IF NOT EXISTS {database}",
    }
    for old, new in renames.items():
        text = text.replace(old, new)
    return [s.strip() for s in text.split(";") if s.strip()]
