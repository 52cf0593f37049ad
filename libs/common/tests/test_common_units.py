"""Unit tests of the pure modules of hydite_common: errors, keys, credentials, events, pricing,
settings and log redaction. No network, no database, no subprocess."""

from __future__ import annotations

import hashlib
import os
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from hydite_common.credentials import CredentialCipher, CredentialDecryptError, mask_secret
from hydite_common.errors import (
    AuthenticationError,
    BudgetExceededError,
    ConflictError,
    HyditeError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    UpstreamError,
    UpstreamTimeoutError,
    to_openai_error,
)
from hydite_common.events import (
    USAGE_SCHEMA_VERSION,
    PoisonMessage,
    UsageEvent,
    batch_message_id,
    decode_batch,
    encode_batch,
)
from hydite_common.keys import (
    VIRTUAL_KEY_PREFIX,
    generate_key,
    hash_key,
    key_from_headers,
    key_or_hash_to_hash,
    looks_like_hash,
    mask_key,
)
from hydite_common.pricing import UNKNOWN, UNPRICED, CompiledPrice, list_price, resolve_price
from hydite_common.settings import (
    DEV_MASTER_KEY,
    DEV_SALT_KEY,
    BaseServiceSettings,
    DatabaseSettings,
    SaltKeySettings,
    SecretSettings,
    to_libpq_url,
    to_sqlalchemy_url,
    with_database_name,
)
from hydite_common.telemetry import redact


@pytest.fixture(autouse=True)
def _no_hydite_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every HYDITE_ variable so the caller's environment cannot leak into settings."""
    for name in list(os.environ):
        if name.upper().startswith("HYDITE_"):
            monkeypatch.delenv(name)


# ---------------------------------------------------------------- errors

ERROR_TABLE: list[tuple[type[HyditeError], int, str, str]] = [
    (HyditeError, 500, "api_error", "internal_error"),
    (InvalidRequestError, 400, "invalid_request_error", "invalid_request"),
    (AuthenticationError, 401, "authentication_error", "invalid_api_key"),
    (PermissionDeniedError, 403, "permission_error", "permission_denied"),
    (NotFoundError, 404, "invalid_request_error", "not_found"),
    (ConflictError, 409, "invalid_request_error", "conflict"),
    (RequestTimeoutError, 408, "invalid_request_error", "request_timeout"),
    (PayloadTooLargeError, 413, "invalid_request_error", "payload_too_large"),
    (UnprocessableEntityError, 422, "invalid_request_error", "invalid_value"),
    (RateLimitError, 429, "rate_limit_error", "rate_limit_exceeded"),
    (BudgetExceededError, 429, "insufficient_quota", "budget_exceeded"),
    (UpstreamError, 502, "api_error", "upstream_error"),
    (ServiceUnavailableError, 503, "api_error", "service_unavailable"),
    (UpstreamTimeoutError, 504, "timeout_error", "timeout"),
]


def _error_object(body: bytes) -> dict[str, Any]:
    parsed = orjson.loads(body)
    assert isinstance(parsed, dict)
    assert list(parsed) == ["error"]
    error = parsed["error"]
    assert isinstance(error, dict)
    assert set(error) == {"message", "type", "code", "param"}
    return error


@pytest.mark.parametrize(
    ("cls", "status", "error_type", "code"), ERROR_TABLE, ids=[row[0].__name__ for row in ERROR_TABLE]
)
def test_error_class_status_type_and_code(
    cls: type[HyditeError], status: int, error_type: str, code: str
) -> None:
    """Each error class renders its own HTTP status, OpenAI type and default code."""
    exc = cls("something happened")
    assert (exc.status, exc.error_type, exc.code) == (status, error_type, code)
    assert exc.to_body() == {
        "error": {"message": "something happened", "type": error_type, "code": code, "param": None}
    }
    got_status, body = to_openai_error(exc)
    assert got_status == status
    assert _error_object(body) == {
        "message": "something happened",
        "type": error_type,
        "code": code,
        "param": None,
    }


def test_every_error_subclass_is_in_the_table() -> None:
    """The table above covers every HyditeError subclass defined by hydite_common.errors."""
    covered = {row[0] for row in ERROR_TABLE}
    assert set(HyditeError.__subclasses__()) <= covered


