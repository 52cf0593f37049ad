"""Settings shared by every Hydite service; each service extends BaseServiceSettings."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_MASTER_KEY = "sk-hydite-dev-master-key"
DEV_SALT_KEY = "hydite-dev-salt-key-change-me"


def with_database_name(url: str, name: str | None) -> str:
    """Return url with its database (path) replaced by name, when a name is given."""
    if not name:
        return url
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def to_sqlalchemy_url(url: str) -> str:
    """Normalise any postgres URL to SQLAlchemy's psycopg 3 dialect."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url.split('://', 1)[0]}://...")


def to_libpq_url(url: str) -> str:
    """Normalise any postgres URL to the plain form psycopg.connect() takes."""
    return "postgresql://" + to_sqlalchemy_url(url)[len("postgresql+psycopg://") :]


class BaseServiceSettings(BaseSettings):
    """Fields every service reads from HYDITE_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "dev"
    host: str = "0.0.0.0"
    log_level: str = "WARNING"
    nats_url: str = "nats://127.0.0.1:4222"
    nats_prefix: str = "hydite"
    node_id: str = ""
    shutdown_delay_seconds: float = Field(default=0.0, ge=0)
    """After SIGTERM: how long readiness answers 503 while the listener still accepts, so a load
    balancer stops sending connections before they would be refused (0 in dev and tests; in
    Kubernetes a few seconds, or a preStop sleep instead)."""
    drain_seconds: float = Field(default=10.0, ge=0)
    """At shutdown, after the delay, how long requests in flight may take to finish."""

    @field_validator("nats_prefix")
    @classmethod
    def _prefix_is_token(cls, value: str) -> str:
        if not value or not value.replace("_", "").replace("-", "").isalnum():
            raise ValueError("nats_prefix must be letters, digits, '-' or '_'")
        return value

    def nats_name(self, suffix: str) -> str:
        """A JetStream stream / KV bucket name inside this deployment's namespace."""
        return f"{self.nats_prefix}_{suffix}".upper().replace("-", "_")

    def nats_subject(self, *tokens: str) -> str:
        """A NATS subject inside this deployment's namespace."""
        return ".".join((self.nats_prefix, *tokens))


class DatabaseSettings(BaseSettings):
    """Postgres location: a server URL plus an optional database name that overrides its path."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/hydite"
    database_name: str | None = None

    @property
    def sqlalchemy_url(self) -> str:
        """URL for SQLAlchemy / sqlmodel engines."""
        return to_sqlalchemy_url(with_database_name(self.database_url, self.database_name))

    @property
    def libpq_url(self) -> str:
        """URL for plain psycopg connections."""
        return to_libpq_url(with_database_name(self.database_url, self.database_name))


class SaltKeySettings(BaseSettings):
    """The credential-encryption salt; the dev default is refused in prod."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "dev"
    salt_key: str = DEV_SALT_KEY

    @model_validator(mode="after")
    def _no_dev_salt_in_prod(self) -> SaltKeySettings:
        if self.environment == "prod" and self.salt_key == DEV_SALT_KEY:
            raise ValueError("set HYDITE_SALT_KEY in prod")
        return self


class ConfigTokenSettings(BaseSettings):
    """The shared secret a data plane shows the control plane's config stream; required outside dev."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    environment: Literal["dev", "test", "prod"] = "dev"
    config_token: str = ""

    @model_validator(mode="after")
    def _token_outside_dev(self) -> ConfigTokenSettings:
        if self.environment != "dev" and len(self.config_token) < 16:
            raise ValueError("set HYDITE_CONFIG_TOKEN (at least 16 characters) outside dev")
        return self


CONFIG_TOKEN_METADATA = "x-hydite-config-token"
"""The gRPC metadata key the config token travels in."""


class SecretSettings(SaltKeySettings):
    """Master key and credential salt; dev defaults are refused in prod."""

    master_key: str = DEV_MASTER_KEY

    @field_validator("master_key")
    @classmethod
    def _master_key_format(cls, value: str) -> str:
        if not value.startswith("sk-"):
            raise ValueError("HYDITE_MASTER_KEY must start with 'sk-'")
        return value

    @model_validator(mode="after")
    def _no_dev_master_key_in_prod(self) -> SecretSettings:
        if self.environment == "prod" and self.master_key == DEV_MASTER_KEY:
            raise ValueError("set HYDITE_MASTER_KEY in prod")
        return self
