"""Config protocol -> Snapshot (pure): full snapshots and deltas.

`COLLECTIONS` is the one table of resource types the data plane keeps: a new type is one row
(its type URL and how a resource of it is decoded); types this build does not know are skipped, as
protobuf skips fields it does not know. A snapshot or delta of a newer schema major
(`CONFIG_SCHEMA_VERSION`) is refused whole.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import immutables
import orjson
from google.protobuf.message import Message

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.credentials import CredentialCipher
from hydite_common.pricing import CompiledPrice, is_price_setting, resolve_price
from hydite_common.provider_table import default_api_base
from hydite_dataplane.config.snapshot import DeploymentTarget, Snapshot, access_groups, wildcard_groups

Decoder = Callable[[pb.Resource, CredentialCipher], Any]
LEGACY_SCHEMA_VERSION = 0
"""What a control plane older than the schema_version field sends: read as version 1."""


class NewerConfigSchema(ValueError):
    """A snapshot or delta of a schema major newer than this data plane's."""


def check_schema_version(schema_version: int) -> None:
    """Raise NewerConfigSchema unless this build reads config of schema_version."""
    if schema_version > types.CONFIG_SCHEMA_VERSION:
        raise NewerConfigSchema(
            f"config schema {schema_version} is newer than this data plane's {types.CONFIG_SCHEMA_VERSION}"
            "; upgrade the data plane"
        )


MessageT = TypeVar("MessageT", bound=Message)


def _json_dict(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}


ENVIRONMENT_REFERENCE = "os.environ/"


def from_environment(value: str) -> str:
    """LiteLLM's `os.environ/NAME`: the value of NAME in this data plane's environment (empty when
    unset), so a secret can live in the pod's environment and never in the database or snapshot."""
    if value.startswith(ENVIRONMENT_REFERENCE):
        return os.environ.get(value.removeprefix(ENVIRONMENT_REFERENCE), "")
    return value


def deployment_price(
    message: pb.Deployment, extra_params: dict[str, Any], model_info: dict[str, Any]
) -> CompiledPrice:
    """The deployment's compiled price. Its litellm_params' price settings are taken out of
    extra_params (a provider must never see them); the two per-token prices arrive as fields."""
    own = (
        {name: extra_params.pop(name) for name in [n for n in extra_params if is_price_setting(n)]}
        if extra_params
        else {}
    )
    if message.input_cost_per_token:
        own["input_cost_per_token"] = message.input_cost_per_token
    if message.output_cost_per_token:
        own["output_cost_per_token"] = message.output_cost_per_token
    return resolve_price(message.provider, message.upstream_model, own, model_info).price


def deployment_target(message: pb.Deployment, cipher: CredentialCipher) -> DeploymentTarget:
    """Decode a deployment, decrypting its credential (raises if the salt key differs)."""
    extra_params = _json_dict(message.extra_params_json)
    model_info = _json_dict(message.model_info_json)
    # A routing attribute, never a parameter of the provider's API.
    region = extra_params.pop("region_name", "")
    drop_params = extra_params.pop("drop_params", False)
    additional = extra_params.pop("additional_drop_params", ())
    price = deployment_price(message, extra_params, model_info)
    limits = message.limits
    return DeploymentTarget(
        deployment_id=message.deployment_id,
        model_name=message.model_name,
        provider=message.provider,
        upstream_model=message.upstream_model,
        api_base=from_environment(message.api_base) or default_api_base(message.provider),
        api_key=from_environment(cipher.decrypt(message.api_key_encrypted)),
        api_version=from_environment(message.api_version),
        timeout_seconds=message.timeout_seconds,
        stream_timeout_seconds=message.stream_timeout_seconds,
        weight=message.weight or 1.0,
        price=price,
        extra_params=extra_params,
        model_info=model_info,
        max_retries=message.max_retries if message.HasField("max_retries") else None,
        region=region if isinstance(region, str) else "",
        drop_params=drop_params is True,
        additional_drop_params=tuple(p for p in additional if isinstance(p, str))
        if isinstance(additional, list)
        else (),
        rpm=float(limits.rpm_limit) if limits.HasField("rpm_limit") else None,
        tpm=float(limits.tpm_limit) if limits.HasField("tpm_limit") else None,
    )