def test_error_code_param_and_headers_override() -> None:
    """An explicit code, param and headers are kept; headers are copied, not shared."""
    headers = {"Retry-After": "3"}
    exc = RateLimitError("slow down", code="tpm_exceeded", param="model", headers=headers)
    headers["Retry-After"] = "99"
    assert exc.code == "tpm_exceeded"
    assert exc.param == "model"
    assert exc.headers == {"Retry-After": "3"}
    status, body = to_openai_error(exc)
    assert status == 429
    assert _error_object(body) == {
        "message": "slow down",
        "type": "rate_limit_error",
        "code": "tpm_exceeded",
        "param": "model",
    }


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("db password is hunter2"),
        KeyError("sk-secret-key-material"),
        ValueError(),
        TimeoutError("internal host 10.0.0.7"),
    ],
    ids=["runtime", "keyerror", "empty-valueerror", "timeout"],
)
def test_unknown_exception_hides_details(exc: BaseException) -> None:
    """An exception that is not a HyditeError becomes a generic 500 without its message."""
    status, body = to_openai_error(exc)
    assert status == 500
    error = _error_object(body)
    assert error == {
        "message": "internal gateway error",
        "type": "api_error",
        "code": "internal_error",
        "param": None,
    }
    for detail in ("hunter2", "sk-secret", "10.0.0.7", type(exc).__name__):
        assert detail not in body.decode()


# ---------------------------------------------------------------- keys


def test_hash_key_is_sha256_hex() -> None:
    """hash_key is the lowercase sha256 hex digest of the UTF-8 key."""
    key = "sk-hydite-abc"
    assert hash_key(key) == hashlib.sha256(key.encode()).hexdigest()
    assert looks_like_hash(hash_key(key))
    assert hash_key("sk-ü") == hashlib.sha256("sk-ü".encode()).hexdigest()


def test_generate_key_prefix_length_and_uniqueness() -> None:
    """Generated keys carry the sk-hydite- prefix, 256 bits of randomness and never repeat."""
    assert VIRTUAL_KEY_PREFIX == "sk-hydite-"
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert key.startswith("sk-hydite-")
        assert len(key) - len(VIRTUAL_KEY_PREFIX) >= 43


@pytest.mark.parametrize(
    ("key", "masked"),
    [
        ("sk-hydite-abcdefgh1234", "sk-...1234"),
        ("123456789", "sk-...6789"),
        ("sk-short", "sk-..."),
        ("", "sk-..."),
    ],
)
def test_mask_key(key: str, masked: str) -> None:
    """mask_key shows only the last four characters, and nothing of a short key."""
    assert mask_key(key) == masked


def test_key_or_hash_to_hash() -> None:
    """A sha256 hex digest passes through unchanged; anything else is hashed."""
    key = "sk-hydite-some-key"
    digest = hash_key(key)
    assert key_or_hash_to_hash(digest) == digest
    assert key_or_hash_to_hash(key) == digest
    upper = digest.upper()
    assert key_or_hash_to_hash(upper) == hash_key(upper)
    assert key_or_hash_to_hash(digest[:-1]) == hash_key(digest[:-1])


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer sk-a"}, "sk-a"),
        ({"Authorization": "bearer   sk-a  "}, "sk-a"),
        ({"Authorization": "sk-raw"}, "sk-raw"),
        ({"api-key": "sk-b"}, "sk-b"),
        ({"x-api-key": "sk-c"}, "sk-c"),
        ({"Authorization": "Bearer sk-a", "api-key": "sk-b", "x-api-key": "sk-c"}, "sk-a"),
        ({"api-key": "sk-b", "x-api-key": "sk-c"}, "sk-b"),
        ({"Authorization": "Basic dXNlcjpwYXNz", "x-api-key": "sk-c"}, "sk-c"),
        ({"Authorization": "Bearer ", "api-key": "sk-b"}, "sk-b"),
        ({}, None),
        ({"Authorization": ""}, None),
        ({"Authorization": "Bearer"}, None),
        ({"Authorization": "Bearer    "}, None),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, None),
        ({"api-key": ""}, None),
        ({"x-api-key": ""}, None),
        ({"api-key": "", "x-api-key": ""}, None),
        ({"Content-Type": "application/json"}, None),
    ],
    ids=[
        "bearer",
        "bearer-lowercase-padded",
        "bare-sk-authorization",
        "api-key",
        "x-api-key",
        "authorization-wins",
        "api-key-before-x-api-key",
        "basic-ignored",
        "empty-bearer-falls-through",
        "no-headers",
        "empty-authorization",
        "bearer-without-value",
        "bearer-blank-value",
        "basic-only",
        "empty-api-key",
        "empty-x-api-key",
        "both-empty",
        "unrelated-header",
    ],
)
def test_key_from_headers(headers: dict[str, str], expected: str | None) -> None:
    """The key comes from Authorization: Bearer, then api-key, then x-api-key; blanks mean none."""
    assert key_from_headers(headers) == expected


