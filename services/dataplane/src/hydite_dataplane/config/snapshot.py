"""The immutable config snapshot the request path reads: one map per resource type, keyed by the
type's URL, and the deployments it derives."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import immutables

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.pricing import OWN_SOURCES, CompiledPrice, list_price


@dataclass(frozen=True, slots=True)
class DeploymentTarget:
    """A deployment ready to call: credential decrypted, prices and params decoded."""

    deployment_id: str
    model_name: str
    provider: str
    upstream_model: str
    api_base: str
    api_key: str = field(repr=False)
    api_version: str
    timeout_seconds: float
    stream_timeout_seconds: float
    weight: float
    price: CompiledPrice
    """Compiled when the snapshot was applied: `price.cost(usage, at)` is arithmetic only."""
    extra_params: dict[str, Any]
    model_info: dict[str, Any]
    max_retries: int | None = None  # None: the gateway default
    region: str = ""
    """LiteLLM's litellm_params.region_name: end users limited to a region are routed to it."""
    drop_params: bool = False
    """LiteLLM's litellm_params.drop_params: parameters the provider cannot honour are dropped."""
    additional_drop_params: tuple[str, ...] = ()
    """Parameters never sent to this deployment's provider."""
    rpm: float | None = None
    tpm: float | None = None
    """The deployment's own requests and tokens per minute (litellm_params rpm / tpm): the router
    sends elsewhere what would go past them, across every data plane."""


PARSED_KEYS_KEPT = 10_000
RESOLVED_WILDCARDS_KEPT = 10_000
WILDCARD = "*"


def is_pattern(name: str) -> bool:
    """Whether a model name is a wildcard pattern (LiteLLM's `openai/*`, `*`)."""
    return WILDCARD in name


@dataclass(frozen=True, slots=True)
class WildcardGroup:
    """The deployments of one wildcard model name, routed as LiteLLM routes them: the pattern
    serves every requested name it matches, and what each `*` matched fills the matching `*` of
    the deployment's provider model (`openai/*` asked for `openai/gpt-4o` calls `gpt-4o`)."""

    pattern: str
    regex: re.Pattern[str]
    deployments: tuple[DeploymentTarget, ...]

    @classmethod
    def of(cls, pattern: str, deployments: tuple[DeploymentTarget, ...]) -> WildcardGroup:
        """`*` matches any run of characters (none included); everything else is literal."""
        regex = "(.*)".join(re.escape(part) for part in pattern.split(WILDCARD))
        return cls(pattern, re.compile(regex, re.DOTALL), deployments)

    def resolve(self, model: str) -> tuple[DeploymentTarget, ...] | None:
        """The deployments for model, provider model filled; None if model does not match."""
        match = self.regex.fullmatch(model)
        if match is None:
            return None
        return tuple(_filled(t, model, match.groups()) for t in self.deployments)


def _filled(target: DeploymentTarget, model: str, captured: tuple[str, ...]) -> DeploymentTarget:
    """A wildcard deployment serving one requested name: its provider model filled in, and priced
    as that model unless the deployment sets its own prices."""
    upstream_model = _fill(target.upstream_model, captured)
    price = target.price
    if price.source not in OWN_SOURCES:
        price = list_price(target.provider, upstream_model).price
    return dataclasses.replace(target, model_name=model, upstream_model=upstream_model, price=price)


def _fill(upstream_model: str, captured: tuple[str, ...]) -> str:
    pieces = upstream_model.split(WILDCARD)
    filled = pieces[0]
    for index, piece in enumerate(pieces[1:]):
        filled += (captured[index] if index < len(captured) else "") + piece
    return filled


def access_groups(groups: Mapping[str, tuple[DeploymentTarget, ...]]) -> dict[str, frozenset[str]]:
    """Each access group a deployment's model_info names, with the model names in it."""
    members: dict[str, set[str]] = {}
    for name, deployments in groups.items():
        for deployment in deployments:
            named = deployment.model_info.get("access_groups")
            for group in named if isinstance(named, list) else ():
                if isinstance(group, str):
                    members.setdefault(group, set()).add(name)
    return {group: frozenset(names) for group, names in members.items()}


