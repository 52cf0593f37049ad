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
from hydite_common.pricing import price_settings
from hydite_common.pricing.litellm_source import PRICE_KEYS
from hydite_controlplane.budget_periods import budget_windows_of
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
from hydite_controlplane.models.config import ConfigNode
from hydite_controlplane.models.tags import TagRow


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
    limits.budget_windows.extend(budget_windows_of(row))
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
        store_prompts=row.store_prompts,
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


TEAM_MEMBER_DEFAULT_FIELDS = {
    "team_member_budget": "max_budget",
    "team_member_rpm_limit": "rpm_limit",
    "team_member_tpm_limit": "tpm_limit",
}
"""LiteLLM's limits of every member of a team (kept in the team's extra_fields) -> Limits fields."""
TEAM_MEMBER_BUDGET_DURATION = "team_member_budget_duration"
MEMBER_LIMIT_FIELDS = {"max_budget_in_team": "max_budget", "rpm_limit": "rpm_limit", "tpm_limit": "tpm_limit"}
"""A member's own limits in a team (the "limits" of its members_with_roles entry) -> Limits fields."""


def _limits_from(values: Mapping[str, Any], fields: Mapping[str, str], column: str) -> pb.Limits:
    limits = pb.Limits()
    for source, target in fields.items():
        value = values.get(source)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise UnbuildableRow(f"{column}.{source} is not a finite number")
        try:
            setattr(limits, target, value)
        except (TypeError, ValueError):
            raise UnbuildableRow(f"{column}.{source} is out of range for {target}") from None
    return limits


def team_member_defaults(row: TeamRow) -> pb.Limits | None:
    """The limits every member of the team has within it (LiteLLM's team_member_budget,
    _rpm_limit, _tpm_limit, _budget_duration); None when the team sets none of the limits."""
    stored = row.extra_fields or {}
    if all(stored.get(name) is None for name in TEAM_MEMBER_DEFAULT_FIELDS):
        return None
    limits = _limits_from(stored, TEAM_MEMBER_DEFAULT_FIELDS, "extra_fields")
    duration = stored.get(TEAM_MEMBER_BUDGET_DURATION)
    if duration is not None and not isinstance(duration, str):
        raise UnbuildableRow(f"extra_fields.{TEAM_MEMBER_BUDGET_DURATION} is not a string")
    limits.budget_duration = duration or ""
    return limits


def team_member_limits(row: TeamRow) -> dict[str, pb.Limits]:
    """Each member's own limits within the team (max_budget_in_team, rpm_limit, tpm_limit), by
    user id, for the members that set any; they fill in the team's member defaults."""
    found = {}
    for entry in row.members_with_roles:
        own = entry.get("limits") or {}
        if not isinstance(own, dict):
            raise UnbuildableRow("members_with_roles.limits is not an object")
        if any(own.get(name) is not None for name in MEMBER_LIMIT_FIELDS):
            found[str(entry["user_id"])] = _limits_from(own, MEMBER_LIMIT_FIELDS, "members_with_roles.limits")
    return found


def team_message(row: TeamRow) -> pb.Team:
    """A team's allowlist, key group and limits, and its members' limits within it."""
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
        store_prompts=row.store_prompts,
        member_defaults=team_member_defaults(row),
        member_limits=team_member_limits(row),
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


def price_settings_of(row: DeploymentRow) -> tuple[dict[str, Any], dict[str, Any]]:
    """A deployment's own price settings: its litellm_params' (the two price columns and the price
    settings among its other params) and its model_info's. A model_info price that is not a number
    makes the row unbuildable (the admin API refuses one; a row written otherwise is quarantined)."""
    params = price_settings(row.extra_params or {})
    for name in ("input_cost_per_token", "output_cost_per_token"):
        column: float | None = getattr(row, name)
        if column is not None:
            params[name] = column
    info = price_settings(row.model_info or {})
    for name, value in info.items():
        if name in PRICE_KEYS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UnbuildableRow(f"model_info.{name} is not a number")
    return params, info


