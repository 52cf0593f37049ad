"""Database rows -> config snapshot resources (pure), one row at a time.

A row that cannot become its message (a JSON value no consumer can hold, a number protobuf
refuses, a row the driver could not even read) is quarantined: left out of the snapshot, or,
for an owner of keys, replaced by a blocked stand-in, so one bad row never stops the others and
never keeps what it described working at an older version.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.any_pb2 import Any as AnyMessage
from google.protobuf.message import Message
from sqlmodel import SQLModel

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
from hydite_controlplane.models.budgets import BudgetRow
from hydite_controlplane.models.common import LimitColumns


class UnbuildableRow(ValueError):
    """A row whose column holds a value its message cannot carry; the text names the column only."""


def _json(value: Any, column: str) -> bytes:
    if not value:
        return b""
    try:
        encoded = orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        # orjson's messages name the problem ("Integer exceeds 64-bit range"), never the value.
        raise UnbuildableRow(f"{column} is not serializable as JSON: {exc}") from None
    # orjson writes NaN and infinity as null: refuse rather than publish a changed value.
    if b"null" in encoded and not _finite(value):
        raise UnbuildableRow(f"{column} holds a number JSON cannot carry (NaN or infinity)")
    return encoded


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_finite(v) for v in value)
    return True


def limits_of(row: LimitColumns | BudgetRow) -> pb.Limits:
    """The Limits message of any row that carries limit columns (a budget has no per-model ones)."""
    limits = pb.Limits(
        budget_duration=row.budget_duration or "",
        model_rpm_limit=getattr(row, "model_rpm_limit", None) or {},
        model_tpm_limit=getattr(row, "model_tpm_limit", None) or {},
    )
    for name in ("rpm_limit", "tpm_limit", "max_parallel_requests", "max_budget", "soft_budget"):
        value = getattr(row, name)
        if value is not None:
            setattr(limits, name, value)
    return limits


def key_message(row: VirtualKeyRow) -> pb.VirtualKey:
    """A virtual key as the data plane sees it: hash, owner, allowlist, limits, expiry, aliases."""
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
        metadata_json=_json(row.metadata_, "metadata"),
        aliases=row.aliases or {},
        budget_id=row.budget_id or "",
    )


def user_message(row: UserRow) -> pb.User:
    """A user's allowlist, limits and model aliases."""
    return pb.User(
        user_id=row.user_id,
        user_role=row.user_role,
        team_ids_csv=",".join(row.teams),
        organization_id=row.organization_id or "",
        models=row.models,
        blocked=row.blocked,
        limits=limits_of(row),
        metadata_json=_json(row.metadata_, "metadata"),
        aliases=row.aliases or {},
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
        metadata_json=_json(row.metadata_, "metadata"),
        model_aliases=row.model_aliases or {},
        budget_id=row.budget_id or "",
    )


def organization_message(row: OrganizationRow) -> pb.Organization:
    """An organization's allowlist and limits."""
    return pb.Organization(
        organization_id=row.organization_id,
        organization_alias=row.organization_alias or "",
        models=row.models,
        blocked=row.blocked,
        limits=limits_of(row),
        metadata_json=_json(row.metadata_, "metadata"),
    )


def customer_message(row: CustomerRow) -> pb.Customer:
    """An end user's scope, allowlist and limits (published under its scoped name, `row.name`)."""
    return pb.Customer(
        customer_id=row.customer_id,
        team_id=row.team_id or "",
        organization_id=row.organization_id or "",
        alias=row.alias or "",
        blocked=row.blocked,
        limits=limits_of(row),
        allowed_models=row.allowed_models,
        metadata_json=_json(row.metadata_, "metadata"),
        budget_id=row.budget_id or "",
        allowed_model_region=str((row.extra_fields or {}).get("allowed_model_region") or ""),
    )


def budget_message(row: BudgetRow) -> pb.Budget:
    """A budget's limits, for the keys, teams and end users that link it."""
    return pb.Budget(budget_id=row.budget_id, limits=limits_of(row))


def key_group_message(row: KeyGroupRow) -> pb.KeyGroup:
    """A key group's allowlist, routing strategy and quota."""
    return pb.KeyGroup(
        name=row.name,
        models=row.models,
        routing_strategy=row.routing_strategy,
        limits=limits_of(row),
        metadata_json=_json(row.metadata_, "metadata"),
    )


def deployment_limits(row: DeploymentRow) -> pb.Limits:
    """A deployment's own rpm/tpm."""
    limits = pb.Limits()
    if row.rpm is not None:
        limits.rpm_limit = row.rpm
    if row.tpm is not None:
        limits.tpm_limit = row.tpm
    return limits