def wildcard_groups(groups: Mapping[str, tuple[DeploymentTarget, ...]]) -> tuple[WildcardGroup, ...]:
    """The wildcard model groups, most specific first (the most literal characters), so that
    `openai/*` wins over `*` for `openai/gpt-4o`."""
    patterns = sorted((n for n in groups if is_pattern(n)), key=lambda p: (-len(p.replace(WILDCARD, "")), p))
    return tuple(WildcardGroup.of(p, groups[p]) for p in patterns)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One config version: every collection is an immutable map, read without locks.

    `collections` holds one map per resource type URL (see `config.decode.COLLECTIONS`); the
    properties below are typed views of the ones the request path reads.
    """

    version: int
    collections: Mapping[str, immutables.Map[str, Any]]
    model_groups: immutables.Map[str, tuple[DeploymentTarget, ...]]
    """Derived: public model name -> its deployments."""
    wildcards: tuple[WildcardGroup, ...] = ()
    """Derived: the model groups whose name is a pattern, most specific first."""
    access_groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Derived: LiteLLM's model access groups (deployments' model_info.access_groups) -> model names."""
    parsed_keys: dict[str, pb.VirtualKey] = field(default_factory=dict, init=False, repr=False, compare=False)
    """Keys parsed while this version serves; bounded, and gone with the version."""
    resolved_wildcards: dict[str, tuple[DeploymentTarget, ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    """Requested names served by a wildcard group, with their filled deployments; bounded."""

    def deployments_for(self, model: str) -> tuple[DeploymentTarget, ...] | None:
        """The deployments serving a requested model name: its own group, else the most specific
        wildcard group matching it; None when nothing serves it."""
        group = self.model_groups.get(model)
        if group is not None or not self.wildcards:
            return group
        resolved = self.resolved_wildcards.get(model)
        if resolved is not None:
            return resolved
        for wildcard in self.wildcards:
            resolved = wildcard.resolve(model)
            if resolved is not None:
                if len(self.resolved_wildcards) < RESOLVED_WILDCARDS_KEPT:
                    self.resolved_wildcards[model] = resolved
                return resolved
        return None

    @property
    def keys(self) -> immutables.Map[str, bytes]:
        """Serialized VirtualKey per key hash: a parsed message costs ~4x the memory (100k keys)."""
        return self.collections[types.VIRTUAL_KEY]

    @property
    def users(self) -> immutables.Map[str, pb.User]:
        """Users by id."""
        return self.collections[types.USER]

    @property
    def teams(self) -> immutables.Map[str, pb.Team]:
        """Teams by id."""
        return self.collections[types.TEAM]

    @property
    def organizations(self) -> immutables.Map[str, pb.Organization]:
        """Organizations by id."""
        return self.collections[types.ORGANIZATION]

    @property
    def customers(self) -> immutables.Map[str, pb.Customer]:
        """Customers (end users) by id."""
        return self.collections[types.CUSTOMER]

    @property
    def key_groups(self) -> immutables.Map[str, pb.KeyGroup]:
        """Key groups by name."""
        return self.collections[types.KEY_GROUP]

    @property
    def budgets(self) -> immutables.Map[str, pb.Budget]:
        """Budgets (named limits that keys, teams and end users link) by id."""
        return self.collections[types.BUDGET]

    @property
    def deployments(self) -> immutables.Map[str, DeploymentTarget]:
        """Deployments by id, ready to call."""
        return self.collections[types.DEPLOYMENT]

    @property
    def nodes(self) -> immutables.Map[str, pb.DataPlaneNode]:
        """The data planes connected to the control plane, this one included, by node id: the
        members among which cluster-wide limits are shared."""
        return self.collections[types.DATA_PLANE_NODE]

    @property
    def settings(self) -> immutables.Map[str, bytes]:
        """Gateway settings by name, as JSON."""
        return self.collections[types.SETTING]

    def key(self, key_hash: str) -> pb.VirtualKey | None:
        """The virtual key with this hash, or None. Treat it as read-only: it is shared."""
        parsed = self.parsed_keys.get(key_hash)
        if parsed is not None:
            return parsed
        raw = self.collections[types.VIRTUAL_KEY].get(key_hash)
        if raw is None:
            return None
        parsed = pb.VirtualKey.FromString(raw)
        if len(self.parsed_keys) < PARSED_KEYS_KEPT:
            self.parsed_keys[key_hash] = parsed
        return parsed
