"""What the caller may call: GET /v1/models and /v1/models/{id} in OpenAI's list shape, their live
metrics (/model/metrics) and the parameters their providers take (/utils/supported_openai_params)."""

from __future__ import annotations

import time

from aiohttp import web

from hydite_common.allowlists import permits
from hydite_common.errors import InvalidRequestError, NotFoundError
from hydite_common.http import json_response
from hydite_dataplane.authz import allowlists, team_scoped
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.gateway import Gateway
from hydite_dataplane.request import Caller
from hydite_dataplane.stats import DeploymentStats


def model_object(name: str, deployments: tuple[DeploymentTarget, ...]) -> dict[str, object]:
    """One entry of the list; `created` is the deployment's model_info.created when given, else 0."""
    created = next(
        (d.model_info.get("created") for d in deployments if isinstance(d.model_info.get("created"), int)), 0
    )
    owners = sorted({d.provider for d in deployments})
    return {"id": name, "object": "model", "created": created, "owned_by": ",".join(owners) or "hydite"}


def visible_model_groups(caller: Caller) -> dict[str, tuple[DeploymentTarget, ...]]:
    """The model groups the caller may use, each with the deployments it may reach (a model a team
    added is its team's alone)."""
    lists = allowlists(caller)
    visible = {}
    for name, group in caller.snapshot.model_groups.items():
        deployments, own = team_scoped(caller, group)
        if deployments and (own or permits(lists, name, caller.snapshot.access_groups)):
            visible[name] = deployments
    return visible


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("true", "1")


async def list_models(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """Every model the key may call; with LiteLLM's ?include_model_access_groups=true also the
    access groups it reaches a model of, with ?only_model_access_groups=true only those."""
    visible = visible_model_groups(caller)
    data = (
        []
        if _flag(request, "only_model_access_groups")
        else [model_object(n, g) for n, g in sorted(visible.items())]
    )
    if _flag(request, "include_model_access_groups") or _flag(request, "only_model_access_groups"):
        groups = sorted(
            g for g, names in caller.snapshot.access_groups.items() if not names.isdisjoint(visible)
        )
        data += [{"id": g, "object": "model", "created": 0, "owned_by": "hydite"} for g in groups]
    return json_response({"object": "list", "data": data})


async def retrieve_model(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """One model the key may call; 404 otherwise (an unusable model is not disclosed)."""
    name = request.match_info["model_id"]
    group = visible_model_groups(caller).get(name)
    if group is None:
        raise NotFoundError(f"The model '{name}' does not exist", code="model_not_found", param="model")
    return json_response(model_object(name, group))


def _metrics_row(
    name: str, deployment: DeploymentTarget, live: DeploymentStats, now: float
) -> dict[str, object]:
    finished = live.attempts - live.in_flight
    successes = finished - live.failures
    return {
        "model_group": name,
        "deployment_id": deployment.deployment_id,
        "provider": deployment.provider,
        "requests": live.attempts,
        "failures": live.failures,
        "in_flight": live.in_flight,
        "success_rate": successes / finished if finished else None,
        "avg_latency_ms": live.latency_total_ms / successes if successes else None,
        "ewma_latency_ms": live.latency_ewma_ms if successes else None,
        "tokens_last_minute": live.tokens_last_minute(now),
    }


async def model_metrics(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """Latency and success rate per model and deployment, from this data plane's live traffic."""
    visible = visible_model_groups(caller)
    now = time.monotonic()
    live = gateway.stats.by_deployment
    rows = [
        _metrics_row(name, d, live.get(d.deployment_id) or DeploymentStats(), now)
        for name, group in sorted(visible.items())
        for d in group
    ]
    return json_response({"data": rows})


async def supported_openai_params(gateway: Gateway, caller: Caller, request: web.Request) -> web.Response:
    """GET /utils/supported_openai_params?model=&operation=: the parameters the model's providers take
    (a model group the caller may see, or `provider/model`)."""
    name = request.query.get("model")
    if not name:
        raise InvalidRequestError("pass ?model=", param="model")
    operation = request.query.get("operation", "chat")
    group = visible_model_groups(caller).get(name)
    if group is not None:
        entries = [gateway.providers[deployment.provider].for_deployment(deployment) for deployment in group]
    elif (provider := name.partition("/")[0]) in gateway.providers and "/" in name:
        # LiteLLM's form: a provider's model, asked for by provider/model
        entries = [gateway.providers[provider]]
    else:
        raise NotFoundError(f"The model '{name}' does not exist", code="model_not_found", param="model")
    params: set[str] = set()
    for entry in entries:
        adapter = entry.operations.get(operation)
        if adapter is not None:
            params |= adapter.supported_params
    return json_response({"supported_openai_params": sorted(params)})
