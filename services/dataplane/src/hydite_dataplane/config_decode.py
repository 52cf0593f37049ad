"""Config protocol -> Snapshot (pure): full snapshots and deltas."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import immutables
import orjson

from hydite.config.v1 import config_pb2 as pb
from hydite_common import config_types as types
from hydite_common.credentials import CredentialCipher
from hydite_common.pricing import TokenPrice, builtin_price
from hydite_dataplane.snapshot import DeploymentTarget, Snapshot, empty_snapshot

_FIELD_BY_TYPE = {
    types.VIRTUAL_KEY: "keys",
    types.USER: "users",
    types.TEAM: "teams",
    types.ORGANIZATION: "organizations",
    types.CUSTOMER: "customers",
    types.KEY_GROUP: "key_groups",
    types.DEPLOYMENT: "deployments",
    types.SETTING: "settings",
}


def _json_dict(raw: bytes) -> dict[str, Any]:
    value = orjson.loads(raw) if raw else {}
    return value if isinstance(value, dict) else {}


def deployment_target(message: pb.Deployment, cipher: CredentialCipher) -> DeploymentTarget:
    """Decode a deployment, decrypting its credential (raises if the salt key differs)."""
    price = (
        TokenPrice(message.input_cost_per_token, message.output_cost_per_token)
        if message.input_cost_per_token or message.output_cost_per_token
        else builtin_price(message.upstream_model)
    )
    return DeploymentTarget(
        deployment_id=message.deployment_id,
        model_name=message.model_name,
        provider=message.provider,
        upstream_model=message.upstream_model,
        api_base=message.api_base,
        api_key=cipher.decrypt(message.api_key_encrypted),
        api_version=message.api_version,
        timeout_seconds=message.timeout_seconds,
        stream_timeout_seconds=message.stream_timeout_seconds,
        weight=message.weight or 1.0,
        price=price,
        extra_params=_json_dict(message.extra_params_json),
        model_info=_json_dict(message.model_info_json),
        max_retries=message.max_retries if message.HasField("max_retries") else None,
    )


def _decode(resource: pb.Resource, cipher: CredentialCipher) -> tuple[str, Any] | None:
    """(snapshot field, value) of a resource; None for a type this build does not know."""
    type_url = resource.body.type_url
    field = _FIELD_BY_TYPE.get(type_url)
    if field is None:
        return None
    message = types.RESOURCE_MESSAGES[type_url]()
    if not resource.body.Unpack(message):
        raise ValueError(f"resource {resource.name!r} does not unpack as {type_url}")
    if isinstance(message, pb.VirtualKey):
        return field, resource.body.value
    if isinstance(message, pb.Deployment):
        return field, deployment_target(message, cipher)
    if isinstance(message, pb.Setting):
        return field, message.value_json
    return field, message


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
    mutations = {name: getattr(base, name).mutate() for name in set(_FIELD_BY_TYPE.values())}
    for type_url, name in removals:
        field = _FIELD_BY_TYPE.get(type_url)
        if field is not None:
            mutations[field].pop(name, None)
    for resource in upserts:
        decoded = _decode(resource, cipher)
        if decoded is not None:
            mutations[decoded[0]][resource.name] = decoded[1]
    collections = {name: mutation.finish() for name, mutation in mutations.items()}
    return Snapshot(version=version, model_groups=_model_groups(collections["deployments"]), **collections)


def snapshot_from_resources(
    version: int, resources: Iterable[pb.Resource], cipher: CredentialCipher
) -> Snapshot:
    """A full snapshot at version."""
    return _with_changes(empty_snapshot(), version, resources, (), cipher)


def apply_delta(base: Snapshot, batch: pb.DeltaBatch, cipher: CredentialCipher) -> Snapshot:
    """The snapshot after a delta batch; raises ValueError if it does not start at base."""
    if batch.from_version != base.version:
        raise ValueError(f"delta starts at {batch.from_version}, snapshot is at {base.version}")
    upserts = [r for delta in batch.deltas for r in delta.upserts]
    removals = [(delta.type_url, name) for delta in batch.deltas for name in delta.removed_names]
    return _with_changes(base, batch.version, upserts, removals, cipher)
