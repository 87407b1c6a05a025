"""Privacy: find personal data in telemetry values and hash, redact or shorten it.

The public functions are those of automagik-telemetry 0.1 (same names, arguments, defaults and
replacement texts). ``Sanitizer`` is what the client applies to attributes, metric labels and log
bodies when it is given a ``PrivacyConfig``; the functions below are built on it.

How a string is cleaned: it is first cut to ``max_string_length``, then scanned once, left to
right, for API keys, e-mail addresses, card numbers, IPv4 addresses, phone numbers and home
directories (at one position the first kind in that order wins). Each match is replaced by its
kind's replacement; a replacement is never scanned again, so the hex digits of a hash are not
taken for a phone number.

=============  ===========================  ===========================  ===================
kind           hash (default)               redact                       truncate
=============  ===========================  ===========================  ===================
API key        redaction_text               redaction_text               redaction_text
e-mail         ``sha256:<16 hex>``          redaction_text               ``us***@domain``
card number    redaction_text               redaction_text               redaction_text
IPv4           ``sha256:<16 hex>``          ``X.X.X.X``                  ``X.X.X.X``
phone          ``sha256:<16 hex>``          redaction_text               ``XXX-XXX-XXXX``
home path      ``/[USER_PATH]``             ``/[USER_PATH]``             ``/[USER_PATH]``
=============  ===========================  ===========================  ===================

An unknown strategy leaves e-mail addresses and phone numbers as they are (as the original does);
``Sanitizer`` refuses one.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "DEFAULT_CONFIG",
    "SENSITIVE_KEYS",
    "Patterns",
    "PrivacyConfig",
    "SanitizationStrategy",
    "Sanitizer",
    "detect_pii",
    "hash_value",
    "redact_sensitive_keys",
    "sanitize_email",
    "sanitize_phone",
    "sanitize_telemetry_data",
    "sanitize_value",
    "truncate_string",
]

SanitizationStrategy = Literal["hash", "redact", "truncate"]
STRATEGIES: Final = ("hash", "redact", "truncate")


@dataclass
class PrivacyConfig:
    """How personal data is replaced: ``strategy`` (hash, redact or truncate), the length
    strings are cut to, and the text that stands for a redacted value."""

    strategy: SanitizationStrategy = "hash"
    max_string_length: int = 1000
    redaction_text: str = "[REDACTED]"


DEFAULT_CONFIG: Final = PrivacyConfig()

#: Key names whose values are replaced whole (matched case-insensitively, as substrings).
SENSITIVE_KEYS: Final[list[str]] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "private_key",
    "credit_card",
    "ssn",
    "social_security",
]

_API_KEY = r"\b(?:[sp]k_(?:live|test)_|bearer\s+|api[_-]?key[_-]?)[A-Za-z0-9_-]{20,}"
_EMAIL = r"[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}"
_CARD = r"\b[0-9]{4}(?:[ -]?[0-9]{4}){3}\b"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"\b{_OCTET}(?:\.{_OCTET}){{3}}\b"
_PHONE = (
    r"(?<![0-9])(?:\+?[0-9]{1,3}[\s.-]?)?"  # country code
    r"(?:\([0-9]{2,4}\)|[0-9]{2,4})[\s.-]?[0-9]{3,4}[\s.-]?[0-9]{4}"
)
_USER_PATH = r"/(?:home|users)/[A-Za-z0-9_-]+|[a-z]:\\users\\[A-Za-z0-9_-]+"


class Patterns:
    """The compiled expressions of each kind of personal data."""

    API_KEY: re.Pattern[str] = re.compile(_API_KEY, re.IGNORECASE)
    EMAIL: re.Pattern[str] = re.compile(_EMAIL)
    CREDIT_CARD: re.Pattern[str] = re.compile(_CARD)
    IPV4: re.Pattern[str] = re.compile(_IPV4)
    PHONE: re.Pattern[str] = re.compile(_PHONE)
    USER_PATH: re.Pattern[str] = re.compile(_USER_PATH, re.IGNORECASE)


# One scan for all kinds; the group names say which kind matched. Order = priority.
_GROUPS: Final = (
    ("api_key", f"(?i:{_API_KEY})"),
    ("email", _EMAIL),
    ("card", _CARD),
    ("ipv4", _IPV4),
    ("phone", _PHONE),
    ("user_path", f"(?i:{_USER_PATH})"),
)
_ANY: Final = re.compile("|".join(f"(?P<{name}>{rx})" for name, rx in _GROUPS))

# What each kind cannot match without, tested before the scan with string methods and one
# expression that starts with a character class (which the regex engine skips to quickly): most
# telemetry strings hold none of these, and a scan with only the kinds a string can hold is
# faster. A phone number or a card number is nine characters or more of digits and
# separators, starting with a digit; an IPv4 address holds a digit, a dot and a digit. Nothing
# shorter than six characters can hold any kind (the shortest, an e-mail address: ``a@b.cd``).
# Digits are ASCII digits.
_NUMBERS: Final = re.compile(r"[0-9](?:[0-9\s.()+-]{8}|\.[0-9])")
_SHORTEST: Final = 6
#: how deep ``Sanitizer`` walks nested lists and mappings
MAX_DEPTH: Final = 32
_SCALARS: Final = frozenset({int, float, bool, type(None)})
_SCANS: dict[tuple[bool, ...], re.Pattern[str] | None] = {}
_NEEDED_BY: Final = {"api_key": 0, "email": 1, "card": 2, "phone": 2, "ipv4": 2, "user_path": 3}


def _scan_for(value: str) -> re.Pattern[str] | None:
    """The expression of the kinds ``value`` could hold, or None if it can hold none."""
    if len(value) < _SHORTEST:
        return None
    folded = value.casefold()
    key = (
        "api" in folded or "bearer" in folded or "k_live_" in folded or "k_test_" in folded,
        "@" in value,
        _NUMBERS.search(value) is not None,
        "/home/" in folded or "/users/" in folded or ":\\users\\" in folded,
    )
    try:
        return _SCANS[key]
    except KeyError:
        parts = [f"(?P<{name}>{rx})" for name, rx in _GROUPS if key[_NEEDED_BY[name]]]
        scan = _SCANS[key] = re.compile("|".join(parts)) if parts else None
        return scan


def _clean(value: str, replace: Callable[[re.Match[str]], str]) -> str:
    scan = _scan_for(value)
    return value if scan is None else scan.sub(replace, value)


def hash_value(value: str) -> str:
    """``sha256:`` and the first 16 hex digits of the SHA-256 of the UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def detect_pii(value: Any) -> bool:
    """Whether a string holds any kind of personal data listed above (False for non-strings)."""
    return isinstance(value, str) and _ANY.search(value) is not None


