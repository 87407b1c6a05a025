"""Configuration: every option, its environment variable, its default and its check.

Precedence for every option: the argument given in code, then the ``AUTOMAGIK_TELEMETRY_*``
environment variable, then the default. ``TelemetryConfig`` resolves all three when it is built,
so its attributes always hold the values in force, and a bad value fails right there with the
option, the value and what is allowed.

The table ``OPTIONS`` is the single source: ``TelemetryConfig.__init__`` checks against it and
the README's configuration table is printed from it (``automagik-telemetry config``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Never

from .privacy import PrivacyConfig, Sanitizer
from .sinks import BACKENDS, sink_spec

ENV_PREFIX: Final = "AUTOMAGIK_TELEMETRY_"
VENDOR_ENDPOINT: Final = "https://telemetry.namastex.ai/v1/traces"
ON_FULL_POLICIES: Final = ("block", "drop")
CODECS: Final = ("auto", "lz4", "gzip", "zstd", "none")
OTLP_PROTOCOLS: Final = ("http/json", "http/protobuf")
SPOOL_FULL_POLICIES: Final = ("drop_newest", "drop_oldest")

log = logging.getLogger("automagik_telemetry")

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


def _seconds_text(text: str) -> float:
    """``"5"``, ``"5s"``, ``"5000ms"``, ``"2.5 s"``: a number of seconds."""
    t = text.strip().lower()
    if t.endswith("ms"):
        return float(t[:-2].strip()) / 1000.0
    if t.endswith("s"):
        return float(t[:-1].strip())
    return float(t)


def _as_float(name: str, value: Any, minimum: float, maximum: float, *, open_min: bool) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not allowed: expected a number of seconds")
    if isinstance(value, str):
        try:
            value = _seconds_text(value)
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


def _as_privacy(name: str, value: Any) -> PrivacyConfig | None:
    """A ``PrivacyConfig``; or true/false (true: ``PrivacyConfig()``'s defaults)."""
    if value is None:
        return None
    if isinstance(value, PrivacyConfig):
        try:
            Sanitizer(value)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        return value
    if isinstance(value, bool | str):
        try:
            on = _as_bool(name, value)
        except ConfigError:
            pass
        else:
            return PrivacyConfig() if on else None
    raise ConfigError(
        f"{name}={_describe(value)} is not allowed: expected a PrivacyConfig, or true/false "
        "(true: PrivacyConfig() with its defaults)"
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
    Option(
        "project_name",
        None,
        _required_text,
        "Name of the application (service.name). Unset: OTEL_SERVICE_NAME, then service.name "
        "in OTEL_RESOURCE_ATTRIBUTES, then the running program's name.",
        env="AUTOMAGIK_TELEMETRY_PROJECT_NAME",
    ),
    Option(
        "version",
        None,
        _required_text,
        "Version of the application (service.version). Unset: service.version in "
        "OTEL_RESOURCE_ATTRIBUTES, then 'unknown'.",
        env="AUTOMAGIK_TELEMETRY_PROJECT_VERSION",
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
    Option(
        "timeout",
        5.0,
        _seconds(0.0, 300.0),
        "Seconds for one HTTP request ('5', '5s' or '5000ms'). From the environment, a bare "
        "number above 300 is read as milliseconds (5000: 5 s), with a warning.",
    ),
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
    # --- privacy
    Option(
        "privacy",
        None,
        _optional(_as_privacy),
        "A PrivacyConfig: attributes, metric labels, log bodies and error messages are "
        "sanitised before they are encoded. true: PrivacyConfig() defaults. Unset: off.",
    ),
)

OPTION_BY_NAME: Final = {o.name: o for o in OPTIONS}


def env_value(option: Option, environ: Mapping[str, str]) -> str | None:
    var = option.env_var
    return environ.get(var) if var else None


#: Options whose bare number in the environment, above the option's maximum in seconds, is
#: read as milliseconds (the TypeScript SDK and the backend guide give timeouts in ms).
MILLISECONDS_ABOVE: Final[dict[str, float]] = {"timeout": 300.0}

_EMPTY_NAME: Final = "TelemetryConfig: {} is required and cannot be empty"
_warned_environment: set[str] = set()  # each warning about the environment is logged once


def _d(name: str) -> Any:
    """The default of option ``name`` (the table is the single source of defaults)."""
    return OPTION_BY_NAME[name].default


def _program_name() -> str:
    """The running program's name: ``myapp`` for ``myapp`` or ``python myapp.py``, the
    package for ``python -m pkg``, ``python`` for ``-c`` and the interactive interpreter."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 in ("", "-c", "-m", "-"):
        return "python"
    path = Path(argv0)
    name = path.stem
    if name == "__main__":
        name = path.parent.name
    return name or "python"


def _resource_attributes(environ: Mapping[str, str]) -> dict[str, str]:
    """``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, values URL-encoded); malformed pairs are
    skipped, as the OpenTelemetry SDKs do."""
    found: dict[str, str] = {}
    for part in environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = part.partition("=")
        if sep and key.strip() and value.strip():
            found[key.strip()] = urllib.parse.unquote(value.strip())
    return found


def _identity_fallback(name: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """(value, source) of project_name / version when neither code nor the
    AUTOMAGIK_TELEMETRY_* variable gives one."""
    resource = _resource_attributes(environ)
    if name == "project_name":
        service = environ.get("OTEL_SERVICE_NAME", "").strip()
        if service:
            return service, "OTEL_SERVICE_NAME"
        if resource.get("service.name"):
            return resource["service.name"], "OTEL_RESOURCE_ATTRIBUTES"
        return _program_name(), "program name"
    if resource.get("service.version"):
        return resource["service.version"], "OTEL_RESOURCE_ATTRIBUTES"
    return "unknown", "default"


@dataclass(init=False)
class TelemetryConfig:
    """All options of one client, resolved and checked when it is built.

    ``TelemetryConfig(project_name="my-app", version="1.0.0", backend="clickhouse")``.

    Precedence of every option: the argument given in code, then its ``AUTOMAGIK_TELEMETRY_*``
    variable, then the default (``project_name`` and ``version`` then also read OpenTelemetry's
    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``, then the program's name and
    ``"unknown"``). A value given in code that is not allowed raises ``ConfigError`` naming the
    option, the value and what is allowed; one from the environment is logged once as a
    warning, kept in ``environment_warnings``, and the default is used instead.

    A dataclass: ``dataclasses.fields``, ``replace`` and ``asdict`` work (``replace`` builds a
    new config, in which the values it copies count as given in code unless the environment
    still holds the same value). Besides the options: ``sources`` (option -> ``"code"``, the
    variable's name or ``"default"``), ``explicit`` (the options given in code) and
    ``environment_warnings``.
    """

    project_name: str
    version: str
    organization: str = _d("organization")
    environment: str = _d("environment")
    backend: str = _d("backend")
    enabled: bool | None = _d("enabled")
    verbose: bool = _d("verbose")
    endpoint: str | None = _d("endpoint")
    metrics_endpoint: str | None = _d("metrics_endpoint")
    logs_endpoint: str | None = _d("logs_endpoint")
    otlp_protocol: str = _d("otlp_protocol")
    otlp_encode_in: str = _d("otlp_encode_in")
    otlp_headers: dict[str, str] | None = _d("otlp_headers")  # noqa: RUF009 (None)
    clickhouse_endpoint: str = _d("clickhouse_endpoint")
    clickhouse_database: str = _d("clickhouse_database")
    clickhouse_table: str = _d("clickhouse_table")
    clickhouse_metrics_table: str = _d("clickhouse_metrics_table")
    clickhouse_logs_table: str = _d("clickhouse_logs_table")
    clickhouse_username: str = _d("clickhouse_username")
    clickhouse_password: str = _d("clickhouse_password")
    embedded_path: str | None = _d("embedded_path")
    batch_size: int = _d("batch_size")
    flush_interval: float = _d("flush_interval")
    max_batch_bytes: int | None = _d("max_batch_bytes")
    max_in_flight: int = _d("max_in_flight")
    timeout: float = _d("timeout")
    max_retries: int = _d("max_retries")
    retry_backoff_base: float = _d("retry_backoff_base")
    compression_enabled: bool = _d("compression_enabled")
    compression: str = _d("compression")
    compression_threshold: int = _d("compression_threshold")
    ring_size: int = _d("ring_size")
    on_full: str = _d("on_full")
    block_timeout: float = _d("block_timeout")
    spool_dir: str | None = _d("spool_dir")
    spool_max_bytes: int = _d("spool_max_bytes")
    spool_full_policy: str = _d("spool_full_policy")
    privacy: PrivacyConfig | None = _d("privacy")  # noqa: RUF009 (None)

    def __init__(
        self,
        project_name: str | None = None,
        version: str | None = None,
        *,
        organization: str | None = None,
        environment: str | None = None,
        backend: str | None = None,
        enabled: bool | None = None,
        verbose: bool | None = None,
        endpoint: str | None = None,
        metrics_endpoint: str | None = None,
        logs_endpoint: str | None = None,
        otlp_protocol: str | None = None,
        otlp_encode_in: str | None = None,
        otlp_headers: Mapping[str, str] | str | None = None,
        clickhouse_endpoint: str | None = None,
        clickhouse_database: str | None = None,
        clickhouse_table: str | None = None,
        clickhouse_metrics_table: str | None = None,
        clickhouse_logs_table: str | None = None,
        clickhouse_username: str | None = None,
        clickhouse_password: str | None = None,
        embedded_path: str | None = None,
        batch_size: int | None = None,
        flush_interval: float | str | None = None,
        max_batch_bytes: int | None = None,
        max_in_flight: int | None = None,
        timeout: float | str | None = None,
        max_retries: int | None = None,
        retry_backoff_base: float | str | None = None,
        compression_enabled: bool | None = None,
        compression: str | None = None,
        compression_threshold: int | None = None,
        ring_size: int | None = None,
        on_full: str | None = None,
        block_timeout: float | str | None = None,
        spool_dir: str | None = None,
        spool_max_bytes: int | None = None,
        spool_full_policy: str | None = None,
        privacy: PrivacyConfig | bool | None = None,
        environ: Mapping[str, str] | None = None,
        **unknown: Never,
    ) -> None:
        """Every option is ``None`` when not given: then its variable, then its default."""
        given = {k: v for k, v in locals().items() if k in OPTION_BY_NAME and v is not None}
        if unknown:
            known = ", ".join(OPTION_BY_NAME)
            raise TypeError(
                f"TelemetryConfig got unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {known}"
            )
        env = os.environ if environ is None else environ
        self.explicit = frozenset(given)
        self.sources: dict[str, str] = {}
        warnings: list[str] = []
        for option in OPTIONS:
            value, source = self._resolve(option, given, env, warnings)
            setattr(self, option.name, value)
            self.sources[option.name] = source
        self._check_together(warnings)
        self.environment_warnings: tuple[str, ...] = tuple(warnings)
        for message in warnings:
            if message not in _warned_environment:
                _warned_environment.add(message)
                log.warning("%s", message)

    @staticmethod
    def _resolve(
        option: Option, given: Mapping[str, Any], env: Mapping[str, str], warnings: list[str]
    ) -> tuple[Any, str]:
        name, var = option.name, option.env_var
        text = env_value(option, env)
        text = text.strip() if text is not None and text.strip() else None
        if name in given:
            value = given[name]
            if name in ("project_name", "version") and isinstance(value, str) and not value.strip():
                raise ConfigError(_EMPTY_NAME.format(name))
            try:
                value = option.check(name, value)
            except ConfigError as exc:
                raise _with_milliseconds_hint(option, value, exc) from None
            if text is not None and var is not None:
                # the environment holds the same value (a config copied by replace(), say):
                # it stays the source, which matters to consent (opt_in.decide)
                with contextlib.suppress(ConfigError):
                    if option.check(var, text) == value:
                        return value, var
            return value, "code"
        if text is not None and var is not None:
            try:
                return _from_environment(option, var, text, warnings), var
            except ConfigError as exc:
                default = "unset" if option.default is None else repr(option.default)
                if name in ("project_name", "version"):
                    default = "found elsewhere"
                message = str(exc)
                if message.startswith(f"{var}=") and " is not allowed:" in message:
                    # name the value as it is written in the environment
                    rule = message.split(" is not allowed:", 1)[1]
                    message = f"{var}={text!r} is not allowed:{rule}"
                warnings.append(f"{message}; the default ({default}) is used instead")
        if name in ("project_name", "version"):
            return _identity_fallback(name, env)
        default = option.default
        return (option.check(name, default) if default is not None else None), "default"

    def _check_together(self, warnings: list[str]) -> None:
        """Options that need a package: refused when given in code, the default used (with a
        warning) when they come from the environment."""
        needs: list[tuple[str, str, str]] = []  # (option, module, extra)
        if self.compression == "zstd":
            needs.append(("compression", "zstandard", "zstd"))
        requires = sink_spec(self.backend).requires
        if requires is not None:
            needs.append(("backend", *requires))
        for name, module, extra in needs:
            try:
                importlib.import_module(module)
            except ImportError:
                message = (
                    f"{name}={getattr(self, name)!r} needs the {module} package: "
                    f"pip install 'automagik-telemetry[{extra}]'"
                )
                source = self.sources.get(name, "code")
                if source in ("code", "default"):
                    raise ConfigError(message) from None
                default = OPTION_BY_NAME[name].default
                warnings.append(f"{message} (from {source}); the default ({default!r}) is used")
                setattr(self, name, default)
                self.sources[name] = "default"

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


def _with_milliseconds_hint(option: Option, value: Any, exc: ConfigError) -> ConfigError:
    """A duration in code that reads like milliseconds gets the spelling that says so."""
    limit = MILLISECONDS_ABOVE.get(option.name)
    if (
        limit is not None
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and limit < value <= limit * 1000
    ):
        return ConfigError(
            f"{exc} (for {value:g} milliseconds write {value / 1000:g} or '{value:g}ms')"
        )
    return exc


def _from_environment(option: Option, var: str, text: str, warnings: list[str]) -> Any:
    """The value of ``var``; a bare number above a seconds option's maximum is read as
    milliseconds (``MILLISECONDS_ABOVE``), with a warning saying so."""
    try:
        return option.check(var, text)
    except ConfigError:
        limit = MILLISECONDS_ABOVE.get(option.name)
        if limit is None:
            raise
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(
                f"{var}={text!r} is not allowed: expected a number of seconds ('5', '5s') or "
                "of milliseconds ('5000ms')"
            ) from None
        if not limit < number <= limit * 1000:
            raise
        seconds = option.check(var, number / 1000.0)
        warnings.append(
            f"{var}={text!r} is more than {limit:g} seconds: read as milliseconds "
            f"({seconds:g} s); write {seconds:g} or '{text}ms' to say which"
        )
        return seconds


def options_markdown() -> str:
    """The README's configuration table."""
    lines = ["| option | environment variable | default | meaning |", "|---|---|---|---|"]
    for o in OPTIONS:
        default = {"project_name": "program name", "version": "'unknown'"}.get(
            o.name, repr(o.default)
        )
        env = f"`{o.env_var}`" if o.env_var else "—"
        lines.append(f"| `{o.name}` | {env} | `{default}` | {o.help} |")
    return "\n".join(lines)


from .config_helpers import *  # noqa: E402, F403 (the 0.1 helpers: config_helpers.__all__)
