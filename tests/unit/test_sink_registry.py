"""The sink registry: every backend name maps to its pieces, an unknown name is a ConfigError,
and the settings a writer gets round-trip through JSON with the backend as the union's tag
and without credentials in the identity page."""

from __future__ import annotations

import msgspec
import pytest

from automagik_telemetry.client import AutomagikTelemetry
from automagik_telemetry.config import ConfigError, TelemetryConfig
from automagik_telemetry.settings import WriterSettings, identity
from automagik_telemetry.sinks import BACKENDS, SINKS, sink_spec


def test_every_backend_option_has_exactly_one_spec() -> None:
    assert set(BACKENDS) == set(SINKS) == {"otlp", "clickhouse", "embedded"}
    assert all(sink_spec(name).name == name for name in BACKENDS)


def test_an_unknown_backend_is_a_config_error_never_a_fallback() -> None:
    with pytest.raises(ConfigError, match=r"backend='kafka' is not allowed: expected one of"):
        sink_spec("kafka")
    with pytest.raises(ConfigError, match="backend='kafka' is not allowed"):
        TelemetryConfig(project_name="p", version="1", backend="kafka")


@pytest.mark.parametrize(
    ("backend", "options", "secret"),
    [
        ("clickhouse", {"clickhouse_password": "pw-s3cret"}, "pw-s3cret"),
        ("otlp", {"endpoint": "http://127.0.0.1:1", "otlp_headers": {"api-key": "k-s3cret"}},
         "k-s3cret"),
        ("embedded", {}, None),
    ],
)  # fmt: skip
def test_writer_settings_carry_the_backend_as_their_tag_and_no_secret_in_the_identity(
    backend: str, options: dict[str, object], secret: str | None, tmp_path: object
) -> None:
    client = AutomagikTelemetry(
        project_name="p", version="1", backend=backend, enabled=False,
        embedded_path=str(tmp_path), **options,
    )  # fmt: skip
    settings = client._writer_settings("segment-name")
    encoded = msgspec.json.encode(settings)
    assert msgspec.json.decode(encoded, type=WriterSettings) == settings
    assert settings.backend == backend
    assert b'"backend":"%s"' % backend.encode() in encoded
    shown = identity(settings)
    if secret is not None:
        assert secret.encode() in encoded and secret.encode() not in shown
    assert settings.destination.startswith(backend + "-")
    assert settings.max_in_flight == (1 if backend == "embedded" else 2)