# ---------------------------------------------------------------- credentials


def test_credential_round_trip() -> None:
    """A credential encrypted with a salt key decrypts to itself with the same salt key."""
    secret = "sk-proj-upstream-ÄÖÜ-123456"
    blob = CredentialCipher("salt-one").encrypt(secret)
    assert CredentialCipher("salt-one").decrypt(blob) == secret


def test_credential_different_salt_fails() -> None:
    """A blob made with one salt key does not decrypt with another."""
    blob = CredentialCipher("salt-one").encrypt("sk-upstream")
    with pytest.raises(CredentialDecryptError):
        CredentialCipher("salt-two").decrypt(blob)


def test_credential_empty_stays_empty() -> None:
    """The empty credential encrypts to empty bytes and back."""
    cipher = CredentialCipher("salt-one")
    assert cipher.encrypt("") == b""
    assert cipher.decrypt(b"") == ""


def test_credential_ciphertext_hides_plaintext_and_is_randomised() -> None:
    """The ciphertext contains no trace of the plaintext and differs on every call."""
    cipher = CredentialCipher("salt-one")
    secret = "sk-upstream-very-secret-value"
    first, second = cipher.encrypt(secret), cipher.encrypt(secret)
    assert secret.encode() not in first
    assert b"very-secret" not in first
    assert first != second
    assert cipher.decrypt(first) == cipher.decrypt(second) == secret


@pytest.mark.parametrize(
    "blob",
    [b"\x02" + b"\x00" * 40, b"\x01" + b"\x00" * 40, b"\x01" + b"\x00" * 12],
    ids=["unknown-version", "garbage", "nonce-without-ciphertext"],
)
def test_credential_corrupt_blob_fails(blob: bytes) -> None:
    """A blob of an unknown format or with a broken tag raises CredentialDecryptError."""
    with pytest.raises(CredentialDecryptError):
        CredentialCipher("salt-one").decrypt(blob)


def test_credential_truncated_blob_fails() -> None:
    """A blob cut inside its nonce raises a ValueError rather than decrypting."""
    # CredentialDecryptError is a ValueError; today a short nonce surfaces as the plain
    # ValueError of AESGCM, so only the base class is asserted here.
    with pytest.raises(ValueError):
        CredentialCipher("salt-one").decrypt(b"\x01short")


def test_credential_tampered_blob_fails() -> None:
    """Flipping one ciphertext bit makes decryption fail instead of returning garbage."""
    cipher = CredentialCipher("salt-one")
    blob = bytearray(cipher.encrypt("sk-upstream"))
    blob[-1] ^= 0x01
    with pytest.raises(CredentialDecryptError):
        cipher.decrypt(bytes(blob))


def test_mask_secret() -> None:
    """mask_secret shows at most the first three and last four characters of a long secret."""
    assert mask_secret("") == ""
    assert mask_secret("short") == "********"
    assert mask_secret("sk-abcdefghijklmnop") == "sk-********mnop"


# ---------------------------------------------------------------- events


def _event(**overrides: Any) -> UsageEvent:
    event: dict[str, Any] = {
        "request_id": "req-1",
        "call_type": "chat",
        "start_time_ms": 1_700_000_000_000.5,
        "end_time_ms": 1_700_000_000_250.0,
        "key_hash": "ab" * 32,
        "key_alias": "alias",
        "user_id": "u1",
        "team_id": "t1",
        "organization_id": "o1",
        "customer_id": "c1",
        "tags": ["a", "b"],
        "model": "gpt-4o",
        "model_group": "gpt-4o",
        "deployment_id": "d1",
        "provider": "openai",
        "upstream_model": "gpt-4o-2024-08-06",
        "api_base": "https://api.openai.com/v1",
        "stream": False,
        "status": "success",
        "http_status": 200,
        "error_code": "",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "total_tokens": 15,
        "cost": 0.00012,
        "usage_estimated": False,
        "ttft_ms": 0.0,
        "attempts": 1,
    }
    event.update(overrides)
    return event  # type: ignore[return-value]


