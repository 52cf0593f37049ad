"""Stage 3 (authorize): may this caller use this route and model? Allowlists of key, key group,
team, organization and end user."""

from __future__ import annotations

from collections.abc import Sequence

from hydite.config.v1 import config_pb2 as pb
from hydite_common.allowlists import NOTHING, permits, route_permitted
from hydite_common.errors import NotFoundError, PermissionDeniedError
from hydite_dataplane.config.snapshot import DeploymentTarget
from hydite_dataplane.request import Caller


def _key_group(caller: Caller) -> tuple[str, pb.KeyGroup | None]:
    """The name of the key's key group (its own, else its team's) and the group, None if it is gone."""
    name = caller.key.key_group or (caller.team.key_group if caller.team is not None else "")
    return name, caller.snapshot.key_groups.get(name) if name else None


def allowlists(caller: Caller) -> list[Sequence[str]]:
    """Every allowlist that applies to the caller's key: its own, its user's, its team's, its key
    group's and its organization's; a model must pass all of them."""
    lists: list[Sequence[str]] = [caller.key.models]
    if caller.user is not None:
        lists.append(caller.user.models)
    if caller.team is not None:
        lists.append(caller.team.models)
    group_name, group = _key_group(caller)
    if group_name:
        # A key group or organization that no longer exists allows nothing.
        lists.append(group.models if group is not None else NOTHING)
    if caller.organization_id:
        lists.append(caller.organization.models if caller.organization is not None else NOTHING)
    return lists


def key_group_strategy(caller: Caller) -> str:
    """The routing strategy of the caller's key group, if it has one."""
    _, group = _key_group(caller)
    return group.routing_strategy if group is not None else ""


def authorize_route(key: pb.VirtualKey, path: str) -> None:
    """403 when the key is limited to other routes."""
    if not route_permitted(key.allowed_routes, path):
        raise PermissionDeniedError(f"this key may not call {path}", code="route_not_allowed")


def authorize_customer(customer: pb.Customer | None, model: str) -> None:
    """403 when the request's end user (`user` field) is blocked or may not use the model."""
    if customer is None:
        return
    if customer.blocked:
        raise PermissionDeniedError("this end user is blocked", code="customer_blocked", param="user")
    if not permits([customer.allowed_models], model):
        raise PermissionDeniedError(f"this end user may not use model {model!r}", param="model")


def authorize_model(caller: Caller, model: str) -> tuple[DeploymentTarget, ...]:
    """The deployments of model, or 403 (not on the caller's allowlists, whether or not it exists)
    / 404 (a model the caller may use that nothing serves)."""
    if not permits(allowlists(caller), model):
        raise PermissionDeniedError(f"this key may not use model {model!r}", param="model")
    deployments = caller.snapshot.deployments_for(model)
    if not deployments:
        raise NotFoundError(f"model {model!r} does not exist", code="model_not_found", param="model")
    return deployments