def deployment_message(row: DeploymentRow) -> pb.Deployment:
    """A deployment with its credential still encrypted."""
    price_settings_of(row)
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
        # litellm_params' prices only: model_info's travel in model_info_json, so the data plane
        # can tell the two sources apart.
        input_cost_per_token=row.input_cost_per_token or 0.0,
        output_cost_per_token=row.output_cost_per_token or 0.0,
        model_info_json=_json(row.model_info, "model_info"),
        extra_params_json=_json(row.extra_params, "extra_params"),
        max_retries=row.max_retries,
    )


def tag_message(row: TagRow) -> pb.Tag:
    """A request tag's limits and budget, the models it is for, and its metadata."""
    return pb.Tag(
        name=row.name,
        limits=limits_of(row),
        models=row.models,
        metadata_json=_json(row.metadata_, "metadata"),
    )


def data_plane_node_message(row: ConfigNode) -> pb.DataPlaneNode:
    """A connected data plane: its id, hostname and when its stream opened (nothing secret)."""
    if row.connected_at is None:
        raise UnbuildableRow("connected_at is not set")
    return pb.DataPlaneNode(
        node_id=row.node_id, hostname=row.hostname, connected_unix_ms=int(row.connected_at.timestamp() * 1000)
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


def refused_tag(name: str) -> pb.Tag:
    """What stands in for a tag that cannot be built: no budget and no requests, so the requests
    carrying it are refused rather than let through without its limits."""
    return pb.Tag(name=name, limits=pb.Limits(max_budget=0.0, rpm_limit=0))


def blocked_customer(name: str) -> pb.Customer:
    """What stands in for an end user that cannot be built: blocked, so its requests are refused."""
    return pb.Customer(customer_id=name, blocked=True)


@dataclass(frozen=True, slots=True)
class ResourceTable:
    """How one resource type is stored (table, name column) and turned into a message.

    `stand_in` is for types whose absence would loosen a rule: the data plane treats a missing
    user, team or customer as no restriction, so an unbuildable one is published blocked
    instead. Keys, deployments and key groups have none: their absence already refuses.
    `published` is for tables whose rows outlive their resource (a data plane that disconnected
    keeps its status row): a row it refuses is absent from the snapshot, not quarantined.
    """

    type_url: str
    row: type[SQLModel]
    name_column: str
    to_message: Callable[[Any], Message]
    stand_in: Callable[[str], Message] | None = None
    published: Callable[[Any], bool] | None = None


def is_member(row: ConfigNode) -> bool:
    """Whether a data plane's `DataPlaneNode` resource is in the snapshot: its stream opened and
    has not been seen to end. A node leaves (connected_at cleared, in a config version) when its
    stream ends or, once stale, by the node status sweep; a replica that stops only releases it."""
    return row.connected_at is not None


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
        ResourceTable(types.TAG, TagRow, "name", tag_message, refused_tag),
        ResourceTable(
            types.DATA_PLANE_NODE, ConfigNode, "node_id", data_plane_node_message, published=is_member
        ),
    )
}


def _pack(name: str, message: Message) -> pb.Resource:
    body = AnyMessage()
    body.Pack(message)
    return pb.Resource(name=name, body=body)


PROXY_LIMITS = "proxy"
"""The name of the one GlobalLimits resource."""


def global_limits_resource(max_budget: float | None, budget_duration: str | None) -> pb.Resource | None:
    """The proxy's budget (LiteLLM's litellm_settings.max_budget, reset every budget_duration) as
    the GlobalLimits resource "proxy"; None without a max_budget (LiteLLM has no proxy-wide soft
    budget)."""
    if max_budget is None:
        return None
    limits = pb.Limits(max_budget=max_budget, budget_duration=budget_duration or "")
    return _pack(PROXY_LIMITS, pb.GlobalLimits(limits=limits))


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
        if table.published is not None and not table.published(row):
            continue
        try:
            built.resources.append(to_resource(table, row))
        except Exception as exc:
            built.quarantined[name] = "cannot build: " + describe_failure(exc)
    if table.stand_in is not None:
        built.resources.extend(_pack(n, table.stand_in(n)) for n in built.quarantined)
    return built
