"""The privacy module: the 0.1 functions (names, defaults, replacement texts) and the
``Sanitizer`` the client applies."""

from __future__ import annotations

import dataclasses
import hashlib
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from automagik_telemetry import privacy
from automagik_telemetry.privacy import (
    DEFAULT_CONFIG,
    SENSITIVE_KEYS,
    Patterns,
    PrivacyConfig,
    Sanitizer,
    detect_pii,
    hash_value,
    redact_sensitive_keys,
    sanitize_email,
    sanitize_phone,
    sanitize_telemetry_data,
    sanitize_value,
    truncate_string,
)

REDACT = PrivacyConfig(strategy="redact")
TRUNCATE = PrivacyConfig(strategy="truncate")


def test_privacy_config_is_a_dataclass_with_the_original_defaults() -> None:
    assert dataclasses.is_dataclass(PrivacyConfig)
    fields = {f.name: f.default for f in dataclasses.fields(PrivacyConfig)}
    assert fields == {"strategy": "hash", "max_string_length": 1000, "redaction_text": "[REDACTED]"}
    assert PrivacyConfig() == DEFAULT_CONFIG


def test_hash_value_is_sha256_prefix_and_16_hex_digits() -> None:
    assert hash_value("abc") == "sha256:" + hashlib.sha256(b"abc").hexdigest()[:16]
    assert hash_value("abc") == "sha256:ba7816bf8f01cfea"
    assert hash_value("é") == "sha256:" + hashlib.sha256("é".encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    "text",
    [
        "user@example.com",
        "write to test.user+tag@example.co.uk today",
        "+1-555-555-5555",
        "(555) 555-5555",
        "555.555.5555",
        "+44 20 7946 0958",
        "sk_live_abcdefghijklmnopqrstuvwx",
        "Bearer abc123def456ghi789jkl012mno345pqr",
        "api_key_abc123def456ghi789jkl012mno345pqr",
        "4532-1234-5678-9010",
        "4532123456789010",
        "Server IP: 8.8.8.8",
        "/home/johndoe/project/file.py",
        "/Users/janedoe/Documents",
        "C:\\Users\\johndoe\\file.txt",
    ],
)
def test_detect_pii_finds_each_kind(text: str) -> None:
    assert detect_pii(text) is True


@pytest.mark.parametrize("value", ["Hello world", "Error code 404", "v1.2.3", "", 123, None, True])
def test_detect_pii_ignores_plain_text_and_non_strings(value: object) -> None:
    assert detect_pii(value) is False


def test_patterns_are_exposed_per_kind() -> None:
    assert Patterns.EMAIL.search("a.b@c.org")
    assert Patterns.PHONE.search("+44 1234 567890")
    assert Patterns.API_KEY.search("PK_TEST_abcdefghijklmnopqrstuvwx")
    assert Patterns.CREDIT_CARD.search("4532 1234 5678 9010")
    assert Patterns.IPV4.search("10.0.0.255")
    assert not Patterns.IPV4.search("999.1.1.1")
    assert Patterns.USER_PATH.search("D:\\Users\\janedoe\\Desktop")


def test_phone_strategies() -> None:
    assert sanitize_phone("+1-555-555-5555") == hash_value("+1-555-555-5555")
    assert sanitize_phone("call (555) 555-5555 now", REDACT) == "call [REDACTED] now"
    assert sanitize_phone("555-555-5555", TRUNCATE) == "XXX-XXX-XXXX"
    assert (
        sanitize_phone("555-555-5555", PrivacyConfig(redaction_text="[HIDDEN]", strategy="redact"))
        == "[HIDDEN]"
    )
    assert sanitize_phone("555-555-5555", PrivacyConfig(strategy="other")) == "555-555-5555"  # type: ignore[arg-type]
    assert sanitize_phone("Hello world") == "Hello world"


def test_email_strategies() -> None:
    assert sanitize_email("user@example.com") == hash_value("user@example.com")
    assert sanitize_email("mail user@example.com", REDACT) == "mail [REDACTED]"
    assert sanitize_email("user@example.com", TRUNCATE) == "us***@example.com"
    assert sanitize_email("a@example.com", TRUNCATE) == "a***@example.com"
    assert sanitize_email("user@example.com", PrivacyConfig(strategy="x")) == "user@example.com"  # type: ignore[arg-type]


