"""Consent and the 0.1 first-run prompt: the files (found through ``Path.home()`` when used),
the interactive rules, and the CI / development rule of ``decide``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from automagik_telemetry import AutomagikTelemetry, opt_in
from automagik_telemetry.config import TelemetryConfig
from automagik_telemetry.opt_in import (
    CI_VARIABLES,
    TelemetryOptIn,
    decide,
    prompt_user_if_needed,
    should_prompt_user,
)


class Terminal(io.StringIO):
    def __init__(self, tty: bool = True) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    place = tmp_path / "somewhere-else"
    place.mkdir()
    monkeypatch.setattr(Path, "home", lambda: place)
    for name in (*CI_VARIABLES, "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    return place


def attach_terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    """A terminal on stdin and stdout. Called in the test's body: pytest's capture puts its own
    streams back at the start of each phase, after fixtures ran."""
    out = Terminal()
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.delenv("TERM", raising=False)
    return out


def answer(monkeypatch: pytest.MonkeyPatch, reply: str | type[BaseException]) -> list[str]:
    asked: list[str] = []

    def fake_input(prompt: str = "") -> str:
        asked.append(prompt)
        if isinstance(reply, str):
            return reply
        raise reply

    monkeypatch.setattr("builtins.input", fake_input)
    return asked


def test_files_are_found_through_path_home_when_used(home: Path) -> None:
    assert opt_in.opt_out_file() == home / ".automagik-no-telemetry"
    assert opt_in.preference_file() == home / ".automagik" / "telemetry_preference"
    (home / ".automagik-no-telemetry").touch()
    assert TelemetryOptIn.get_user_preference() is False
    assert not decide(TelemetryConfig(project_name="a", version="1", backend="clickhouse")).enabled


def test_nothing_decided_in_a_fresh_home(home: Path) -> None:
    assert TelemetryOptIn.has_user_decided() is False
    assert TelemetryOptIn.get_user_preference() is None


@pytest.mark.parametrize(
    ("content", "value"),
    [
        ("enabled", True),
        ("  YES \n", True),
        ("1", True),
        ("true", True),
        ("disabled", False),
        ("no", False),
    ],
)
def test_the_preference_file(home: Path, content: str, value: bool) -> None:
    (home / ".automagik").mkdir()
    (home / ".automagik" / "telemetry_preference").write_text(content)
    assert TelemetryOptIn.has_user_decided() is True
    assert TelemetryOptIn.get_user_preference() is value


def test_the_opt_out_file_wins_over_the_preference_file(home: Path) -> None:
    TelemetryOptIn.save_preference(True)
    (home / ".automagik-no-telemetry").touch()
    assert TelemetryOptIn.get_user_preference() is False


def test_an_unreadable_preference_file_counts_as_none(home: Path) -> None:
    (home / ".automagik" / "telemetry_preference").mkdir(parents=True)
    assert TelemetryOptIn.get_user_preference() is None


@pytest.mark.parametrize(
    ("value", "preference"),
    [("true", True), ("ON", True), ("1", True), ("false", False), ("0", False), ("", False)],
)
def test_the_variable_is_a_decision(
    home: Path, monkeypatch: pytest.MonkeyPatch, value: str, preference: bool
) -> None:
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", value)
    assert TelemetryOptIn.has_user_decided() is True
    assert TelemetryOptIn.get_user_preference() is preference


def test_save_preference_keeps_one_file(home: Path) -> None:
    TelemetryOptIn.save_preference(True)
    assert (home / ".automagik" / "telemetry_preference").read_text() == "enabled"
    assert not (home / ".automagik-no-telemetry").exists()
    TelemetryOptIn.save_preference(False)
    assert (home / ".automagik-no-telemetry").exists()
    assert not (home / ".automagik" / "telemetry_preference").exists()
    TelemetryOptIn.save_preference(True)
    assert not (home / ".automagik-no-telemetry").exists()


def test_save_preference_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setattr(Path, "home", lambda: blocked)  # nothing can be made under a file
    TelemetryOptIn.save_preference(True)
    TelemetryOptIn.save_preference(False)
    assert blocked.read_text() == ""


def test_the_prompt_says_what_is_collected_and_stores_a_yes(
    monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    terminal = attach_terminal(monkeypatch)
    asked = answer(monkeypatch, " Yes ")
    assert should_prompt_user("omni") is True
    assert prompt_user_if_needed("omni") is True
    assert asked == ["Enable telemetry? [y/N]: "]
    shown = terminal.getvalue()
    for text in (
        "Help Improve omni",
        "What we collect",
        "What we DON'T collect",
        "Feature usage",
        "API keys or credentials",
        "Thank you",
        "Telemetry enabled",
    ):
        assert text in shown
    assert "\033[" not in shown  # no TERM: no colours
    assert (home / ".automagik" / "telemetry_preference").read_text() == "enabled"
    assert should_prompt_user() is False
    answer(monkeypatch, "y")
    assert prompt_user_if_needed() is True  # decided: not asked again


@pytest.mark.parametrize("reply", ["n", "", "maybe", KeyboardInterrupt, EOFError])
def test_anything_but_yes_is_a_no_and_stored(
    monkeypatch: pytest.MonkeyPatch, home: Path, reply: Any
) -> None:
    terminal = attach_terminal(monkeypatch)
    answer(monkeypatch, reply)
    assert TelemetryOptIn.prompt_user("forge") is False
    assert "Telemetry disabled" in terminal.getvalue()
    assert (home / ".automagik-no-telemetry").exists()


def test_no_prompt_without_a_terminal(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setattr("sys.stdin", Terminal(tty=False))
    monkeypatch.setattr("sys.stdout", Terminal())
    asked = answer(monkeypatch, "y")
    assert should_prompt_user() is False
    assert prompt_user_if_needed() is False
    assert asked == []
    assert not (home / ".automagik-no-telemetry").exists()


@pytest.mark.parametrize("variable", CI_VARIABLES)
def test_no_prompt_in_ci(monkeypatch: pytest.MonkeyPatch, home: Path, variable: str) -> None:
    attach_terminal(monkeypatch)
    assert TelemetryOptIn._is_interactive() is True
    monkeypatch.setenv(variable, "1")
    asked = answer(monkeypatch, "y")
    assert TelemetryOptIn._is_interactive() is False
    assert prompt_user_if_needed() is False
    assert asked == []


def test_colours_on_a_capable_terminal(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    attach_terminal(monkeypatch)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert TelemetryOptIn._colorize("hi", "92") == "\033[92mhi\033[0m"
    monkeypatch.setenv("TERM", "dumb")
    assert TelemetryOptIn._colorize("hi", "92") == "hi"


# --- the CI / development rule -----------------------------------------------------------------


def consent(environ: dict[str, str], **options: Any) -> opt_in.Consent:
    return decide(TelemetryConfig(project_name="app", version="1.0", **options), environ)


@pytest.mark.parametrize("variable", CI_VARIABLES)
def test_ci_sends_nothing_to_the_vendor_on_enabled_true_in_code(home: Path, variable: str) -> None:
    result = consent({variable: "true"}, enabled=True)
    assert result.enabled is False
    assert result.reason.startswith(f"CI environment ({variable}): nothing is sent to the vendor")
    assert consent({variable: "true"}).enabled is False
    assert consent({variable: "true"}).reason.endswith(
        f"needs an opt-in (enabled=True or AUTOMAGIK_TELEMETRY_ENABLED=true), and is never done "
        f"from a CI environment ({variable})"
    )


@pytest.mark.parametrize("variable", CI_VARIABLES)
def test_the_jobs_own_opt_in_sends_to_the_vendor_from_ci(
    home: Path, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "true")
    config = TelemetryConfig(project_name="app", version="1.0")
    result = decide(config, {variable: "true", "AUTOMAGIK_TELEMETRY_ENABLED": "true"})
    assert result.enabled is True
    assert result.reason == "AUTOMAGIK_TELEMETRY_ENABLED (opt-in)"


@pytest.mark.parametrize("stage", ["development", "dev", "test", "testing", " Dev "])
def test_development_environments_send_nothing_to_the_vendor(home: Path, stage: str) -> None:
    result = consent({"ENVIRONMENT": stage}, enabled=True)
    assert result.enabled is False
    assert result.reason.startswith(f"development environment (ENVIRONMENT={stage})")


def test_other_values_are_not_ci_or_development(home: Path) -> None:
    assert consent({"CI": ""}, enabled=True).enabled is True
    assert consent({"ENVIRONMENT": "production"}, enabled=True).enabled is True
    assert consent({}, enabled=True).enabled is True


@pytest.mark.parametrize(
    "destination",
    [
        {"endpoint": "http://collector.internal:4318"},
        {"backend": "clickhouse"},
        {"backend": "embedded"},
    ],
)
def test_a_configured_destination_sends_from_ci(home: Path, destination: dict[str, Any]) -> None:
    ci = {"GITHUB_ACTIONS": "true", "ENVIRONMENT": "test"}
    assert consent(ci, **destination).enabled is True
    assert consent(ci, enabled=True, **destination).enabled is True


def test_an_otel_endpoint_is_a_configured_destination_in_ci(home: Path) -> None:
    environ = {"CI": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert consent(environ).enabled is True


def test_an_explicit_opt_out_wins_in_ci_too(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ci = {"CI": "true"}
    assert consent({**ci, "DO_NOT_TRACK": "1"}, backend="clickhouse").enabled is False
    assert consent(ci, backend="clickhouse", enabled=False).enabled is False
    (home / ".automagik-no-telemetry").touch()
    assert consent(ci, backend="clickhouse").enabled is False
    monkeypatch.setenv("AUTOMAGIK_TELEMETRY_ENABLED", "false")
    config = TelemetryConfig(project_name="app", version="1.0", backend="clickhouse")
    assert decide(config, ci).enabled is False


def test_a_client_in_ci_says_why_it_sends_nothing(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITLAB_CI", "true")
    client = AutomagikTelemetry(project_name="app", version="1.0", enabled=True)
    try:
        assert client.enabled is False
        status = client.get_status()
        assert status["disabled_reason"].startswith("CI environment (GITLAB_CI)")
    finally:
        client.shutdown()
