"""Typed settings of the control plane (HYDITE_* environment variables)."""

from __future__ import annotations

from pydantic import Field
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
