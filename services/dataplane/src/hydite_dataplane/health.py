"""GET /health: every deployment the key may use, called cheaply and concurrently;
GET /health/services: providers summarised from live traffic and cooldowns, without calls.

Both are for operators too: the master key and the keys of proxy admins (and admin viewers) may
call them whatever routes those keys are otherwise limited to, and see every deployment."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from hydite.config.v1 import config_pb2 as pb
from hydite_common.errors import HyditeError, ServiceUnavailableError
from hydite_common.http import json_response
from hydite_dataplane.authz import authorize_route
from hydite_dataplane.caller import authenticate
from hydite_dataplane.catalog import visible_model_groups
from hydite_dataplane.config.holder import SnapshotHolder
from hydite_dataplane.config.snapshot import DeploymentTarget, Snapshot
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.providers.registry import Provider
from hydite_dataplane.request import Caller, InferenceRequest
from hydite_dataplane.upstream.transport import CallTimeouts

CHECK_TIMEOUT = CallTimeouts(total=15)

# The cheapest request per model mode (model_info.mode, as in LiteLLM).
PROBES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("chat", {"messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}),
    "completion": ("completions", {"prompt": "ping", "max_tokens": 1}),
    "embedding": ("embeddings", {"input": "ping"}),
    "moderation": ("moderations", {"input": "ping"}),
}


ADMIN_ROLES = frozenset({"proxy_admin", "proxy_admin_viewer"})
"""User roles whose keys reach the health routes and see every deployment there."""


def is_operator(caller: Caller) -> bool:
    """Whether the caller is the master key (the one caller whose key is not in the snapshot) or a
    key of a proxy admin or admin viewer."""
    if caller.snapshot.key(caller.key_hash) is None:
        return True
    return caller.user is not None and caller.user.user_role in ADMIN_ROLES


def health_caller(holder: SnapshotHolder, headers: Mapping[str, str], path: str) -> Caller:
    """The prelude of the health routes: configured and authenticated; an operator passes, any
    other key must be allowed the path."""
    if not holder.ready:
        raise ServiceUnavailableError("the gateway has not received its configuration yet")
    caller = authenticate(headers, holder.current)
    if not is_operator(caller):
        authorize_route(caller.key, path)
    return caller


def checked_model_groups(caller: Caller) -> dict[str, tuple[DeploymentTarget, ...]]:
    """What the health routes cover: every deployment for an operator, else what the key may use."""
    if is_operator(caller):
        return dict(caller.snapshot.model_groups)
    return visible_model_groups(caller)


def _endpoint(target: DeploymentTarget) -> dict[str, Any]:
    return {
        "model": target.model_name,
        "deployment_id": target.deployment_id,
        "provider": target.provider,
        "api_base": target.api_base or None,
    }


async def check_deployment(provider: Provider, target: DeploymentTarget, snapshot: Snapshot) -> str | None:
    """None when the deployment answers its probe, else why not (no secrets in the text)."""
    try:
        provider = provider.for_deployment(target)
    except HyditeError as error:
        return error.message
    mode = str(target.model_info.get("mode", "chat"))
    operation, body = PROBES.get(mode, PROBES["chat"])
    adapter = provider.operations.get(operation)
    if adapter is None:
        return provider.refusal(target.provider, operation).message
    probe = InferenceRequest(
        request_id="health", operation=operation, wire_format="openai", model=target.model_name,
        body={"model": target.model_name, **body}, stream=False, caller=Caller(snapshot, "", pb.VirtualKey()),
        start_time=time.time(), start_perf=time.perf_counter(),
    )  # fmt: skip
    try:
        await provider.answer(adapter.build_call(probe, target), target, CHECK_TIMEOUT)
    except HyditeError as error:
        return error.message
    return None


async def health(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """LiteLLM's shape: healthy_endpoints, unhealthy_endpoints (with the error) and their counts."""
    groups = checked_model_groups(caller)
    wanted = request.query.get("model")
    targets = [t for name, group in sorted(groups.items()) if not wanted or name == wanted for t in group]
    providers = gateway.providers
    results = await asyncio.gather(
        *(check_deployment(providers[t.provider], t, caller.snapshot) for t in targets)
    )
    healthy = [_endpoint(t) for t, error in zip(targets, results, strict=True) if error is None]
    unhealthy = [{**_endpoint(t), "error": error} for t, error in zip(targets, results, strict=True) if error]
    return json_response(
        {
            "healthy_endpoints": healthy,
            "unhealthy_endpoints": unhealthy,
            "healthy_count": len(healthy),
            "unhealthy_count": len(unhealthy),
        }
    )


async def health_services(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """Per provider: deployments, how many are cooling down, and the live success rate."""
    groups = checked_model_groups(caller)
    stats, cooldowns = gateway.stats, gateway.cooldowns
    services: dict[str, dict[str, Any]] = {}
    for group in groups.values():
        for target in group:
            entry = services.setdefault(
                target.provider, {"deployments": 0, "cooling_down": 0, "attempts": 0, "failures": 0}
            )
            entry["deployments"] += 1
            entry["cooling_down"] += int(cooldowns.cooling(target.deployment_id))
            live = stats.by_deployment.get(target.deployment_id)
            if live is not None:
                entry["attempts"] += live.attempts - live.in_flight
                entry["failures"] += live.failures
    for entry in services.values():
        entry["success_rate"] = 1 - entry["failures"] / entry["attempts"] if entry["attempts"] else None
        if entry["cooling_down"] == entry["deployments"]:
            entry["status"] = "down"
        elif entry["cooling_down"] or (entry["success_rate"] is not None and entry["success_rate"] < 0.9):
            entry["status"] = "degraded"
        else:
            entry["status"] = "healthy"
    return json_response({"services": services})
