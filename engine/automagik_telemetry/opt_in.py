"""Consent: whether a client sends anything, and why; and the first-run prompt of
automagik-telemetry 0.1 (``TelemetryOptIn``, ``should_prompt_user``, ``prompt_user_if_needed``).

The rule of ``decide`` (documented in the README, "Consent"):

1. ``enabled=True`` / ``enabled=False`` given in code decides.
2. Else ``AUTOMAGIK_TELEMETRY_ENABLED`` (true/false) decides.
3. Else an opt-out disables: ``DO_NOT_TRACK`` set to anything but 0/false, or the file
   ``~/.automagik-no-telemetry``.
4. Else a destination the user configured (ClickHouse, the embedded engine, an OTLP endpoint
   other than the vendor's) is enabled: configuring it is the consent.
5. Else (the vendor's endpoint by default) it stays disabled: sending there needs an opt-in.

And over all of these: from a CI job (``CI``, ``GITHUB_ACTIONS``, ``TRAVIS``, ``JENKINS``,
``GITLAB_CI``, ``CIRCLECI`` set to anything non-empty) or a development environment
(``ENVIRONMENT`` development/dev/test/testing) nothing goes to the vendor's endpoint, opt-in or
not; a destination the user configured is sent to as anywhere else.

The files are found through ``Path.home()`` each time they are used (a program that changes its
home, or a test that patches it, sees the new place).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .config import VENDOR_ENDPOINT, TelemetryConfig
from .sinks import sink_spec

__all__ = [
    "CI_VARIABLES",
    "DEVELOPMENT_ENVIRONMENTS",
    "Consent",
    "TelemetryOptIn",
    "ci_or_development",
    "decide",
    "destination_configured",
    "opt_out_file",
    "preference_file",
    "prompt_user_if_needed",
    "should_prompt_user",
    "vendor_opted_in",
]

CI_VARIABLES: Final = ("CI", "GITHUB_ACTIONS", "TRAVIS", "JENKINS", "GITLAB_CI", "CIRCLECI")
DEVELOPMENT_ENVIRONMENTS: Final = ("development", "dev", "test", "testing")
_ENABLED_VAR: Final = "AUTOMAGIK_TELEMETRY_ENABLED"


def opt_out_file() -> Path:
    """``~/.automagik-no-telemetry``: while it exists, nothing is sent (an opt-out)."""
    return Path.home() / ".automagik-no-telemetry"


def preference_file() -> Path:
    """``~/.automagik/telemetry_preference``: where the first-run prompt keeps a "yes"."""
    return Path.home() / ".automagik" / "telemetry_preference"


@dataclass(frozen=True)
class Consent:
    enabled: bool
    reason: str


def _do_not_track(environ: Mapping[str, str]) -> bool:
    value = environ.get("DO_NOT_TRACK")
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


def ci_or_development(environ: Mapping[str, str] | None = None) -> str | None:
    """Why this is a CI job or a development environment (e.g. ``CI environment
    (GITHUB_ACTIONS)``), or None. A CI variable counts when it is set to anything non-empty,
    as in the original."""
    env = os.environ if environ is None else environ
    for name in CI_VARIABLES:
        if env.get(name):
            return f"CI environment ({name})"
    stage = env.get("ENVIRONMENT")
    if stage is not None and stage.strip().lower() in DEVELOPMENT_ENVIRONMENTS:
        return f"development environment (ENVIRONMENT={stage})"
    return None


def destination_configured(config: TelemetryConfig, environ: Mapping[str, str]) -> bool:
    """Whether the user chose where rows go: a ClickHouse backend, or an OTLP endpoint that is
    not the vendor's for at least one signal, as ``otlp_config.resolve_otlp`` derives it (an
    OTEL_* variable shadowed by an option does not count; the vendor's URL given explicitly,
    or its base URL, does not either). Signals left on the vendor's endpoint are then not sent
    without an opt-in (``otlp_config.unconsented_signals``)."""
    return sink_spec(config.backend).configured(config, environ)


def vendor_opted_in(config: TelemetryConfig, environ: Mapping[str, str] | None = None) -> bool:
    """Whether rows may go to the vendor's endpoint: an opt-in, and in CI or development only
    the environment's own (see ``decide``)."""
    if config.enabled is not True:
        return False
    return config.sources.get("enabled", "code") != "code" or ci_or_development(environ) is None