def test_truncate_string() -> None:
    assert truncate_string("Hello", 10) == "Hello"
    assert truncate_string("Hello", 5) == "Hello"
    assert truncate_string("Hello world!", 10) == "Hello w..."
    assert len(truncate_string("x" * 50, 10)) == 10


def test_sanitize_value_replaces_each_kind_by_the_strategy() -> None:
    text = "mail user@example.com from 192.168.1.100 in /home/johndoe/x"
    hashed = sanitize_value(text)
    assert hashed == (
        f"mail {hash_value('user@example.com')} from {hash_value('192.168.1.100')} "
        "in /[USER_PATH]/x"
    )
    redacted = sanitize_value(text, REDACT)
    assert redacted == "mail [REDACTED] from X.X.X.X in /[USER_PATH]/x"
    assert sanitize_value("card 4532-1234-5678-9010", REDACT) == "card [REDACTED]"
    assert sanitize_value("key sk_test_abcdefghijklmnopqrstuvwxyz1") == "key [REDACTED]"
    assert sanitize_value("+1-555-555-5555", TRUNCATE) == "XXX-XXX-XXXX"


def test_a_card_number_is_redacted_whole_even_with_hashing() -> None:
    assert sanitize_value("paid with 4532 1234 5678 9010") == "paid with [REDACTED]"


def test_a_replacement_is_not_scanned_again() -> None:
    # the hash of this address has a run of ten digits, which the phone pattern would take
    address = next(
        f"u{i}@example.com"
        for i in range(100_000)
        if Patterns.PHONE.search(hash_value(f"u{i}@example.com"))
    )
    assert sanitize_value(address) == hash_value(address)


def test_sanitize_value_walks_lists_and_dicts_and_keeps_other_values() -> None:
    marker = object()
    data = {"n": 3, "f": 1.5, "ok": True, "none": None, "obj": marker, "l": ["a@b.io", 1]}
    result = sanitize_value(data)
    assert result == {
        "n": 3,
        "f": 1.5,
        "ok": True,
        "none": None,
        "obj": marker,
        "l": [hash_value("a@b.io"), 1],
    }
    assert result["obj"] is marker
    assert len(sanitize_value("x" * 2000)) == 1000
    assert len(sanitize_value("x" * 2000, PrivacyConfig(max_string_length=50))) == 50


def test_redact_sensitive_keys_by_substring_in_any_case() -> None:
    data = {
        "username": "john",
        "Password": "p",
        "my_API_KEY": "k",
        "nested": {"old_password": "p", "theme": "dark", "deeper": {"token": "t"}},
        "items": [{"secret": "s", "keep": 1}, 2],
    }
    result = redact_sensitive_keys(data, SENSITIVE_KEYS)
    assert result == {
        "username": "john",
        "Password": "[REDACTED]",
        "my_API_KEY": "[REDACTED]",
        "nested": {
            "old_password": "[REDACTED]",
            "theme": "dark",
            "deeper": {"token": "[REDACTED]"},
        },
        "items": [{"secret": "[REDACTED]", "keep": 1}, 2],
    }
    assert data["Password"] == "p"  # a copy
    assert redact_sensitive_keys({"pwd": 1}, ["pwd"], PrivacyConfig(redaction_text="[HIDDEN]")) == {
        "pwd": "[HIDDEN]"
    }


