"""ClickHouse request planning and the reading of its answers, without a server.

Answers are real ``urllib3.HTTPResponse`` objects built from the bytes and headers servers send.
Bodies marked 18.16 were recorded from Debian's clickhouse-server 18.16.1 (the suite's server:
the exception code is only in the body, no ``X-ClickHouse-Exception-Code``); the others are in the
form current releases use (``Code: N. DB::Exception: … (NAME) (version …)``, with the header).
"""

from __future__ import annotations

import io
import socket
import time
import urllib.parse
from email.utils import formatdate
from typing import Any

import pytest
import urllib3
from urllib3.connection import HTTPConnection

from automagik_telemetry.__about__ import __version__
from automagik_telemetry._net import is_loopback
from automagik_telemetry.sinks.clickhouse import (
    Target,
    auth_headers,
    classify,
    connection_outcome,
    exception_code,
    insert_url,
    server_message,
)

ENDPOINT = "http://127.0.0.1:8123"
TRACES = Target("telemetry", "traces")
VERSION = " (version 26.9.2.1 (official build))"

# recorded from 18.16.1
WRONG_PASSWORD_18 = (
    b"Code: 193, e.displayText() = DB::Exception: Wrong password for user telemetry, "
    b"e.what() = DB::Exception\n"
)
UNKNOWN_USER_18 = (
    b"Code: 192, e.displayText() = DB::Exception: Unknown user nobody, e.what() = DB::Exception\n"
)
NO_TABLE_18 = (
    b"Code: 60, e.displayText() = DB::Exception: Table telemetry.traces doesn't exist., "
    b"e.what() = DB::Exception\n"
)
NO_DATABASE_18 = (
    b"Code: 81, e.displayText() = DB::Exception: Database telemetry doesn't exist, "
    b"e.what() = DB::Exception\n"
)
PARSE_18 = (
    b'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected " before: abc"}'
    b"\\n: (while read the value of key timestamp_ns): (at row 1)\n, e.what() = DB::Exception\n"
)
TRUNCATED_18 = (
    b"Code: 33, e.displayText() = DB::Exception: Unexpected end of stream while parsing "
    b"JSONEachRow format: (at row 1)\n, e.what() = DB::Exception\n"
)
ENUM_18 = (
    b"Code: 49, e.displayText() = DB::Exception: Unknown element 'NOPE' for type "
    b"Enum8('GAUGE' = 1, 'SUM' = 2): (while read the value of key metric_type), "
    b"e.what() = DB::Exception\n"
)
UNKNOWN_SETTING_18 = (
    b"Code: 115, e.displayText() = DB::Exception: Unknown setting insert_deduplication_token, "
    b"e.what() = DB::Exception\n"
)


def current(code: int, text: str, name: str) -> bytes:
    return f"Code: {code}. DB::Exception: {text}. ({name}){VERSION}\n".encode()


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Any:
    """An answer read from its bytes as the connection pool reads one (preloaded)."""
    return urllib3.HTTPResponse(
        body=io.BytesIO(body), status=status, headers=headers or {}, preload_content=True
    )


def coded(status: int, code: int, body: bytes, **headers: str) -> Any:
    return answer(status, body, {"X-ClickHouse-Exception-Code": str(code), **headers})


def answered(status: int, code: int, text: str, name: str) -> Any:
    """An answer of a current release: the code in the header and in the body."""
    return coded(status, code, current(code, text, name))


# --- planning -------------------------------------------------------------------------------


def test_insert_url_is_the_statement_then_the_settings_in_their_order() -> None:
    url = insert_url(
        ENDPOINT,
        "telemetry.traces",
        {"input_format_skip_unknown_fields": "1", "insert_deduplication_token": "seg-0-0-10"},
    )
    assert url == (
        "http://127.0.0.1:8123/?query=INSERT+INTO+telemetry.traces+FORMAT+JSONEachRow"
        "&input_format_skip_unknown_fields=1&insert_deduplication_token=seg-0-0-10"
    )


def test_insert_url_without_settings_holds_only_the_statement() -> None:
    parts = urllib.parse.urlsplit(insert_url(ENDPOINT, "db.logs", {}))
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "127.0.0.1:8123", "/")
    assert urllib.parse.parse_qsl(parts.query) == [
        ("query", "INSERT INTO db.logs FORMAT JSONEachRow")
    ]