def test_events_round_trip() -> None:
    """encode_batch then decode_batch gives back the node, sequence and events."""
    events = [_event(), _event(request_id="req-2", cost=0, start_time_ms=5, end_time_ms=6)]
    batch = decode_batch(encode_batch("node-a", 42, events))
    assert batch.schema_version == USAGE_SCHEMA_VERSION
    assert batch.node_id == "node-a"
    assert batch.seq == 42
    assert batch.events == events
    assert batch.message_id == batch_message_id("node-a", 42) == "node-a:42"


def test_events_empty_batch_round_trip() -> None:
    """A batch without events is valid."""
    batch = decode_batch(encode_batch("node-a", 0, []))
    assert batch.events == []


_MISSING: Any = object()


def _event_without(name: str) -> dict[str, Any]:
    event: dict[str, Any] = dict(_event())
    del event[name]
    return event


def _envelope(**overrides: Any) -> bytes:
    envelope: dict[str, Any] = {
        "schema_version": USAGE_SCHEMA_VERSION,
        "node_id": "node-a",
        "seq": 1,
        "events": [_event()],
    }
    envelope.update(overrides)
    return orjson.dumps({k: v for k, v in envelope.items() if v is not _MISSING})


POISON_CASES: dict[str, bytes] = {
    "not-json": b"{not json",
    "empty-bytes": b"",
    "json-array": b"[1, 2, 3]",
    "json-string": b'"hello"',
    "json-null": b"null",
    "schema-version-0": _envelope(schema_version=0),
    "schema-version-missing": _envelope(schema_version=_MISSING),
    "schema-version-string": _envelope(schema_version="1"),
    "node-id-missing": _envelope(node_id=_MISSING),
    "node-id-int": _envelope(node_id=7),
    "seq-missing": _envelope(seq=_MISSING),
    "seq-string": _envelope(seq="1"),
    "seq-float": _envelope(seq=1.5),
    "events-missing": _envelope(events=_MISSING),
    "events-object": _envelope(events={"request_id": "x"}),
    "schema-version-bool": _envelope(schema_version=True),
    "seq-bool": _envelope(seq=True),
    "seq-negative": _envelope(seq=-1),
    "node-id-empty": _envelope(node_id=""),
}
"""Envelopes no batch can be decoded from."""

POISON_EVENTS: dict[str, Any] = {
    "event-not-object": "req-1",
    "event-missing-request-id": _event_without("request_id"),
    "event-missing-key-hash": _event_without("key_hash"),
    "event-missing-cost": _event_without("cost"),
    "event-missing-total-tokens": _event_without("total_tokens"),
    "event-model-int": _event(model=3),
    "event-prompt-tokens-string": _event(prompt_tokens="10"),
    "event-prompt-tokens-float": _event(prompt_tokens=10.0),
    "event-cost-string": _event(cost="0.1"),
    "event-start-time-null": _event(start_time_ms=None),
    "event-prompt-tokens-bool": _event(prompt_tokens=True),
    "event-total-tokens-bool": _event(total_tokens=False),
    "event-cost-bool": _event(cost=True),
    "event-empty-request-id": _event(request_id=""),
    "event-status-null": _event(status=None),
}
"""Events no row can be made of; the events beside them in a batch stay billable."""


@pytest.mark.parametrize("data", list(POISON_CASES.values()), ids=list(POISON_CASES))
def test_poison_messages(data: bytes) -> None:
    """Every undecodable envelope raises PoisonMessage (a ValueError)."""
    with pytest.raises(PoisonMessage):
        decode_batch(data)
    assert issubclass(PoisonMessage, ValueError)


@pytest.mark.parametrize("bad", list(POISON_EVENTS.values()), ids=list(POISON_EVENTS))
def test_a_poison_event_is_set_aside_alone(bad: Any) -> None:
    """An unusable event between two good ones is rejected with a reason; both good ones stay."""
    before, after = _event(request_id="before"), _event(request_id="after")
    batch = decode_batch(_envelope(events=[before, bad, after]))
    assert [e["request_id"] for e in batch.events] == ["before", "after"]
    assert [r.raw for r in batch.rejected] == [bad]
    assert batch.rejected[0].reason.startswith("event 1")


