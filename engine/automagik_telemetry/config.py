"""Configuration: every option, its environment variable, its default and its check.

Precedence for every option: the argument given in code, then the ``AUTOMAGIK_TELEMETRY_*``
environment variable, then the default. ``TelemetryConfig`` resolves all three when it is built,
so its attributes always hold the values in force, and a bad value fails right there with the
option, the value and what is allowed.

The table ``OPTIONS`` is the single source: ``TelemetryConfig.__init__`` checks against it and
the README's configuration table is printed from it (``automagik-telemetry config``).
"""

from __future__ import annotations

import importlib
import os
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .sinks import BACKENDS, sink_spec

ENV_PREFIX: Final = "AUTOMAGIK_TELEMETRY_"
VENDOR_ENDPOINT: Final = "https://telemetry.namastex.ai/v1/traces"
ON_FULL_POLICIES: Final = ("block", "drop")
CODECS: Final = ("auto", "lz4", "gzip", "zstd", "none")
OTLP_PROTOCOLS: Final = ("http/json", "http/protobuf")
SPOOL_FULL_POLICIES: Final = ("drop_newest", "drop_oldest")

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


class ConfigError(ValueError):
    """An option has a value that is not allowed. The message names option, value and rule."""


# --- value checks ---------------------------------------------------------------------------


def _describe(value: Any) -> str:
    return repr(value)


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name}={_describe(value)} is not allowed: expected true or false")


def _as_int(name: str, value: Any, minimum: int, maximum: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not allowed: expected a whole number")
    if isinstance(value, str):
        try:
            value = int(value.strip().replace("_", ""))
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not allowed: expected a whole number") from None
    if not isinstance(value, int):
        raise ConfigError(f"{name}={_describe(value)} is not allowed: expected a whole number")
    if not minimum <= value <= maximum:
        raise ConfigError(
            f"{name}={value} is not allowed: expected a whole number from {minimum} to {maximum}"
        )
    return value


def _as_float(name: str, value: Any, minimum: float, maximum: float, *, open_min: bool) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not allowed: expected a number of seconds")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(
                f"{name}={value!r} is not allowed: expected a number of seconds"
            ) from None
    if not isinstance(value, int | float) or value != value:  # NaN
        raise ConfigError(f"{name}={_describe(value)} is not allowed: expected a number")
    low_ok = value > minimum if open_min else value >= minimum
    if not low_ok or value > maximum:
        bound = f"greater than {minimum}" if open_min else f"at least {minimum}"
        raise ConfigError(
            f"{name}={value} is not allowed: expected a number {bound} and at most {maximum}"
        )
    return float(value)


def _as_str(name: str, value: Any, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name}={_describe(value)} is not allowed: expected a string")
    if not allow_empty and not value.strip():
        raise ConfigError(f"{name}={value!r} is not allowed: it cannot be empty")
    return value


def _as_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    allowed = ", ".join(repr(c) for c in choices)
    raise ConfigError(f"{name}={_describe(value)} is not allowed: expected one of {allowed}")


def _as_url(name: str, value: Any, example: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{name}={_describe(value)} is not allowed: expected a URL like {example}"
        )
    parsed = urllib.parse.urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"{name}={value!r} is not allowed: expected an http:// or https:// URL with a host, "
            f"like {example}"
        )
    if parsed.username or parsed.password:
        raise ConfigError(
            f"{name}: credentials in the URL are not allowed (they would end up in logs); "
            "give them as options instead"
        )
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(
            f"{name}={value!r} is not allowed: the port is not a number 1-65535"
        ) from None
    return value.strip().rstrip("/")


def _as_identifier(name: str, value: Any) -> str:
    text = _as_str(name, value, allow_empty=False)
    if not all(c.isalnum() or c == "_" for c in text) or text[0].isdigit():
        raise ConfigError(
            f"{name}={value!r} is not allowed: expected a ClickHouse name of letters, digits and "
            "underscores, not starting with a digit"
        )
    return text