def test_insert_url_escapes_what_a_token_holds_and_keeps_the_endpoint_path() -> None:
    token = "a&b=c d/é?#%"
    url = insert_url(
        "https://proxy.example/clickhouse", "t.m", {"insert_deduplication_token": token}
    )
    parts = urllib.parse.urlsplit(url)
    assert (parts.netloc, parts.path, parts.fragment) == ("proxy.example", "/clickhouse/", "")
    assert urllib.parse.parse_qsl(parts.query) == [
        ("query", "INSERT INTO t.m FORMAT JSONEachRow"),
        ("insert_deduplication_token", token),
    ]


def test_auth_headers_are_the_credentials_and_our_user_agent() -> None:
    assert auth_headers("telemetry", "s3cret") == {
        "X-ClickHouse-User": "telemetry",
        "X-ClickHouse-Key": "s3cret",
        "User-Agent": f"automagik-telemetry/{__version__}",
    }


# --- server_message -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            WRONG_PASSWORD_18,
            "Code: 193, e.displayText() = DB::Exception: Wrong password for user telemetry",
        ),
        (
            current(60, "Table telemetry.traces does not exist", "UNKNOWN_TABLE"),
            "Code: 60. DB::Exception: Table telemetry.traces does not exist. (UNKNOWN_TABLE)",
        ),
        (  # a message of several lines is kept whole, on one line
            PARSE_18,
            'Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected " before: '
            'abc"}\\n: (while read the value of key timestamp_ns): (at row 1)',
        ),
        (b"  Code: 6.\tDB::Exception:  x\r\n\r\n", "Code: 6. DB::Exception: x"),
        (b"<html><h1>502 Bad Gateway</h1></html>\n", "<html><h1>502 Bad Gateway</h1></html>"),
        (b"", ""),
        (b"\xff\xfeCode", "\ufffd\ufffdCode"),  # not UTF-8: read, never raised on
    ],
    ids=["18.16", "current", "multi-line", "whitespace", "proxy", "empty", "not-utf8"],
)
def test_server_message_is_the_servers_text_without_the_boilerplate(
    body: bytes, message: str
) -> None:
    assert server_message(body) == message


def test_server_message_is_at_most_600_characters() -> None:
    text = server_message(b"Code: 117. DB::Exception: " + b"x" * 5000)
    assert text == "Code: 117. DB::Exception: " + "x" * (600 - 26)


# --- exception_code -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({"X-ClickHouse-Exception-Code": "60"}, b"", 60),
        ({"X-ClickHouse-Exception-Code": " 241 "}, b"", 241),
        ({"X-ClickHouse-Exception-Code": "27"}, current(60, "t", "UNKNOWN_TABLE"), 27),
        ({}, WRONG_PASSWORD_18, 193),  # 18.16: "Code: N," in the body only
        ({}, current(516, "telemetry: Authentication failed", "AUTHENTICATION_FAILED"), 516),
        ({}, b"Code: 81", 81),
        ({"X-ClickHouse-Exception-Code": "x"}, NO_TABLE_18, 60),  # header unreadable: body
        ({"X-ClickHouse-Exception-Code": ""}, b"Code: 252. DB::Exception: Too many parts", 252),
        ({}, b"Code: abc. DB::Exception", None),
        ({}, b"Error: Code: 60.", None),
        ({}, b"<html>Code: 60</html>", None),
        ({}, b"", None),
    ],
)
def test_exception_code_from_the_header_else_the_body(
    headers: dict[str, str], body: bytes, code: int | None
) -> None:
    assert exception_code(answer(500, body, headers)) == code


# --- classify -------------------------------------------------------------------------------


def outcome_of(response: Any, target: Target | None = TRACES) -> Any:
    return classify(response, endpoint=ENDPOINT, username="telemetry", target=target)


def test_200_without_an_exception_is_delivered() -> None:
    outcome = outcome_of(answer(200, b""))
    assert (outcome.ok, outcome.retryable, outcome.status, outcome.key) == (True, False, 200, "")
    assert (outcome.message, outcome.refused_content, outcome.too_large) == ("", False, False)
    assert outcome.retry_after is None


AUTH = [
    answer(401, WRONG_PASSWORD_18),
    answer(401, UNKNOWN_USER_18),
    answered(401, 516, "telemetry: Authentication failed", "AUTHENTICATION_FAILED"),
    answered(403, 497, "telemetry: Not enough privileges", "ACCESS_DENIED"),
    answered(500, 164, "Cannot execute query in readonly mode", "READONLY"),
    answered(500, 195, "User telemetry is not allowed to connect", "IP_ADDRESS_NOT_ALLOWED"),
    answer(403, b"forbidden by the proxy"),  # no ClickHouse code: the status says it
    answer(401, b""),
]


