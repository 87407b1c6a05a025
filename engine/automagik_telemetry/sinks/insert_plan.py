"""How a batch of own-field rows becomes one ClickHouse insert (HTTP and embedded alike).

The ring holds each row's *own* fields (what one track call knows); the ~14 columns every row of
a client shares (service, project, version, host, user, session, os, runtime, library) are
known once per client (the row suffix of ``rows/clickhouse.py``). Two ways to insert them:

* **constants** (servers with ``input()``, i.e. 19.15 and newer, and chdb): the rows travel as
  they are, and the shared columns go once per request as constants of a SELECT::

      INSERT INTO db.t (own..., shared...) SELECT own..., {p0:String}, ...
      FROM input('own structure') FORMAT JSONEachRow

  The constants are query parameters (``{pN:String}`` in the statement, the value beside it:
  ``param_pN`` on HTTP, ``params=`` for chdb), never spliced into the SQL text: a value cannot
  break or inject into the statement. Measured with chdb (ClickHouse 26.x): the server parses
  a third of the bytes and spends a quarter of the CPU per row.
* **completed rows** (servers without ``input()``, such as Debian's 18.16): the shared columns
  are appended to every row (``complete_rows``), as before.

Either way, only what the table holds travels: the plan is built from the table's columns,
learnt once (``system.columns``); a shared column the table lacks is not sent, and an own field
the table lacks is cut from the rows (``drop_fields``) rather than sent for the server to parse
and skip (18.16 with ``schema-legacy.sql`` has no ``attributes``). A table with other or fewer
columns than ``schema.sql`` still gets its rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ..rows.clickhouse import ROW_END, _LogRow, _MetricRow, _TraceRow, complete_rows, row_suffix

#: the fields each ring's rows may hold, in ring kind order (traces, metrics, logs)
OWN_FIELDS: Final[tuple[tuple[str, ...], ...]] = tuple(
    struct.__struct_fields__ for struct in (_TraceRow, _MetricRow, _LogRow)
)


#: a field an encoder leaves out when it holds its default: that default, when it is text (a
#: number's or a list's default is the type's own, which ``input()`` gives an omitted field)
def _omitted_text(struct: type[msgspec.Struct]) -> dict[str, str]:
    defaults = struct.__struct_defaults__
    names = struct.__struct_fields__[len(struct.__struct_fields__) - len(defaults) :]
    return {n: d for n, d in zip(names, defaults, strict=True) if isinstance(d, str) and d}


_OMITTED_TEXT: Final = tuple(_omitted_text(s) for s in (_TraceRow, _MetricRow, _LogRow))
#: columns a table computes itself: an insert may not name them
_NOT_INSERTABLE: Final = frozenset({"MATERIALIZED", "ALIAS", "EPHEMERAL"})


def sql_string(text: str) -> str:
    """A ClickHouse string literal of ``text`` (quoted, every quote and backslash escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(name: str) -> str:
    """A column name as a quoted identifier."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def param_value(text: str) -> str:
    """A query parameter's value as ClickHouse reads it: in the *escaped* format (as a TSV
    field), so a backslash, a tab or a newline is written as its escape; everything else,
    quotes and braces included, is taken as it is (measured: chdb and the HTTP interface)."""
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


def shared_columns(suffix: bytes) -> dict[str, Any]:
    """The shared columns a row suffix (``rows.clickhouse.row_suffix``) holds."""
    if suffix == ROW_END:
        return {}
    decoded = msgspec.json.decode(b"{" + suffix[1:].rstrip(b"\n"))
    assert isinstance(decoded, dict)
    return decoded


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default_kind: str = ""


class _ColumnLine(msgspec.Struct):
    table: str
    name: str
    type: str
    default_kind: str = ""


_COLUMN_LINES: Final = msgspec.json.Decoder(_ColumnLine)


def parse_columns(text: bytes) -> dict[str, dict[str, Column]]:
    """The answer to ``columns_query`` (JSONEachRow: TabSeparated would escape the quotes of
    an ``Enum8('GAUGE' = 1)``), by table, in the table's order."""
    tables: dict[str, dict[str, Column]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            c = _COLUMN_LINES.decode(line)
        except msgspec.DecodeError:
            # an answer not understood: no table's columns are known (rows go whole, as
            # before), rather than a field cut from rows because its line was not read
            return {}
        tables.setdefault(c.table, {})[c.name] = Column(c.name, c.type, c.default_kind)
    return tables


def columns_query(database: str, tables: Sequence[str]) -> str:
    """Ask for the columns of ``tables`` (literals quoted: 18.16 knows no query parameters)."""
    names = ", ".join(sql_string(t) for t in tables)
    return (
        "SELECT table, name, type, default_kind FROM system.columns "
        f"WHERE database = {sql_string(database)} AND table IN ({names}) FORMAT JSONEachRow"
    )


_ROWS_DECODER: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_ROWS_ENCODER: Final = msgspec.json.Encoder()


def drop_fields(body: bytes, names: frozenset[str]) -> bytes:
    """Rows (JSON objects, one per line) without the fields ``names``. Values are kept as their
    JSON text (never decoded). A row ends with a newline, which JSON escapes inside strings, so
    newlines only ever separate rows."""
    if not body:
        return body
    rows = _ROWS_DECODER.decode(b"[" + body.rstrip(b"\n").replace(b"\n", b",") + b"]")
    for row in rows:
        for name in names & row.keys():
            del row[name]
    return _ROWS_ENCODER.encode_lines(rows)


def drop_last_object(body: bytes, name: str) -> bytes:
    """Rows without the field ``name`` when it is an object that is the *last* field of every
    row holding it (``attributes`` of traces and metrics): one regular-expression pass, at C
    speed (~10x faster than ``drop_fields``). Sound because of what JSON allows: the key with
    its quotes cannot occur inside a string (quotes there are escaped) and, before it, a row
    holds no object (the encoders put scalars first), so its first occurrence in a row is the
    field; a row ends with ``}\n`` and holds no raw newline, so the field's value ends at the
    row's last ``}`` but one (a greedy match within the line, two characters of backtracking)."""
    return _last_object_pattern(name).sub(b"", body)


def _last_object_pattern(name: str) -> re.Pattern[bytes]:
    pattern = _PATTERNS.get(name)
    if pattern is None:
        key = re.escape(msgspec.json.encode(name))
        pattern = _PATTERNS[name] = re.compile(b"," + key + rb":\{[^\n]*\}(?=\}\n)")
    return pattern


_PATTERNS: dict[str, re.Pattern[bytes]] = {}
#: per ring kind: the field that may be cut with ``drop_last_object`` (an object, last)
_LAST_OBJECT: Final = tuple(
    fields[-1] if fields[-1] == "attributes" else "" for fields in OWN_FIELDS
)


@dataclass(frozen=True)
class InsertPlan:
    """One table's insert: the statement (without settings and FORMAT), its parameters, and
    what is done to each batch's rows."""

    table: str  # qualified
    #: (constants path) ``INSERT INTO t (cols)`` and ``SELECT ... FROM ``: the caller puts its
    #: settings between them and the data source after (``input(...)``, or ``file(...)`` for
    #: chdb); both "" on the completed-rows path
    into: str
    select: str
    structure: str  # the own fields' structure, for the data source
    params: Mapping[str, str]  # query parameters of the constants, escaped
    suffix: bytes  # (completed-rows path) what completes every row
    dropped: frozenset[str]  # own fields the table lacks: cut from every row
    columns_known: bool
    last_object: str = ""  # the one dropped field, when ``drop_last_object`` can cut it

    @property
    def constants(self) -> bool:
        return bool(self.select)

    def rows(self, body: bytes) -> bytes:
        """The batch's rows as this plan sends them."""
        if self.last_object:
            body = drop_last_object(body, self.last_object)
        elif self.dropped:
            body = drop_fields(body, self.dropped)
        if not self.constants:
            body = complete_rows(body, self.suffix)
        return body

    def statement(self, source: str, settings: str = "") -> str:
        """The constants path's statement, reading the rows from ``source``."""
        return f"{self.into} {settings}{' ' if settings else ''}{self.select}{source}"


class Plans:
    """A sink's insert plans: its own, one per ring kind, and those of batches of another
    origin (replayed from a spool file another process wrote: ``Sink.origin`` is the row
    suffix as text), built when first needed and a bounded number kept."""

    KEEP: Final = 64

    def __init__(self, build: Callable[[int, bytes], InsertPlan], suffixes: Sequence[bytes]):
        self._build = build
        self.own = {kind: build(kind, suffix) for kind, suffix in enumerate(suffixes)}
        self._origins = [suffix.decode("utf-8") for suffix in suffixes]
        self._foreign: dict[tuple[int, str], InsertPlan] = {}

    def __getitem__(self, kind: int) -> InsertPlan:
        return self.own[kind]

    def origin(self, kind: int) -> str:
        return self._origins[kind]

    def unstored(self, name: str) -> int:
        """A bit per ring kind whose table lacks the own field ``name``."""
        return sum(1 << kind for kind, plan in self.own.items() if name in plan.dropped)

    def for_batch(self, kind: int, origin: str) -> InsertPlan:
        """The plan of a batch of ``origin`` ("" or the sink's own: its own plan). An origin
        that is not a row suffix (a damaged header) gives the sink's own plan: the rows land,
        with this writer's shared columns."""
        if not origin or origin == self._origins[kind]:
            return self.own[kind]
        plan = self._foreign.get((kind, origin))
        if plan is None:
            suffix = origin.encode("utf-8")
            try:
                shared = shared_columns(suffix)
                if not isinstance(shared, dict) or not suffix.endswith(ROW_END):
                    raise ValueError(origin)
                plan = self._build(kind, suffix)
            except (ValueError, AssertionError, msgspec.DecodeError):
                return self.own[kind]
            if len(self._foreign) >= self.KEEP:
                self._foreign.clear()
            self._foreign[(kind, origin)] = plan
        return plan


def plan_insert(
    kind: int,
    table: str,
    suffix: bytes,
    columns: Mapping[str, Column] | None,
    *,
    constants: bool,
) -> InsertPlan:
    """The insert of ring ``kind``'s rows into ``table`` (qualified), whose columns are
    ``columns`` (None: not known, every field is sent, the server skips what it lacks)."""
    shared = shared_columns(suffix)
    own = OWN_FIELDS[kind]
    if columns is None:
        return InsertPlan(table, "", "", "", {}, suffix, frozenset(), False)
    insertable = {n: c for n, c in columns.items() if c.default_kind not in _NOT_INSERTABLE}
    dropped = frozenset(f for f in own if f not in insertable)
    last = _LAST_OBJECT[kind] if dropped == {_LAST_OBJECT[kind]} else ""
    kept_shared = {k: v for k, v in shared.items() if k in insertable}
    if not constants:
        kept_suffix = row_suffix(kept_shared) if kept_shared else ROW_END
        return InsertPlan(table, "", "", "", {}, kept_suffix, dropped, True, last)
    own_kept = [f for f in own if f in insertable]
    omitted = _OMITTED_TEXT[kind]
    structure = ", ".join(
        f"{identifier(f)} {insertable[f].type}"
        + (f" DEFAULT {sql_string(omitted[f])}" if f in omitted else "")
        for f in own_kept
    )
    targets = [*own_kept, *kept_shared]
    selected = [identifier(f) for f in own_kept]
    params: dict[str, str] = {}
    for i, (name, value) in enumerate(kept_shared.items()):
        params[f"p{i}"] = param_value(value if isinstance(value, str) else str(value))
        # the constant has the column's type, so the SELECT's types are the table's
        selected.append(f"CAST({{p{i}:String}} AS {insertable[name].type})")
    into = f"INSERT INTO {table} ({', '.join(identifier(t) for t in targets)})"
    select = f"SELECT {', '.join(selected)} FROM "
    return InsertPlan(table, into, select, structure, params, ROW_END, dropped, True, last)