def deployment_price(row: DeploymentRow, name: str) -> float:
    """A deployment's price per token (input_cost_per_token or output_cost_per_token): its
    litellm_params' when set, else its model_info's (LiteLLM takes both), else 0 (the list price)."""
    column: float | None = getattr(row, name)
    if column is not None:
        return column
    listed = (row.model_info or {}).get(name)
    if listed is None:
        return 0.0
    if isinstance(listed, bool) or not isinstance(listed, int | float):
        raise UnbuildableRow(f"model_info.{name} is not a number")
    return float(listed)


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
        input_cost_per_token=deployment_price(row, "input_cost_per_token"),
        output_cost_per_token=deployment_price(row, "output_cost_per_token"),
        model_info_json=_json(row.model_info, "model_info"),
        extra_params_json=_json(row.extra_params, "extra_params"),
        max_retries=row.max_retries,
    )


def blocked_user(name: str) -> pb.User:
    """What stands in for a user that cannot be built: blocked, so its keys are refused."""
    return pb.User(user_id=name, blocked=True)


def blocked_team(name: str) -> pb.Team:
    """What stands in for a team that cannot be built: blocked, so its keys are refused."""
    return pb.Team(team_id=name, blocked=True)


def blocked_organization(name: str) -> pb.Organization:
    """What stands in for an organization that cannot be built: blocked, so its keys are refused."""
    return pb.Organization(organization_id=name, blocked=True)


def blocked_customer(name: str) -> pb.Customer:
    """What stands in for an end user that cannot be built: blocked, so its requests are refused."""
    return pb.Customer(customer_id=name, blocked=True)


@dataclass(frozen=True, slots=True)
class ResourceTable:
    """How one resource type is stored (table, name column) and turned into a message.

    `stand_in` is for types whose absence would loosen a rule: the data plane treats a missing
    user, team or customer as no restriction, so an unbuildable one is published blocked
    instead. Keys, deployments and key groups have none: their absence already refuses.
    """

    type_url: str
    row: type[SQLModel]
    name_column: str
    to_message: Callable[[Any], Message]
    stand_in: Callable[[str], Message] | None = None


RESOURCE_TABLES: dict[str, ResourceTable] = {
    t.type_url: t
    for t in (
        ResourceTable(types.VIRTUAL_KEY, VirtualKeyRow, "token", key_message),
        ResourceTable(types.USER, UserRow, "user_id", user_message, blocked_user),
        ResourceTable(types.TEAM, TeamRow, "team_id", team_message, blocked_team),
        ResourceTable(
            types.ORGANIZATION, OrganizationRow, "organization_id", organization_message, blocked_organization
        ),
        ResourceTable(types.CUSTOMER, CustomerRow, "name", customer_message, blocked_customer),
        ResourceTable(types.KEY_GROUP, KeyGroupRow, "name", key_group_message),
        ResourceTable(types.BUDGET, BudgetRow, "budget_id", budget_message),
        ResourceTable(types.DEPLOYMENT, DeploymentRow, "model_id", deployment_message),
    )
}


def _pack(name: str, message: Message) -> pb.Resource:
    body = AnyMessage()
    body.Pack(message)
    return pb.Resource(name=name, body=body)


def setting_resource(name: str, value: object) -> pb.Resource:
    """A gateway setting (JSON value) as a named Resource."""
    return _pack(name, pb.Setting(name=name, value_json=orjson.dumps(value)))


def to_resource(table: ResourceTable, row: Any) -> pb.Resource:
    """Pack a row as a named Resource (raises when the row cannot be built)."""
    return _pack(getattr(row, table.name_column), table.to_message(row))


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_LONG_TOKEN = re.compile(r"[\w+/=.:-]{16,}")
REASON_CHARS = 200


def describe_failure(exc: BaseException) -> str:
    """Why a row was quarantined, safe to log and show: the error's kind and first line, with
    quoted text and long tokens (keys, hashes, credentials, values) cut out."""
    lines = str(exc).strip().splitlines()
    text = _LONG_TOKEN.sub("…", _QUOTED.sub("'…'", lines[0] if lines else ""))[:REASON_CHARS]
    kind = type(exc).__name__
    return f"{kind}: {text}" if text else kind


@dataclass(slots=True)
class Built:
    """The resources of one type built from its rows, and the names left out with the reason."""

    resources: list[pb.Resource] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)


def build_resources(
    table: ResourceTable, rows: Iterable[Any], unreadable: Mapping[str, str] | None = None
) -> Built:
    """Build every row on its own; rows that fail (and rows the reader could not read, with
    their reasons) are quarantined, and stood in for when the type has a blocked stand-in."""
    built = Built(quarantined=dict(unreadable or {}))
    for row in rows:
        name = str(getattr(row, table.name_column))
        try:
            built.resources.append(to_resource(table, row))
        except Exception as exc:
            built.quarantined[name] = "cannot build: " + describe_failure(exc)
    if table.stand_in is not None:
        built.resources.extend(_pack(n, table.stand_in(n)) for n in built.quarantined)
    return built