@pytest.mark.parametrize(
    "response",
    AUTH,
    ids=["193-18.16", "192-18.16", "516", "497", "164", "195", "403-proxy", "401-empty"],
)
def test_auth_answers_name_the_user_the_servers_words_and_the_fix(response: Any) -> None:
    outcome = outcome_of(response)
    assert (outcome.ok, outcome.retryable, outcome.key) == (False, False, "auth")
    assert (outcome.refused_content, outcome.too_large, outcome.retry_after) == (False, False, None)
    assert outcome.status == response.status
    said = server_message(response.data) or f"HTTP {response.status}"
    assert outcome.message.startswith(
        f"ClickHouse at {ENDPOINT} refused user 'telemetry': {said}. Fix: set clickhouse_username"
    )
    assert "clickhouse_password" in outcome.message
    assert "AUTOMAGIK_TELEMETRY_CLICKHOUSE_USERNAME" in outcome.message


@pytest.mark.parametrize(
    ("response", "said"),
    [
        (answer(404, NO_TABLE_18), "Table telemetry.traces doesn't exist."),
        (answer(404, NO_DATABASE_18), "Database telemetry doesn't exist"),
        (answered(404, 60, "Table telemetry.traces does not exist", "UNKNOWN_TABLE"),
         "Table telemetry.traces does not exist. (UNKNOWN_TABLE)"),
        (answered(404, 81, "Database telemetry does not exist", "UNKNOWN_DATABASE"),
         "(UNKNOWN_DATABASE)"),
    ],
    ids=["table-18.16", "database-18.16", "table", "database"],
)  # fmt: skip
def test_unknown_table_or_database_names_the_table_and_the_schema_fix(
    response: Any, said: str
) -> None:
    outcome = outcome_of(response)
    assert (outcome.ok, outcome.retryable, outcome.status) == (False, False, 404)
    assert outcome.key == "missing:telemetry.traces"
    assert (outcome.refused_content, outcome.too_large, outcome.retry_after) == (False, False, None)
    assert outcome.message.startswith(f"ClickHouse at {ENDPOINT} has no table telemetry.traces: ")
    assert said in outcome.message
    assert "automagik-telemetry schema --apply" in outcome.message
    assert "clickhouse_database" in outcome.message


def test_unknown_table_without_a_target_says_the_table() -> None:
    outcome = outcome_of(answer(404, NO_TABLE_18), target=None)
    assert outcome.key == "missing:the table"
    assert outcome.message.startswith(f"ClickHouse at {ENDPOINT} has no table the table: ")


@pytest.mark.parametrize(
    ("response", "code", "said"),
    [
        (answer(500, PARSE_18), 27, "Cannot parse input"),
        (answer(500, TRUNCATED_18), 33, "Unexpected end of stream while parsing JSONEachRow"),
        (answer(500, ENUM_18), 49, "Unknown element 'NOPE' for type Enum8"),
        (answered(400, 691, "Unknown element 'Z' for enum", "UNKNOWN_ELEMENT_OF_ENUM"),
         691, "Unknown element 'Z' for enum. (UNKNOWN_ELEMENT_OF_ENUM)"),
        (answered(400, 6, "Cannot parse string 'x' as UInt64", "CANNOT_PARSE_TEXT"),
         6, "Cannot parse string 'x' as UInt64"),
        (answered(400, 53, "Type mismatch", "TYPE_MISMATCH"), 53, "Type mismatch"),
        (answered(400, 131, "String too long", "TOO_LARGE_STRING_SIZE"), 131,
         "String too long"),
        # an exception after the server began its 200 answer
        (coded(200, 27, b"Code: 27. DB::Exception: Cannot parse input"), 27, "Cannot parse"),
    ],
    ids=["27-18.16", "33-18.16", "49-18.16", "691", "6", "53", "131", "27-after-200"],
)  # fmt: skip
def test_refused_content_is_set_apart_from_trouble_with_the_destination(
    response: Any, code: int, said: str
) -> None:
    outcome = outcome_of(response)
    assert (outcome.ok, outcome.retryable, outcome.refused_content) == (False, False, True)
    assert (outcome.too_large, outcome.retry_after) == (False, None)
    assert (outcome.status, outcome.key) == (response.status, f"rejected:{code}")
    assert outcome.message.startswith(
        f"ClickHouse at {ENDPOINT} rejected the insert into telemetry.traces "
        f"(HTTP {response.status}): "
    )
    assert said in outcome.message
    assert outcome.message.endswith(
        "Fix: make the table's columns match infra/clickhouse/schema.sql"
    )


