"""Queries on model deployments."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.models.deployments import DeploymentRow


async def deployments_by_name(*, session: AsyncSession) -> list[DeploymentRow]:
    """Every deployment, ordered by public model name."""
    query = select(DeploymentRow).order_by(col(DeploymentRow.model_name))
    return list((await session.exec(query)).all())