def _not_from_here(why: str) -> Consent:
    return Consent(
        False,
        f"{why}: nothing is sent to the vendor's {VENDOR_ENDPOINT} from CI or development "
        "environments on enabled=True in code (AUTOMAGIK_TELEMETRY_ENABLED=true in the job's "
        "environment does; a destination you configure is sent to)",
    )


def decide(config: TelemetryConfig, environ: Mapping[str, str] | None = None) -> Consent:
    env = os.environ if environ is None else environ
    if config.enabled is not None:
        source = config.sources.get("enabled", "code")
        where = "enabled=" + str(config.enabled) if source == "code" else f"{source}"
        consent = Consent(config.enabled, f"{where} ({'opt-in' if config.enabled else 'opt-out'})")
        # In CI or development only the environment's own opt-in sends to the vendor (0.1 also
        # reads AUTOMAGIK_TELEMETRY_ENABLED before the CI variables): whoever runs the job set
        # it. enabled=True written in code does not, since code travels with a package into
        # every user's CI.
        if consent.enabled and not destination_configured(config, env):
            why = ci_or_development(env)
            if why is not None and not vendor_opted_in(config, env):
                return _not_from_here(why)
        return consent
    if _do_not_track(env):
        return Consent(False, "DO_NOT_TRACK is set (opt-out)")
    if opt_out_file().exists():
        return Consent(False, f"{opt_out_file()} exists (opt-out)")
    if destination_configured(config, env):
        return Consent(True, f"a destination was configured (backend={config.backend})")
    reason = (
        f"no destination configured: sending to the vendor's {VENDOR_ENDPOINT} needs an opt-in "
        "(enabled=True or AUTOMAGIK_TELEMETRY_ENABLED=true)"
    )
    why = ci_or_development(env)
    if why is not None:
        reason += f", and is never done from a {why}"
    return Consent(False, reason)


# --- the first-run prompt of automagik-telemetry 0.1 ----------------------------------------

_YES_IN_FILE: Final = frozenset({"true", "yes", "1", "enabled"})
_YES_IN_ENV: Final = frozenset({"true", "1", "yes", "on"})