@pytest.mark.parametrize("body", [b"", b"<html><h1>413 Request Entity Too Large</h1></html>"])
def test_413_is_too_large_not_refused_content(body: bytes) -> None:
    outcome = outcome_of(answer(413, body, {"Retry-After": "5"}))
    assert (outcome.ok, outcome.retryable, outcome.status) == (False, False, 413)
    assert (outcome.too_large, outcome.refused_content, outcome.retry_after) == (True, False, None)
    assert outcome.key == "rejected:None"
    assert (server_message(body) or "HTTP 413") in outcome.message


@pytest.mark.parametrize(
    ("response", "key"),
    [
        (answered(500, 241, "Memory limit (total) exceeded", "MEMORY_LIMIT_EXCEEDED"),
         "server:500:241"),
        (answered(500, 202, "Too many simultaneous queries", "TOO_MANY_SIMULTANEOUS_QUERIES"),
         "server:500:202"),
        (answered(500, 252, "Too many parts (300)", "TOO_MANY_PARTS"), "server:500:252"),
        (answered(500, 159, "Timeout exceeded", "TIMEOUT_EXCEEDED"), "server:500:159"),
        (answered(500, 209, "Timeout exceeded while reading from socket", "SOCKET_TIMEOUT"),
         "server:500:209"),
        (answered(500, 210, "Connection reset by peer", "NETWORK_ERROR"), "server:500:210"),
        (answered(500, 394, "Query was cancelled", "QUERY_WAS_CANCELLED"), "server:500:394"),
        (answered(500, 203, "No free connection", "NO_FREE_CONNECTION"), "server:500:203"),
        (coded(200, 241, b"Code: 241. DB::Exception: Memory limit exceeded"), "server:200:241"),
        (answered(503, 999, "Keeper is down", "SOMETHING_NEW"), "server:503:999"),
        (answered(500, 999, "Something new", "SOMETHING_NEW"), "server:500:999"),
        (answer(502, b"<html><h1>502 Bad Gateway</h1></html>"), "server:502:None"),
        (answer(504, b""), "server:504:None"),
        (answer(507, b"Insufficient Storage"), "server:507:None"),  # any 5xx with no code
        (answer(408, b"Request Timeout"), "server:408:None"),
    ],
    ids=["241", "202", "252", "159", "209", "210", "394", "203", "241-after-200", "503",
         "500-unknown-code", "502", "504", "507", "408"],
)  # fmt: skip
def test_passing_trouble_is_retried_with_the_servers_words(response: Any, key: str) -> None:
    outcome = outcome_of(response)
    assert (outcome.ok, outcome.retryable, outcome.key) == (False, True, key)
    assert (outcome.refused_content, outcome.too_large, outcome.retry_after) == (False, False, None)
    said = server_message(response.data) or f"HTTP {response.status}"
    assert (
        outcome.message == f"ClickHouse at {ENDPOINT} answered {response.status}: {said}; retrying"
    )


@pytest.mark.parametrize(
    ("status", "value", "wait"),
    [(429, "7", 7.0), (503, "0", 0.0), (503, "120", 120.0), (429, "-3", None), (429, "soon", None)],
)
def test_retry_after_in_seconds_is_read_and_a_malformed_one_ignored(
    status: int, value: str, wait: float | None
) -> None:
    outcome = outcome_of(answer(status, b"slow down", {"Retry-After": value}))
    assert (outcome.ok, outcome.retryable, outcome.key) == (False, True, f"server:{status}:None")
    assert outcome.retry_after == wait
    assert "slow down" in outcome.message