def test_sensitive_keys_are_the_originals() -> None:
    assert SENSITIVE_KEYS == [
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


def test_sanitize_telemetry_data_redacts_keys_then_cleans_values() -> None:
    data = {
        "user": {"email": "test@example.com", "password": "secret"},
        "message": "Error at /home/user/project/file.ts",
        "count": 2,
    }
    assert sanitize_telemetry_data(data) == {
        "user": {"email": hash_value("test@example.com"), "password": "[REDACTED]"},
        "message": "Error at /[USER_PATH]/project/file.ts",
        "count": 2,
    }
    custom = sanitize_telemetry_data(data, PrivacyConfig(strategy="redact", redaction_text="[H]"))
    assert custom["user"] == {"email": "[H]", "password": "[H]"}


# --- Sanitizer ------------------------------------------------------------------------------


def test_sanitizer_cleans_attributes() -> None:
    sanitizer = Sanitizer(PrivacyConfig())
    attrs = {"email": "a@b.io", "api_token": "x", "n": 1, "path": "/home/bob/f", "tags": ["a@b.io"]}
    assert sanitizer.attributes(attrs) == {
        "email": hash_value("a@b.io"),
        "api_token": "[REDACTED]",
        "n": 1,
        "path": "/[USER_PATH]/f",
        "tags": [hash_value("a@b.io")],
    }
    assert attrs["email"] == "a@b.io"  # a new mapping
    assert sanitizer.text("from 10.1.2.3") == f"from {hash_value('10.1.2.3')}"
    assert sanitizer.text("plain") == "plain"


def test_sanitizer_agrees_with_sanitize_value() -> None:
    for config in (PrivacyConfig(), REDACT, TRUNCATE, PrivacyConfig(max_string_length=20)):
        sanitizer = Sanitizer(config)
        for text in ("a@b.io and +1-555-555-5555", "x" * 40, "ip 1.2.3.4 /Users/x/y"):
            assert sanitizer.text(text) == sanitize_value(text, config)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (PrivacyConfig(strategy="blur"), "strategy='blur' is not allowed"),  # type: ignore[arg-type]
        (PrivacyConfig(max_string_length=0), "max_string_length=0 is not allowed"),
        (PrivacyConfig(redaction_text=None), "redaction_text=None is not allowed"),  # type: ignore[arg-type]
    ],
)
def test_sanitizer_refuses_a_bad_config(config: PrivacyConfig, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sanitizer(config)


PLAIN = st.text(alphabet=string.ascii_letters + " ,;!?", max_size=200)


@given(PLAIN)
def test_text_without_personal_data_is_unchanged(text: str) -> None:
    assert Sanitizer(PrivacyConfig(max_string_length=1000)).text(text) == text


@given(
    st.from_regex(r"[a-z]{1,10}@[a-z]{2,10}\.(com|org|io)", fullmatch=True),
    PLAIN,
    PLAIN,
)
def test_no_address_survives_any_strategy(address: str, before: str, after: str) -> None:
    for strategy in privacy.STRATEGIES:
        cleaned = Sanitizer(PrivacyConfig(strategy=strategy)).text(f"{before} {address} {after}")
        assert address not in cleaned


RICH = st.text(alphabet="0123456789 .-()+@/\\:_abkpsilvetrhomeuUSERAPIB", max_size=80)


@given(RICH)
@example("at /home/bob and C:\\Users\\al, ip 10.0.0.1, (555) 555-5555 or 4532 1234 5678 9010")
@example("x@y.io Bearer abcdefghijklmnopqrstuvwxyz 1.2.3.4.5 +44 20 7946 0958")
@example("API_KEY_abcdefghijklmnopqrstuvwxyz0123 /USERS/Ann 12345678.9")
def test_the_quick_checks_before_the_scan_change_nothing(text: str) -> None:
    # the full scan of every kind, without the checks that pick the kinds a string can hold
    for config in (PrivacyConfig(), REDACT, TRUNCATE):
        full = privacy._ANY.sub(privacy._replacer(config), text)
        assert Sanitizer(config).text(text) == full


NESTED = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.binary(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=12), NESTED, max_size=6))
def test_attributes_of_any_shape_never_raise(attrs: dict[str, object]) -> None:
    out = Sanitizer(PrivacyConfig()).attributes(attrs)
    assert set(out) == set(attrs)


def test_a_structure_that_contains_itself_is_cut() -> None:
    loop: list[object] = ["a@b.io"]
    loop.append(loop)
    out = Sanitizer(PrivacyConfig()).attributes({"loop": loop, "ok": 1})
    assert out["ok"] == 1
    level = out["loop"]
    for _ in range(privacy.MAX_DEPTH - 1):
        assert level[0] == hash_value("a@b.io")
        level = level[1]
    assert level == "[REDACTED]"
