"""Database rows -> config snapshot resources (pure), and loading them inside one read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_controlplane.models import (
    CustomerRow,
    DeploymentRow,
    KeyGroupRow,
    OrganizationRow,
    TeamRow,
    UserRow,
    VirtualKeyRow,
)
from hydite_controlplane.models.common import LimitColumns


def _json(value: Any) -> bytes:
    return orjson.dumps(value) if value else b""


def limits_of(row: LimitColumns) -> pb.Limits:
    """The Limits message of any row that carries limit columns."""
    limits = pb.Limits(
        budget_duration=row.budget_duration or "",
        model_rpm_limit=row.model_rpm_limit or {},
        model_tpm_limit=row.model_tpm_limit or {},
    )
    for name in ("rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget", "soft_budget"):
        value = getattr(row, name)
        if value is not None:
            setattr(limits, name, value)
    return limits


def key_message(row: VirtualKeyRow) -> pb.VirtualKey:
    """A virtual key as the data plane sees it: hash, owner, allowlist, limits, expiry."""
    return pb.VirtualKey(
        key_hash=row.token,
        key_alias=row.key_alias or "",
        key_name=row.key_name,
        user_id=row.user_id or "",
        team_id=row.team_id or "",
        organization_id=row.organization_id or "",
        customer_id=row.customer_id or "",
        key_group=row.key_group or "",
        models=row.models,
        blocked=row.blocked,
        expires_unix_ms=int(row.expires.timestamp() * 1000) if row.expires else 0,
        limits=limits_of(row),
        tags=row.tags,
        allowed_routes=row.allowed_routes,
        guardrails=row.guardrails,
        metadata_json=_json(row.metadata_),
    )


def user_message(row: UserRow) -> pb.User:
    """A user's allowlist and limits."""
    return pb.User(
        user_id=row.user_id,
        user_role=row.user_role,
        team_ids_csv=",".join(row.teams),
        organization_id=row.organization_id or "",
        models=row.models,
        blocked=row.blocked,
        limits=limits_of(row),
        metadata_json=_json(row.metadata_),
    )


def team_message(row: TeamRow) -> pb.Team:
    """A team's allowlist, key group and limits."""
    return pb.Team(
        team_id=row.team_id,
        team_alias=row.team_alias or "",
        organization_id=row.organization_id or "",
        models=row.models,
        blocked=row.blocked,
        limits=limits_of(row),
        key_group=row.key_group or "",
        metadata_json=_json(row.metadata_),
    )


def organization_message(row: OrganizationRow) -> pb.Organization:
    """An organization's allowlist and limits."""
    return pb.Organization(
        organization_id=row.organization_id,
        organization_alias=row.organization_alias or "",
        models=row.models,
        blocked=row.blocked,
        limits=limits_of(row),
        metadata_json=_json(row.metadata_),
    )


def customer_message(row: CustomerRow) -> pb.Customer:
    """An end user's allowlist and limits."""
    return pb.Customer(
        customer_id=row.customer_id,
        alias=row.alias or "",
        blocked=row.blocked,
        limits=limits_of(row),
        allowed_models=row.allowed_models,
        metadata_json=_json(row.metadata_),
    )


def key_group_message(row: KeyGroupRow) -> pb.KeyGroup:
    """A key group's allowlist, routing strategy and quota."""
    return pb.KeyGroup(
        name=row.name,
        models=row.models,
        routing_strategy=row.routing_strategy,
        limits=limits_of(row),
        metadata_json=_json(row.metadata_),
    )


def deployment_limits(row: DeploymentRow) -> pb.Limits:
    """A deployment's own rpm/tpm."""
    limits = pb.Limits()
    if row.rpm is not None:
        limits.rpm_limit = row.rpm
    if row.tpm is not None:
        limits.tpm_limit = row.tpm
    return limits


def deployment_message(row: DeploymentRow) -> pb.Deployment:
    """A deployment with its credential still encrypted."""
    return pb.Deployment(
        deployment_id=row.model_id,
        model_name=row.model_name,
        provider=row.provider,
        upstream_model=row.upstream_model,
        api_base=row.api_base or "",
        api_key_encrypted=row.api_key_encrypted,
        api_version=row.api_version or "",
        timeout_seconds=row.timeout or 0.0,
        stream_timeout_seconds=row.stream_timeout or 0.0,
        weight=row.weight,
        limits=deployment_limits(row),
        input_cost_per_token=row.input_cost_per_token or 0.0,
        output_cost_per_token=row.output_cost_per_token or 0.0,
        model_info_json=_json(row.model_info),
        extra_params_json=_json(row.extra_params),
        max_retries=row.max_retries,
    )


@dataclass(frozen=True, slots=True)
class ResourceTable:
    """How one resource type is stored (table, name column) and turned into a message."""

    type_url: str
    row: type[SQLModel]
    name_column: str
    to_message: Callable[[Any], Message]


RESOURCE_TABLES: dict[str, ResourceTable] = {
    t.type_url: t
    for t in (
        ResourceTable(types.VIRTUAL_KEY, VirtualKeyRow, "token", key_message),
        ResourceTable(types.USER, UserRow, "user_id", user_message),
        ResourceTable(types.TEAM, TeamRow, "team_id", team_message),
        ResourceTable(types.ORGANIZATION, OrganizationRow, "organization_id", organization_message),
        ResourceTable(types.CUSTOMER, CustomerRow, "customer_id", customer_message),
        ResourceTable(types.KEY_GROUP, KeyGroupRow, "name", key_group_message),
        ResourceTable(types.DEPLOYMENT, DeploymentRow, "model_id", deployment_message),
    )
}


def to_resource(table: ResourceTable, row: Any) -> pb.Resource:
    """Pack a row as a named Resource."""
    body = AnyMessage()
    body.Pack(table.to_message(row))
    return pb.Resource(name=getattr(row, table.name_column), body=body)


async def load_resources(
    session: AsyncSession, type_url: str, names: Iterable[str] | None = None
) -> list[pb.Resource]:
    """Resources of one type, all of them or only the named ones that still exist."""
    table = RESOURCE_TABLES[type_url]
    query = select(table.row)
    if names is not None:
        wanted: Sequence[str] = list(names)
        if not wanted:
            return []
        query = query.where(getattr(table.row, table.name_column).in_(wanted))
    rows = (await session.exec(query)).all()
    return [to_resource(table, row) for row in rows]