def test_retry_after_as_an_http_date_is_read() -> None:
    date = formatdate(time.time() + 30, usegmt=True)
    outcome = outcome_of(answer(429, b"", {"Retry-After": date}))
    assert outcome.retryable and outcome.key == "server:429:None"
    assert outcome.retry_after is not None and 25.0 <= outcome.retry_after <= 31.0
    assert outcome_of(answer(429, b"")).retry_after is None


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (answer(404, UNKNOWN_SETTING_18), 115),
        (answered(501, 48, "Not implemented", "NOT_IMPLEMENTED"), 48),
        (answer(418, b"I'm a teapot"), None),
        (answer(400, b""), None),
        (answer(404, b"<html>Not Found</html>"), None),
        (coded(200, 999, b"Code: 999. DB::Exception: Something new"), 999),
    ],
    ids=["115-18.16", "501", "418", "400-empty", "404-proxy", "200-unknown-code"],
)
def test_other_answers_are_permanent_but_not_set_aside(response: Any, code: int | None) -> None:
    outcome = outcome_of(response)
    assert (outcome.ok, outcome.retryable, outcome.key) == (False, False, f"rejected:{code}")
    assert (outcome.refused_content, outcome.too_large, outcome.retry_after) == (False, False, None)
    assert outcome.status == response.status
    said = server_message(response.data) or f"HTTP {response.status}"  # no body: the status
    assert outcome.message == (
        f"ClickHouse at {ENDPOINT} rejected the insert into telemetry.traces "
        f"(HTTP {response.status}): {said}. Fix: make the table's columns match "
        "infra/clickhouse/schema.sql; the rows are kept"
    )


# --- connection errors ----------------------------------------------------------------------


def connection() -> HTTPConnection:
    return HTTPConnection("127.0.0.1", 8123)  # never connected


def check_connection_outcome(outcome: Any, cause: str) -> None:
    assert (outcome.ok, outcome.retryable, outcome.status) == (False, True, None)
    assert (outcome.refused_content, outcome.too_large, outcome.retry_after) == (False, False, None)
    assert outcome.key == f"connect:{cause}"
    assert outcome.message == (
        f"cannot reach ClickHouse at {ENDPOINT}: {cause}. Fix: start the server or set "
        "clickhouse_endpoint (AUTOMAGIK_TELEMETRY_CLICKHOUSE_ENDPOINT); rows are kept and retried"
    )


REFUSED = "Failed to establish a new connection: [Errno 111] Connection refused"


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (urllib3.exceptions.NewConnectionError(connection(), REFUSED), "connection refused"),
        (urllib3.exceptions.MaxRetryError(
            None, "/", urllib3.exceptions.NewConnectionError(connection(), REFUSED)),
         "connection refused"),
        (urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out. (read timeout=0.5)"),
         "timed out"),
        (urllib3.exceptions.ConnectTimeoutError(connection(), "Connection to 127.0.0.1 timed out."),
         "timed out"),
        (urllib3.exceptions.ProtocolError(
            "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")),
         "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"),
    ],
    ids=["refused", "refused-wrapped", "read-timeout", "connect-timeout", "reset"],
)  # fmt: skip
def test_connection_errors_are_retried_and_name_the_endpoint_and_the_fix(
    error: Exception, cause: str
) -> None:
    check_connection_outcome(connection_outcome(error, ENDPOINT), cause)


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (urllib3.exceptions.NameResolutionError(
            "nohost.invalid", connection(), socket.gaierror(-2, "Name or service not known")),
         "Failed to resolve 'nohost.invalid'"),
        (urllib3.exceptions.NewConnectionError(
            connection(), "Failed to establish a new connection: [Errno 113] No route to host"),
         "No route to host"),
    ],
    ids=["dns", "no-route"],
)  # fmt: skip
def test_a_connection_that_failed_at_once_is_not_called_a_timeout(
    error: Exception, said: str
) -> None:
    outcome = connection_outcome(error, ENDPOINT)
    assert (outcome.ok, outcome.retryable) == (False, True)
    assert said in outcome.key and said in outcome.message
    assert "timed out" not in outcome.message


# --- is_loopback ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://localhost:8123", True),
        ("http://LocalHost:8123", True),
        ("http://localhost", True),
        ("https://user:pw@localhost:8443/path", True),
        ("http://127.0.0.1:8123", True),
        ("http://127.45.6.7:8123", True),
        ("http://[::1]:8123", True),
        ("http://10.0.0.5:8123", False),
        ("http://192.168.1.10", False),
        ("http://[::2]:8123", False),
        ("https://clickhouse.example.com:8443", False),
        ("http://localhost.example.com:8123", False),
        ("http://127.0.0.1.example.com:8123", False),
        ("localhost:8123", False),  # no scheme: no host either
        ("", False),
    ],
)
def test_is_loopback(url: str, loopback: bool) -> None:
    assert is_loopback(url) is loopback
