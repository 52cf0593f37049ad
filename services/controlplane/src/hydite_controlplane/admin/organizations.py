"""Organizations: their request schema, admin routes, and the check that one a row names exists."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import InvalidRequestError
from hydite_controlplane.admin.entities import Entity, entity_routes
from hydite_controlplane.admin.validation import LimitFields, Name
from hydite_controlplane.models.principals import OrganizationRow
from hydite_controlplane.store.principals import organization_in_use


class OrganizationFields(LimitFields):
    """Body of /organization/new and /organization/update."""

    organization_id: Name | None = None
    organization_alias: Name | None = None
    models: list[str] | None = None
    blocked: bool | None = None


async def require_organization(organization_id: str | None, *, session: AsyncSession) -> None:
    """A 400 naming organization_id unless it is unset or the organization exists."""
    if organization_id and await session.get(OrganizationRow, organization_id) is None:
        raise InvalidRequestError(f"organization {organization_id!r} does not exist", param="organization_id")


ORGANIZATIONS = Entity(
    "organization", "organizations", OrganizationRow, "organization_id", "organization_id",
    OrganizationFields, in_use=organization_in_use, used_by="teams, keys or users",
    own_id=lambda key: key.organization_id,
)  # fmt: skip

ROUTES = entity_routes(ORGANIZATIONS)
