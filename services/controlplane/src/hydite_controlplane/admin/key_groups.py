"""Key groups (named model allowlists with a routing strategy): their request schema, admin routes,
and the check that one a row names exists."""

from __future__ import annotations

from pydantic import field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import InvalidRequestError
from hydite_controlplane.admin.entities import Entity, entity_routes
from hydite_controlplane.admin.validation import LimitFields, Name
from hydite_controlplane.models.principals import KeyGroupRow
from hydite_controlplane.store.principals import key_group_in_use

ROUTING_STRATEGIES = frozenset(
    {"simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing"}
)


class KeyGroupFields(LimitFields):
    """Body of /group/new and /group/update."""

    name: Name | None = None
    models: list[str] | None = None
    routing_strategy: str | None = None

    @field_validator("routing_strategy")
    @classmethod
    def _known_strategy(cls, value: str | None) -> str | None:
        if value is not None and value not in ROUTING_STRATEGIES:
            raise ValueError(f"routing_strategy must be one of {sorted(ROUTING_STRATEGIES)}")
        return value


async def require_key_group(name: str | None, *, session: AsyncSession) -> None:
    """A 400 naming key_group unless it is unset or the key group exists."""
    if name and await session.get(KeyGroupRow, name) is None:
        raise InvalidRequestError(f"key group {name!r} does not exist", param="key_group")


KEY_GROUPS = Entity(
    "group", "groups", KeyGroupRow, "name", "name", KeyGroupFields, generate_id=False,
    in_use=key_group_in_use, used_by="keys or teams", own_id=lambda key: key.key_group,
)  # fmt: skip

ROUTES = entity_routes(KEY_GROUPS)
