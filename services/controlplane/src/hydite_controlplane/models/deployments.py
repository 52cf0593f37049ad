"""Model deployments: one upstream behind a public model name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from hydite_controlplane.models.common import RecordColumns


class DeploymentRow(RecordColumns, table=True):
    """A deployment; provider credentials are stored encrypted (HYDITE_SALT_KEY)."""

    __tablename__ = "deployments"

    model_id: str = Field(primary_key=True)
    model_name: str = Field(index=True)
    provider: str
    upstream_model: str
    api_base: str | None = None
    api_key_encrypted: bytes = Field(default=b"", sa_type=LargeBinary)
    api_version: str | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    weight: float = 1.0
    rpm: int | None = Field(default=None, sa_type=BigInteger)
    tpm: int | None = Field(default=None, sa_type=BigInteger)
    max_retries: int | None = None
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    extra_params: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
    model_info: dict[str, Any] = Field(default_factory=dict, sa_type=JSONB)
