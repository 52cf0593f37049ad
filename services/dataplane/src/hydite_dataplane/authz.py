"""Stage 2: may this key call this route and model? Allowlists of key, key group, team, organization
and end user."""

from __future__ import annotations

from collections.abc import Sequence

from hydite.config.v1 import config_pb2 as pb
from hydite_common.allowlists import NOTHING, permits, route_permitted
from hydite_common.errors import NotFoundError, PermissionDeniedError
from hydite_dataplane.snapshot import DeploymentTarget, Snapshot


def allowlists(key: pb.VirtualKey, snapshot: Snapshot) -> list[Sequence[str]]:
    """Every allowlist that applies to the key; a model must pass all of them."""
    lists: list[Sequence[str]] = [key.models]
    group_name = key.key_group
    team = snapshot.teams.get(key.team_id) if key.team_id else None
    if team is not None:
        lists.append(team.models)
        group_name = group_name or team.key_group
    if group_name:
        group = snapshot.key_groups.get(group_name)
        lists.append(group.models if group is not None else NOTHING)
    if key.organization_id:
        # Like a missing key group, an organization that no longer exists allows nothing.
        org = snapshot.organizations.get(key.organization_id)
        lists.append(org.models if org is not None else NOTHING)
    return lists


def authorize_route(key: pb.VirtualKey, path: str) -> None:
    """403 when the key is limited to other routes."""
    if not route_permitted(key.allowed_routes, path):
        raise PermissionDeniedError(f"this key may not call {path}", code="route_not_allowed")


def authorize_customer(customer_id: str, model: str, snapshot: Snapshot) -> None:
    """403 when the request's end user (`user` field) is blocked or may not use the model."""
    customer = snapshot.customers.get(customer_id) if customer_id else None
    if customer is None:
        return
    if customer.blocked:
        raise PermissionDeniedError("this end user is blocked", code="customer_blocked", param="user")
    if not permits([customer.allowed_models], model):
        raise PermissionDeniedError(f"this end user may not use model {model!r}", param="model")


def authorize_model(key: pb.VirtualKey, model: str, snapshot: Snapshot) -> tuple[DeploymentTarget, ...]:
    """The deployments of model, or 404 (unknown model) / 403 (not on the key's allowlists)."""
    deployments = snapshot.model_groups.get(model)
    if not deployments:
        raise NotFoundError(f"model {model!r} does not exist", code="model_not_found", param="model")
    if not permits(allowlists(key, snapshot), model):
        raise PermissionDeniedError(f"this key may not use model {model!r}", param="model")
    return deployments