class TelemetryOptIn:
    """Ask once, on a terminal, whether telemetry may be sent, and remember the answer for
    every automagik tool of this user: "yes" in ``~/.automagik/telemetry_preference``, "no" as
    the opt-out file ``~/.automagik-no-telemetry``. Never asks when there is no terminal or in
    CI; never raises because of the files."""

    @classmethod
    def _get_preference_file(cls) -> Path:
        return preference_file()

    @classmethod
    def _get_opt_out_file(cls) -> Path:
        return opt_out_file()

    @classmethod
    def has_user_decided(cls) -> bool:
        """Either file exists, or ``AUTOMAGIK_TELEMETRY_ENABLED`` is set (to anything)."""
        return (
            cls._get_preference_file().exists()
            or cls._get_opt_out_file().exists()
            or os.environ.get(_ENABLED_VAR) is not None
        )

    @classmethod
    def get_user_preference(cls) -> bool | None:
        """False if the opt-out file exists; else what the preference file says (true, yes,
        1 or enabled: True; anything else: False); else what ``AUTOMAGIK_TELEMETRY_ENABLED``
        says (true, 1, yes, on: True); else None (not decided)."""
        if cls._get_opt_out_file().exists():
            return False
        stored = cls._get_preference_file()
        if stored.exists():
            try:
                return stored.read_text().strip().lower() in _YES_IN_FILE
            except (OSError, UnicodeDecodeError):
                pass  # unreadable: as if there were none
        value = os.environ.get(_ENABLED_VAR)
        if value is not None:
            return value.strip().lower() in _YES_IN_ENV
        return None

    @classmethod
    def save_preference(cls, enabled: bool) -> None:
        """Remember the answer (each file change on its own; a failure is ignored)."""
        stored, opted_out = cls._get_preference_file(), cls._get_opt_out_file()
        try:
            if enabled:
                if opted_out.exists():
                    opted_out.unlink()
                stored.parent.mkdir(parents=True, exist_ok=True)
                stored.write_text("enabled")
            else:
                opted_out.touch()
                if stored.exists():
                    stored.unlink()
        except Exception:  # a preference must never stop the program
            pass

    @classmethod
    def _supports_color(cls) -> bool:
        if sys.platform == "win32":
            try:
                import platform

                return int(platform.version().split(".")[0]) >= 10
            except Exception:  # an unknown version: no colour
                return False
        isatty = getattr(sys.stdout, "isatty", None)
        if isatty is None or not isatty():
            return False
        term = os.environ.get("TERM", "")
        return term not in ("", "dumb")

    @classmethod
    def _colorize(cls, text: str, color_code: str) -> str:
        if not cls._supports_color():
            return text
        return f"\033[{color_code}m{text}\033[0m"

    @staticmethod
    def _is_interactive() -> bool:
        """Both stdin and stdout are terminals, and no CI variable is set."""
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            return False
        return not any(os.environ.get(name) for name in CI_VARIABLES)

    @classmethod
    def _message(cls, project_name: str) -> str:
        c = cls._colorize
        ok, no = c("+", "92"), c("-", "91")
        heading = c(f"Help Improve {project_name}!", "1;96")
        return "\n".join(
            [
                "",
                heading,
                "=" * len(f"Help Improve {project_name}!"),
                "",
                f"May {c(project_name, '1')} send anonymous usage telemetry?",
                "",
                c("What we collect", "1;92") + " (only if you say yes):",
                f"  {ok} Feature usage: which commands and APIs run",
                f"  {ok} Performance: how long operations take",
                f"  {ok} Errors: their type and where they happened",
                f"  {ok} An anonymous id of this user account (a random UUID)",
                "",
                c("What we DON'T collect:", "1;91"),
                f"  {no} Your messages, files or other content",
                f"  {no} API keys or credentials",
                f"  {no} Names, e-mail addresses or anything else that identifies you",
                "",
                c("Your choice, at any time:", "1;94"),
                "  - it goes to telemetry.namastex.ai unless your setup names its own destination",
                "  - turn it off: "
                + c("AUTOMAGIK_TELEMETRY_ENABLED=false", "93")
                + ", DO_NOT_TRACK=1, or the file ~/.automagik-no-telemetry",
                "",
            ]
        )

    @classmethod
    def prompt_user(cls, project_name: str = "Automagik") -> bool:
        """The stored decision if there is one; else, on a terminal outside CI, ask (y/yes is
        a yes, anything else, Ctrl-C or end of input a no) and store the answer; else False
        without asking or storing anything."""
        if cls.has_user_decided():
            return bool(cls.get_user_preference())
        if not cls._is_interactive():
            return False
        print(cls._message(project_name))
        try:
            answer = input(cls._colorize("Enable telemetry? [y/N]: ", "1;96"))
        except (KeyboardInterrupt, EOFError):
            print("\n" + cls._colorize("Telemetry disabled.", "1;93"))
            cls.save_preference(False)
            return False
        enabled = answer.strip().lower() in ("y", "yes")
        cls.save_preference(enabled)
        if enabled:
            print("\n" + cls._colorize("Thank you!", "1;92") + " Telemetry enabled.\n")
        else:
            print("\n" + cls._colorize("Telemetry disabled.", "1;93"))
            print("  To turn it on later: export AUTOMAGIK_TELEMETRY_ENABLED=true\n")
        return enabled


def should_prompt_user(project_name: str = "Automagik") -> bool:
    """Whether ``prompt_user_if_needed`` would ask: nothing decided yet, and a terminal outside
    CI."""
    return not TelemetryOptIn.has_user_decided() and TelemetryOptIn._is_interactive()


def prompt_user_if_needed(project_name: str = "Automagik") -> bool:
    """The user's decision, asking for it first if needed (``TelemetryOptIn.prompt_user``)."""
    return TelemetryOptIn.prompt_user(project_name)
