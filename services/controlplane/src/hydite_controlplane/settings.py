"""Typed settings of the control plane (HYDITE_* environment variables)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import SettingsConfigDict

from hydite_common.grpc_keepalive import GrpcKeepaliveSettings
from hydite_common.settings import BaseServiceSettings, ConfigTokenSettings, DatabaseSettings, SecretSettings


class ControlplaneSettings(
    BaseServiceSettings, DatabaseSettings, SecretSettings, ConfigTokenSettings, GrpcKeepaliveSettings
):
    """Everything the control plane reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="HYDITE_", extra="ignore")

    admin_port: int = 4001
    grpc_port: int = 50051
    snapshot_chunk_bytes: int = 1 << 20
    delta_history: int = 1024
    run_migrations: bool = True
    config_apply_timeout_seconds: float = Field(default=2.0, ge=0.0, le=60.0)
    """How long an admin write waits for connected data planes to apply it before answering (0: no wait)."""
    config_file: str | None = Field(default=None, validation_alias="HYDITE_CONFIG")
    budget_reset_alignment: Literal["calendar", "rolling"] = "calendar"
    """Budget periods reset at calendar boundaries (LiteLLM's default: "1d" at midnight, "1mo" on
    the first) or a whole duration after they began."""
    budget_reset_timezone: str = "UTC"
    """The timezone calendar resets are aligned in (LiteLLM's litellm_settings.timezone)."""
    alerting_webhook_url: str | None = Field(
        default=None, validation_alias=AliasChoices("HYDITE_ALERTING_WEBHOOK_URL", "WEBHOOK_URL")
    )
    """Where budget alerts are POSTed in LiteLLM's webhook shape (LiteLLM reads WEBHOOK_URL)."""
    alerting_webhook_attempts: int = Field(default=5, ge=1, le=20)
    """How many times one alert is sent before it is given up (backoff doubling from 0.5 s)."""

    @field_validator("budget_reset_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value