def truncate_string(value: str, max_length: int) -> str:
    """``value`` if it has at most ``max_length`` characters, else its start and ``...``,
    ``max_length`` characters in all."""
    if len(value) <= max_length:
        return value
    return value[: max(max_length - 3, 0)] + "..."


def _email_truncated(address: str) -> str:
    user, at, domain = address.partition("@")
    return f"{user[:2]}***@{domain}" if at else address


def _replacer(config: PrivacyConfig) -> Callable[[re.Match[str]], str]:
    strategy, redacted = config.strategy, config.redaction_text
    by_kind: dict[str, Callable[[str], str]] = {
        "api_key": lambda _: redacted,
        "card": lambda _: redacted,
        "user_path": lambda _: "/[USER_PATH]",
        "ipv4": hash_value if strategy == "hash" else (lambda _: "X.X.X.X"),
    }
    if strategy == "hash":
        by_kind["email"] = by_kind["phone"] = hash_value
    elif strategy == "redact":
        by_kind["email"] = by_kind["phone"] = lambda _: redacted
    elif strategy == "truncate":
        by_kind["email"] = _email_truncated
        by_kind["phone"] = lambda _: "XXX-XXX-XXXX"
    else:  # unknown strategy: the original leaves these two alone
        by_kind["email"] = by_kind["phone"] = lambda text: text

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or ""
        return by_kind[kind](match.group(0))

    return replace


