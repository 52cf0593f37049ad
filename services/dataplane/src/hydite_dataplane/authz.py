"""Stage 3 (authorize): may this caller use this route and model? Allowlists of key, key group,
team, organization and end user; the team's model aliases, and the models a team added for itself."""

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


def in_customer_region(
    customer: pb.Customer | None, deployments: tuple[DeploymentTarget, ...]
) -> tuple[DeploymentTarget, ...]:
    """The deployments an end user limited to a region may use (those of its region), or a 403."""
    region = customer.allowed_model_region if customer is not None else ""
    if not region:
        return deployments
    kept = tuple(d for d in deployments if d.region == region)
    if not kept:
        raise PermissionDeniedError(
            f"this end user may only use deployments in region {region!r}, and this model has none",
            code="region_not_allowed",
            param="model",
        )
    return kept


def aliased_model(caller: Caller, model: str) -> str:
    """The model a requested name stands for: its entry in the caller's team's model_aliases, else
    in the key's aliases, else in its user's (LiteLLM puts a team's aliases over a key's), else the
    name itself. An alias never widens access: the model it names must pass every allowlist."""
    for aliases in (
        caller.team.model_aliases if caller.team is not None else None,
        caller.key.aliases,
        caller.user.aliases if caller.user is not None else None,
    ):
        if aliases and model in aliases:
            return aliases[model]
    return model


def _owning_team(target: DeploymentTarget) -> str:
    owner = target.model_info.get("team_id")
    return owner if isinstance(owner, str) else ""


def team_scoped(
    caller: Caller, deployments: tuple[DeploymentTarget, ...]
) -> tuple[tuple[DeploymentTarget, ...], bool]:
    """The deployments of one model the caller may reach, and whether they are its team's own: a
    deployment a team added (model_info.team_id) serves that team's keys only, and for them it
    takes the place of the shared deployments of the same name. As in LiteLLM (where the team's
    model is a team alias), a team's own model is outside the allowlists, which govern the
    proxy's shared models."""
    if not any(_owning_team(d) for d in deployments):
        return deployments, False
    team_id = caller.key.team_id
    own = tuple(d for d in deployments if team_id and _owning_team(d) == team_id)
    if own:
        return own, True
    return tuple(d for d in deployments if not _owning_team(d)), False


def authorize_model(caller: Caller, model: str) -> tuple[DeploymentTarget, ...]:
    """The deployments of model (or of the model its team alias names), or 403 (not on the caller's
    allowlists, whether or not it exists) / 404 (a model the caller may use that nothing serves,
    or another team's own). The team's own models pass (team_scoped)."""
    target = aliased_model(caller, model)
    deployments, own = team_scoped(caller, caller.snapshot.deployments_for(target) or ())
    if not own and not permits(allowlists(caller), target, caller.snapshot.access_groups):
        raise PermissionDeniedError(f"this key may not use model {model!r}", param="model")
    if not deployments:
        raise NotFoundError(f"model {model!r} does not exist", code="model_not_found", param="model")
    return deployments