def _as_headers(name: str, value: Any) -> dict[str, str]:
    """``{"k": "v"}`` or the OTLP text form ``k1=v1,k2=v2`` (values URL-encoded)."""
    if isinstance(value, Mapping):
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    if isinstance(value, str):
        headers: dict[str, str] = {}
        for part in value.split(","):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip():
                raise ConfigError(
                    f"{name}: {part.strip()!r} is not allowed: expected key=value pairs separated "
                    "by commas"
                )
            headers[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(val.strip())
        return headers
    raise ConfigError(
        f"{name}={_describe(value)} is not allowed: expected a mapping or 'k=v,k2=v2'"
    )


# --- the table of options -------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    name: str
    default: Any
    check: Callable[[str, Any], Any]
    help: str
    env: str | None = None  # defaults to AUTOMAGIK_TELEMETRY_<NAME>; "" for none
    secret: bool = False

    @property
    def env_var(self) -> str | None:
        if self.env == "":
            return None
        return self.env or ENV_PREFIX + self.name.upper()


def _url(example: str) -> Callable[[str, Any], str]:
    return lambda n, v: _as_url(n, v, example)


def _optional(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda n, v: None if v is None or v == "" else check(n, v)


def _int(lo: int, hi: int) -> Callable[[str, Any], int]:
    return lambda n, v: _as_int(n, v, lo, hi)


def _seconds(lo: float, hi: float, *, open_min: bool = True) -> Callable[[str, Any], float]:
    return lambda n, v: _as_float(n, v, lo, hi, open_min=open_min)


def _choice(choices: tuple[str, ...]) -> Callable[[str, Any], str]:
    return lambda n, v: _as_choice(n, v, choices)


def _power_of_two(name: str, value: Any) -> int:
    size = _as_int(name, value, 64 * 1024, 1 << 34)
    if size & (size - 1):
        raise ConfigError(f"{name}={size} is not allowed: expected a power of two (e.g. {1 << 24})")
    return size


def _text(name: str, value: Any) -> str:
    return _as_str(name, value)


def _required_text(name: str, value: Any) -> str:
    return _as_str(name, value, allow_empty=False)


MiB: Final = 1024 * 1024

OPTIONS: Final[tuple[Option, ...]] = (
    # --- identity
    Option("project_name", None, _required_text, "Name of the application (service.name).", env=""),
    Option(
        "version", None, _required_text, "Version of the application (service.version).", env=""
    ),
    Option(
        "organization", "namastex", _text, "Organization, sent as service.organization.", env=""
    ),
    Option("environment", "production", _required_text, "deployment.environment of every row."),
    # --- destination
    Option(
        "backend", "otlp", _choice(BACKENDS), "Where rows go: otlp, clickhouse, or embedded (chdb)."
    ),
    Option(
        "enabled",
        None,
        _optional(_as_bool),
        "true/false. Unset: a destination you configured is enabled, the vendor default needs "
        "an opt-in. See 'Consent' in the README.",
    ),
    Option("verbose", False, _as_bool, "Log every batch the writer sends (at INFO)."),
    # --- OTLP
    Option(
        "endpoint",
        None,
        _optional(_url("https://collector:4318")),
        "OTLP traces endpoint, or a base URL that gets /v1/traces. Unset: the vendor's "
        f"{VENDOR_ENDPOINT}.",
    ),
    Option(
        "metrics_endpoint",
        None,
        _optional(_url("https://collector:4318/v1/metrics")),
        "OTLP metrics endpoint. Unset: derived from endpoint.",
    ),
    Option(
        "logs_endpoint",
        None,
        _optional(_url("https://collector:4318/v1/logs")),
        "OTLP logs endpoint. Unset: derived from endpoint.",
    ),
    Option(
        "otlp_protocol",
        "http/json",
        _choice(OTLP_PROTOCOLS),
        "OTLP encoding: http/json or http/protobuf.",
    ),
    Option(
        "otlp_encode_in",
        "writer",
        _choice(("writer", "caller")),
        "Where OTLP rows get their wire form: writer (the calling thread writes a compact row, "
        "~3x cheaper per call) or caller (less CPU in all: more events/s when cores are few).",
    ),
    Option(
        "otlp_headers",
        None,
        _optional(_as_headers),
        "Extra HTTP headers for the OTLP receiver, e.g. 'api-key=secret,x-team=a'.",
        secret=True,
    ),
    # --- ClickHouse
    Option(
        "clickhouse_endpoint",
        "http://localhost:8123",
        _url("http://localhost:8123"),
        "ClickHouse HTTP interface.",
    ),
    Option("clickhouse_database", "telemetry", _as_identifier, "Database of the tables."),
    Option("clickhouse_table", "traces", _as_identifier, "Table for events and errors."),
    Option("clickhouse_metrics_table", "metrics", _as_identifier, "Table for metrics."),
    Option("clickhouse_logs_table", "logs", _as_identifier, "Table for logs."),
    Option("clickhouse_username", "default", _required_text, "User, sent in X-ClickHouse-User."),
    Option("clickhouse_password", "", _text, "Password, sent in X-ClickHouse-Key.", secret=True),
    # --- embedded
    Option(
        "embedded_path",
        None,
        _optional(_required_text),
        "Data directory of the embedded engine. Unset: ~/.local/share/automagik-telemetry/chdb.",
    ),
    # --- batching and delivery
    Option(
        "batch_size",
        100,
        _int(1, 1_000_000),
        "Rows that make a batch ready. Under load batches grow past it, up to max_batch_bytes.",
    ),
    Option(
        "flush_interval",
        5.0,
        _seconds(0.0, 3600.0),
        "Seconds a partial batch may wait before it is sent.",
    ),
    Option(
        "max_batch_bytes",
        None,
        _optional(_int(64 * 1024, 1024 * MiB)),
        "Cap on the uncompressed size of one request body. Unset: 16 MiB for ClickHouse, "
        "4 MiB for OTLP (below common receivers' limits).",
    ),
    Option(
        "max_in_flight",
        2,
        _int(1, 16),
        "Batches sent at once (ClickHouse parses each insert on one core).",
    ),
    Option("timeout", 5.0, _seconds(0.0, 300.0), "Seconds for one HTTP request."),
    Option(
        "max_retries",
        3,
        _int(0, 100),
        "Retries of one batch; then it waits on disk (the spool) and is sent again later.",
    ),
    Option("retry_backoff_base", 1.0, _seconds(0.0, 60.0), "First back-off in seconds; doubles."),
    Option("compression_enabled", True, _as_bool, "Compress request bodies."),
    Option(
        "compression",
        "auto",
        _choice(CODECS),
        "Codec: auto picks lz4 (zstd, gzip) by what the server accepts.",
    ),
    Option(
        "compression_threshold",
        1024,
        _int(0, 1 << 30),
        "Bodies smaller than this many bytes are sent uncompressed.",
    ),
    # --- the engine
    Option(
        "ring_size",
        16 * MiB,
        _power_of_two,
        "Bytes of the shared-memory ring between the application and its writer.",
    ),
    Option(
        "on_full",
        "block",
        _choice(ON_FULL_POLICIES),
        "When the ring is full (the writer gone or stuck, or the disk refusing): block while the "
        "writer makes progress, then drop; or drop.",
    ),
    Option(
        "block_timeout",
        2.0,
        _seconds(0.0, 60.0, open_min=False),
        "Seconds without any progress of the writer a track call waits for room (on_full=block).",
    ),
    Option(
        "spool_dir",
        None,
        _optional(_required_text),
        "Directory for batches that cannot leave soon (the disk takes over before the ring "
        "fills). Unset: ~/.cache/automagik-telemetry/spool.",
    ),
    Option("spool_max_bytes", 256 * MiB, _int(0, 1 << 40), "Bound of the spool directory."),
    Option(
        "spool_full_policy",
        "drop_newest",
        _choice(SPOOL_FULL_POLICIES),
        "When the spool is full: drop the newest batch or the oldest.",
    ),
)

OPTION_BY_NAME: Final = {o.name: o for o in OPTIONS}


def env_value(option: Option, environ: Mapping[str, str]) -> str | None:
    var = option.env_var
    return environ.get(var) if var else None


class TelemetryConfig:
    """All options of one client, resolved (code > environment > default) and checked.

    ``TelemetryConfig(project_name="my-app", version="1.0.0", backend="clickhouse")``. Attributes
    hold the values in force; ``explicit`` names the options that were given in code.
    """

    project_name: str
    version: str
    organization: str
    environment: str
    backend: str
    enabled: bool | None
    verbose: bool
    endpoint: str | None
    metrics_endpoint: str | None
    logs_endpoint: str | None
    otlp_protocol: str
    otlp_encode_in: str
    otlp_headers: dict[str, str] | None
    clickhouse_endpoint: str
    clickhouse_database: str
    clickhouse_table: str
    clickhouse_metrics_table: str
    clickhouse_logs_table: str
    clickhouse_username: str
    clickhouse_password: str
    embedded_path: str | None
    batch_size: int
    flush_interval: float
    max_batch_bytes: int | None
    max_in_flight: int
    timeout: float
    max_retries: int
    retry_backoff_base: float
    compression_enabled: bool
    compression: str
    compression_threshold: int
    ring_size: int
    on_full: str
    block_timeout: float
    spool_dir: str | None
    spool_max_bytes: int
    spool_full_policy: str

    def __init__(
        self,
        project_name: str | None = None,
        version: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        env = os.environ if environ is None else environ
        unknown = sorted(set(options) - set(OPTION_BY_NAME))
        if unknown:
            known = ", ".join(OPTION_BY_NAME)
            raise TypeError(
                f"TelemetryConfig got unknown option(s) {', '.join(unknown)}; known: {known}"
            )
        given: dict[str, Any] = dict(options)
        if project_name is not None:
            given["project_name"] = project_name
        if version is not None:
            given["version"] = version
        missing = [n for n in ("project_name", "version") if given.get(n) is None]
        if missing:
            raise TypeError(
                f"TelemetryConfig needs {' and '.join(missing)}: "
                "TelemetryConfig(project_name='my-app', version='1.0.0', ...)"
            )
        self.explicit = frozenset(k for k, v in given.items() if v is not None)
        self.sources: dict[str, str] = {}
        for option in OPTIONS:
            if given.get(option.name) is not None:
                raw, source = given[option.name], "code"
            elif (text := env_value(option, env)) is not None and text.strip() != "":
                raw, source = text, option.env_var or ""
            else:
                raw, source = option.default, "default"
            try:
                value = option.check(option.name, raw) if raw is not None else None
            except ConfigError as exc:
                if source not in ("code", "default"):
                    raise ConfigError(f"{exc} (from the environment variable {source})") from None
                raise
            setattr(self, option.name, value)
            self.sources[option.name] = source
        self._check_together()

    def _check_together(self) -> None:
        if self.compression == "zstd":
            try:
                import zstandard  # noqa: F401
            except ImportError:
                raise ConfigError(
                    "compression='zstd' needs the zstandard package: "
                    "pip install 'automagik-telemetry[zstd]'"
                ) from None
        requires = sink_spec(self.backend).requires
        if requires is not None:
            module, extra = requires
            try:
                importlib.import_module(module)
            except ImportError:
                raise ConfigError(
                    f"backend={self.backend!r} needs the {module} package: "
                    f"pip install 'automagik-telemetry[{extra}]'"
                ) from None

    # --- derived values

    def resolved_embedded_path(self) -> str:
        if self.embedded_path:
            return os.path.expanduser(self.embedded_path)
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
        return os.path.join(base, "automagik-telemetry", "chdb")

    def resolved_max_batch_bytes(self) -> int:
        """``max_batch_bytes``, or the backend's default: an OTLP receiver parses a request
        whole (the OpenTelemetry Collector takes 20 MiB by default, vendors often less), and
        smaller requests let the writer spell out one batch while the receiver reads the one
        before (measured here with a receiver that decodes OTLP/JSON in Python: 36k events/s
        landed with 16 MiB requests, 54k with 4 MiB, 78k with 1 MiB)."""
        if self.max_batch_bytes is not None:
            return self.max_batch_bytes
        return sink_spec(self.backend).max_batch_bytes

    def resolved_spool_dir(self) -> str:
        if self.spool_dir:
            return os.path.expanduser(self.spool_dir)
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        return os.path.join(base, "automagik-telemetry", "spool")

    def as_dict(self, *, redact: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for option in OPTIONS:
            value = getattr(self, option.name)
            if redact and option.secret and value:
                value = "***"
            out[option.name] = value
        return out

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{k}={v!r}" for k, v in self.as_dict().items() if self.sources.get(k) != "default"
        )
        return f"TelemetryConfig({shown})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TelemetryConfig):
            return NotImplemented
        return self.as_dict(redact=False) == other.as_dict(redact=False)

    __hash__ = None  # type: ignore[assignment]


def options_markdown() -> str:
    """The README's configuration table."""
    lines = ["| option | environment variable | default | meaning |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = "required" if o.name in ("project_name", "version") else repr(o.default)
        env = f"`{o.env_var}`" if o.env_var else "—"
        lines.append(f"| `{o.name}` | {env} | `{default}` | {o.help} |")
    return "\n".join(lines)


from .config_helpers import *  # noqa: E402, F403 (the 0.1 helpers: config_helpers.__all__)