class Sanitizer:
    """The sanitiser of one ``PrivacyConfig``, for the client's hot path.

    ``attributes`` returns a new mapping: values of sensitive keys (``SENSITIVE_KEYS``) become
    ``redaction_text``, strings are cleaned by ``text``, lists and mappings recursively, other
    values (numbers, booleans, None) are kept. ``text`` remembers the last few thousand strings
    it cleaned, since telemetry repeats the same values.
    """

    def __init__(self, config: PrivacyConfig) -> None:
        if config.strategy not in STRATEGIES:
            raise ValueError(
                f"PrivacyConfig: strategy={config.strategy!r} is not allowed: expected one of "
                + ", ".join(repr(s) for s in STRATEGIES)
            )
        if (
            not isinstance(config.max_string_length, int)
            or isinstance(config.max_string_length, bool)
            or config.max_string_length < 1
        ):
            raise ValueError(
                f"PrivacyConfig: max_string_length={config.max_string_length!r} is not allowed: "
                "expected a whole number of at least 1"
            )
        if not isinstance(config.redaction_text, str):
            raise ValueError(
                f"PrivacyConfig: redaction_text={config.redaction_text!r} is not allowed: "
                "expected a string"
            )
        self.config = config
        self._redacted = config.redaction_text
        self._max = config.max_string_length
        replace = _replacer(config)
        limit = self._max

        def clean(value: str) -> str:
            if len(value) > limit:
                value = truncate_string(value, limit)
            return _clean(value, replace)

        self._clean = clean
        self.text: Callable[[str], str] = functools.lru_cache(maxsize=4096)(clean)
        self._sensitive: dict[Any, bool] = {}  # key name -> is it sensitive (names repeat)

    def _is_sensitive(self, key: Any) -> bool:
        known = self._sensitive.get(key)
        if known is None:
            if len(self._sensitive) >= 4096:
                self._sensitive.clear()
            known = self._sensitive[key] = _sensitive_key(key, SENSITIVE_KEYS)
        return known

    def attributes(self, attrs: Mapping[str, Any], _depth: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = {}
        text = self.text
        known = self._sensitive
        for key, value in attrs.items():
            sensitive = known.get(key)
            if sensitive is None:
                sensitive = self._is_sensitive(key)
            if sensitive:
                out[key] = self._redacted
            elif type(value) is str:
                out[key] = value if len(value) < _SHORTEST else text(value)
            elif type(value) in _SCALARS:
                out[key] = value
            else:
                out[key] = self.value(value, _depth + 1)
        return out

    def value(self, value: Any, _depth: int = 0) -> Any:
        """Any value: strings cleaned, lists, tuples and mappings walked (keys of mappings
        checked too); past ``MAX_DEPTH`` levels (or in a structure that contains itself) the
        rest is replaced by ``redaction_text``, unread."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | tuple | Mapping):
            if _depth >= MAX_DEPTH:
                return self._redacted
            if isinstance(value, Mapping):
                return self.attributes(value, _depth)
            return [self.value(item, _depth + 1) for item in value]
        return value


def _sensitive_key(key: Any, keys: list[str]) -> bool:
    name = str(key).lower()
    return any(k.lower() in name for k in keys)


@functools.lru_cache(maxsize=64)
def _cached_sanitizer(strategy: str, max_string_length: int, redaction_text: str) -> _Cleaner:
    return _Cleaner(PrivacyConfig(strategy, max_string_length, redaction_text))  # type: ignore[arg-type]


class _Cleaner:
    """The string cleaning of the public functions: like ``Sanitizer.text`` but tolerant of a
    config the original accepts (any strategy, any length)."""

    def __init__(self, config: PrivacyConfig) -> None:
        self.max = config.max_string_length
        self.replace = _replacer(config)

    def __call__(self, value: str) -> str:
        return _clean(truncate_string(value, self.max), self.replace)


def _cleaner(config: PrivacyConfig | None) -> _Cleaner:
    cfg = config or DEFAULT_CONFIG
    try:
        return _cached_sanitizer(cfg.strategy, cfg.max_string_length, cfg.redaction_text)
    except TypeError:  # unhashable values in a hand-made config
        return _Cleaner(cfg)


def sanitize_phone(value: str, config: PrivacyConfig | None = None) -> str:
    """Phone numbers in ``value`` hashed, redacted or written ``XXX-XXX-XXXX``."""
    cfg = config or DEFAULT_CONFIG
    if cfg.strategy == "hash":
        return Patterns.PHONE.sub(lambda m: hash_value(m.group(0)), value)
    if cfg.strategy == "redact":
        return Patterns.PHONE.sub(lambda _: cfg.redaction_text, value)
    if cfg.strategy == "truncate":
        return Patterns.PHONE.sub("XXX-XXX-XXXX", value)
    return value


def sanitize_email(value: str, config: PrivacyConfig | None = None) -> str:
    """E-mail addresses in ``value`` hashed, redacted or shortened to ``us***@domain``."""
    cfg = config or DEFAULT_CONFIG
    if cfg.strategy == "hash":
        return Patterns.EMAIL.sub(lambda m: hash_value(m.group(0)), value)
    if cfg.strategy == "redact":
        return Patterns.EMAIL.sub(lambda _: cfg.redaction_text, value)
    if cfg.strategy == "truncate":
        return Patterns.EMAIL.sub(lambda m: _email_truncated(m.group(0)), value)
    return value


def sanitize_value(value: Any, config: PrivacyConfig | None = None) -> Any:
    """``value`` with personal data replaced: strings cleaned, lists and dicts walked (a new
    list or dict), numbers, booleans, None and other objects returned as they are."""
    if isinstance(value, str):
        return _cleaner(config)(value)
    if isinstance(value, list):
        return [sanitize_value(item, config) for item in value]
    if isinstance(value, dict):
        return {key: sanitize_value(item, config) for key, item in value.items()}
    return value


def redact_sensitive_keys(
    obj: dict[str, Any], keys: list[str], config: PrivacyConfig | None = None
) -> dict[str, Any]:
    """A copy of ``obj`` where the value of every key containing one of ``keys`` (in any case)
    is ``redaction_text``; nested dicts, and dicts inside lists, are handled the same way."""
    redacted = (config or DEFAULT_CONFIG).redaction_text

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: redacted if _sensitive_key(k, keys) else walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    result: dict[str, Any] = walk(obj)
    return result


def sanitize_telemetry_data(
    data: dict[str, Any], config: PrivacyConfig | None = None
) -> dict[str, Any]:
    """Sensitive keys redacted (``SENSITIVE_KEYS``), then every string cleaned."""
    result: dict[str, Any] = sanitize_value(
        redact_sensitive_keys(data, SENSITIVE_KEYS, config), config
    )
    return result
