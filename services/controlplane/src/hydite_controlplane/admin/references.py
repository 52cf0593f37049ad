"""Checks that a row an admin write names exists (organizations here; key groups and budgets check
their own), kept apart from the aggregates so any of them may use it."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import InvalidRequestError
from hydite_controlplane.models.principals import OrganizationRow


async def require_organization(organization_id: str | None, *, session: AsyncSession) -> None:
    """A 400 naming organization_id unless it is unset or the organization exists."""
    if organization_id and await session.get(OrganizationRow, organization_id) is None:
        raise InvalidRequestError(f"organization {organization_id!r} does not exist", param="organization_id")