# ---------------------------------------------------------------- pricing (more in test_pricing.py)


def _chat_usage(prompt: int, completion: int, cached: int = 0) -> Any:
    return SimpleNamespace(
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached, reasoning_tokens=0,
        cache_write_tokens=0, audio_prompt_tokens=0, audio_completion_tokens=0, input_characters=0,
        audio_seconds=0.0, images=0, image_size="", image_quality="", search_units=0,
    )  # fmt: skip


def _deployment_price(**settings: float) -> CompiledPrice:
    return resolve_price("openai", "my-model", settings, {}).price


def test_list_price_with_and_without_provider_prefix() -> None:
    """'gpt-4o' and 'openai/gpt-4o' resolve to the same genai-prices list price."""
    price = list_price("openai", "gpt-4o").price
    assert list_price("openai", "openai/gpt-4o").price == price
    assert price.source == "genai-prices"
    assert price.default.base.input == pytest.approx(2.50e-6)
    assert price.default.base.output == pytest.approx(10.00e-6)


def test_unknown_model_is_unpriced() -> None:
    """A model no source prices costs nothing and says so (source unknown)."""
    assert list_price("openai", "acme/unknown-model").price == UNPRICED
    assert list_price("openai", "").price == UNPRICED
    assert UNPRICED.source == UNKNOWN and not UNPRICED.known
    assert UNPRICED.cost(_chat_usage(1000, 1000, 500), 0.0) == 0.0


def test_cost_with_cached_tokens() -> None:
    """Cached prompt tokens are billed at the cached rate, the rest at the input rate."""
    price = list_price("openai", "gpt-4o").price
    expected = 600 * 2.50e-6 + 400 * 1.25e-6 + 100 * 10.00e-6
    assert price.cost(_chat_usage(1000, 100, 400), 0.0) == pytest.approx(expected)
    assert price.cost(_chat_usage(1000, 100), 0.0) == pytest.approx(1000 * 2.50e-6 + 100 * 10.00e-6)


def test_cost_caps_cached_tokens_at_prompt_tokens() -> None:
    """More cached tokens than prompt tokens are billed as if all prompt tokens were cached."""
    price = _deployment_price(
        input_cost_per_token=2e-6, output_cost_per_token=4e-6, cache_read_input_token_cost=1e-6
    )
    assert price.cost(_chat_usage(100, 10, 500), 0.0) == pytest.approx(100 * 1e-6 + 10 * 4e-6)


def test_cost_without_cached_rate_bills_full_input() -> None:
    """Without a cached rate, cached tokens cost the normal input rate."""
    price = _deployment_price(input_cost_per_token=2e-6, output_cost_per_token=4e-6)
    assert price.cost(_chat_usage(100, 10, 60), 0.0) == pytest.approx(100 * 2e-6 + 10 * 4e-6)


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("url", "name", "expected"),
    [
        ("postgresql://u:p@h:5432/hydite", None, "postgresql://u:p@h:5432/hydite"),
        ("postgresql://u:p@h:5432/hydite", "", "postgresql://u:p@h:5432/hydite"),
        ("postgresql://u:p@h:5432/hydite", "other", "postgresql://u:p@h:5432/other"),
        ("postgresql://h/hydite?sslmode=require", "t1", "postgresql://h/t1?sslmode=require"),
        ("postgresql://h:5432", "t1", "postgresql://h:5432/t1"),
    ],
)
def test_with_database_name(url: str, name: str | None, expected: str) -> None:
    """with_database_name replaces only the path, and only when a name is given."""
    assert with_database_name(url, name) == expected


@pytest.mark.parametrize(
    ("url", "sqlalchemy", "libpq"),
    [
        (
            "postgres://u:p@h:5432/db",
            "postgresql+psycopg://u:p@h:5432/db",
            "postgresql://u:p@h:5432/db",
        ),
        (
            "postgresql://u:p@h:5432/db",
            "postgresql+psycopg://u:p@h:5432/db",
            "postgresql://u:p@h:5432/db",
        ),
        (
            "postgresql+psycopg://u:p@h:5432/db?sslmode=disable",
            "postgresql+psycopg://u:p@h:5432/db?sslmode=disable",
            "postgresql://u:p@h:5432/db?sslmode=disable",
        ),
    ],
    ids=["postgres", "postgresql", "postgresql+psycopg"],
)
def test_postgres_url_normalisation(url: str, sqlalchemy: str, libpq: str) -> None:
    """Every postgres URL spelling maps to the psycopg 3 dialect and to plain libpq."""
    assert to_sqlalchemy_url(url) == sqlalchemy
    assert to_libpq_url(url) == libpq