def _unpacked(resource: pb.Resource, message: MessageT) -> MessageT:
    if not resource.body.Unpack(message):
        raise ValueError(f"resource {resource.name!r} does not unpack as {resource.body.type_url}")
    return message


def _message(resource: pb.Resource, cipher: CredentialCipher) -> Message:
    return _unpacked(resource, types.RESOURCE_MESSAGES[resource.body.type_url]())


def _key_bytes(resource: pb.Resource, cipher: CredentialCipher) -> bytes:
    _unpacked(resource, pb.VirtualKey())  # checked now, parsed when a request first uses the key
    return resource.body.value


def _deployment(resource: pb.Resource, cipher: CredentialCipher) -> DeploymentTarget:
    return deployment_target(_unpacked(resource, pb.Deployment()), cipher)


def _setting_json(resource: pb.Resource, cipher: CredentialCipher) -> bytes:
    return _unpacked(resource, pb.Setting()).value_json


COLLECTIONS: dict[str, Decoder] = {
    types.VIRTUAL_KEY: _key_bytes,
    types.USER: _message,
    types.TEAM: _message,
    types.ORGANIZATION: _message,
    types.CUSTOMER: _message,
    types.KEY_GROUP: _message,
    types.BUDGET: _message,
    types.DEPLOYMENT: _deployment,
    types.SETTING: _setting_json,
    types.DATA_PLANE_NODE: _message,
    types.TAG: _message,
    types.GLOBAL_LIMITS: _message,
}
"""Resource type URL -> how one resource of it becomes a snapshot value."""

_EMPTY: immutables.Map[str, Any] = immutables.Map()


def empty_snapshot() -> Snapshot:
    """Version 0: nothing known yet."""
    return Snapshot(0, dict.fromkeys(COLLECTIONS, _EMPTY), immutables.Map())


def _model_groups(
    deployments: immutables.Map[str, DeploymentTarget],
) -> immutables.Map[str, tuple[DeploymentTarget, ...]]:
    groups: dict[str, list[DeploymentTarget]] = {}
    for target in deployments.values():
        groups.setdefault(target.model_name, []).append(target)
    return immutables.Map(
        {name: tuple(sorted(ts, key=lambda t: t.deployment_id)) for name, ts in groups.items()}
    )


def _with_changes(
    base: Snapshot,
    version: int,
    upserts: Iterable[pb.Resource],
    removals: Iterable[tuple[str, str]],
    cipher: CredentialCipher,
) -> Snapshot:
    mutations = {type_url: base.collections[type_url].mutate() for type_url in COLLECTIONS}
    for type_url, name in removals:
        if type_url in mutations:
            mutations[type_url].pop(name, None)
    for resource in upserts:
        type_url = resource.body.type_url
        decode = COLLECTIONS.get(type_url)
        if decode is not None:
            mutations[type_url][resource.name] = decode(resource, cipher)
    collections = {type_url: mutation.finish() for type_url, mutation in mutations.items()}
    groups = _model_groups(collections[types.DEPLOYMENT])
    return Snapshot(version, collections, groups, wildcard_groups(groups), access_groups(groups))


def snapshot_from_resources(
    version: int,
    resources: Iterable[pb.Resource],
    cipher: CredentialCipher,
    *,
    schema_version: int = LEGACY_SCHEMA_VERSION,
) -> Snapshot:
    """A full snapshot at version (NewerConfigSchema if its schema is newer than this build's)."""
    check_schema_version(schema_version)
    return _with_changes(empty_snapshot(), version, resources, (), cipher)


def apply_delta(base: Snapshot, batch: pb.DeltaBatch, cipher: CredentialCipher) -> Snapshot:
    """The snapshot after a delta batch; raises ValueError if it does not start at base, and
    NewerConfigSchema if its schema is newer than this build's."""
    check_schema_version(batch.schema_version)
    if batch.from_version != base.version:
        raise ValueError(f"delta starts at {batch.from_version}, snapshot is at {base.version}")
    upserts = [r for delta in batch.deltas for r in delta.upserts]
    removals = [(delta.type_url, name) for delta in batch.deltas for name in delta.removed_names]
    return _with_changes(base, batch.version, upserts, removals, cipher)