@pytest.mark.parametrize(
    "url",
    ["mysql://root:hunter2@h/db", "sqlite:///tmp/x.db", "postgresql+asyncpg://u:hunter2@h/db", ""],
)
def test_non_postgres_url_raises_without_leaking(url: str) -> None:
    """A non-postgres URL raises ValueError whose message does not contain the password."""
    with pytest.raises(ValueError, match="not a PostgreSQL URL") as info:
        to_sqlalchemy_url(url)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        to_libpq_url(url)


def test_database_settings_urls() -> None:
    """DatabaseSettings applies database_name and exposes both URL forms."""
    settings = DatabaseSettings(database_url="postgres://u@h:5432/hydite", database_name="t_1")
    assert settings.sqlalchemy_url == "postgresql+psycopg://u@h:5432/t_1"
    assert settings.libpq_url == "postgresql://u@h:5432/t_1"


def test_secret_settings_refuses_master_key_without_sk_prefix() -> None:
    """A master key that does not start with 'sk-' is a validation error."""
    with pytest.raises(ValidationError, match="must start with 'sk-'"):
        SecretSettings(master_key="hydite-master")


def test_secret_settings_dev_defaults_allowed_outside_prod() -> None:
    """In dev and test the built-in master and salt keys are accepted."""
    for environment in ("dev", "test"):
        settings = SecretSettings(environment=environment)
        assert settings.master_key == DEV_MASTER_KEY
        assert settings.salt_key == DEV_SALT_KEY


def test_prod_refuses_dev_master_key() -> None:
    """Prod refuses the dev master key even with a real salt key."""
    with pytest.raises(ValidationError, match="HYDITE_MASTER_KEY"):
        SecretSettings(environment="prod", salt_key="real-salt")


def test_prod_refuses_dev_salt_key() -> None:
    """Prod refuses the dev salt key, for SaltKeySettings and SecretSettings alike."""
    with pytest.raises(ValidationError, match="HYDITE_SALT_KEY"):
        SaltKeySettings(environment="prod")
    with pytest.raises(ValidationError, match="HYDITE_SALT_KEY"):
        SecretSettings(environment="prod", master_key="sk-real-master")


def test_prod_accepts_real_secrets() -> None:
    """Prod with a real master key and salt key validates."""
    settings = SecretSettings(environment="prod", master_key="sk-real-master", salt_key="real-salt")
    assert settings.environment == "prod"
    assert settings.master_key == "sk-real-master"


def test_base_service_settings_nats_names() -> None:
    """nats_prefix must be a token; names are upper-cased and subjects dot-joined."""
    settings = BaseServiceSettings(nats_prefix="hy-dite_1")
    assert settings.nats_name("usage-events") == "HY_DITE_1_USAGE_EVENTS"
    assert settings.nats_subject("usage", "node-a") == "hy-dite_1.usage.node-a"
    for bad in ("", "a.b", "a b", "a*"):
        with pytest.raises(ValidationError):
            BaseServiceSettings(nats_prefix=bad)


# ---------------------------------------------------------------- telemetry


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no secrets here", "no secrets here"),
        ("key=sk-hydite-AbCdEf123456", "key=sk-hydite…"),
        ("Bearer sk-proj-1234567890abcdef done", "Bearer [redacted] done"),
        ("a sk-aaaaaaaaaa and b sk-bbbbbbbbbb", "a sk-aaaaaa… and b sk-bbbbbb…"),
        ("sk-abc is too short to be a key", "sk-abc is too short to be a key"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    """redact keeps the first six characters after 'sk-' of every key-like string, and hides a
    bearer token whole, whatever its shape."""
    assert redact(text) == expected


def test_redact_removes_generated_key() -> None:
    """A freshly generated virtual key never survives redaction."""
    key = generate_key()
    redacted = redact(f"auth failed for {key}")
    assert key not in redacted
    assert key[len(VIRTUAL_KEY_PREFIX) :] not in redacted
