"""Deployment rows."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common import config_types
from hydite_controlplane.config.changelog import ResourceChange, record_changes
from hydite_controlplane.models.deployments import DeploymentRow


async def insert_deployment(session: AsyncSession, row: DeploymentRow) -> int:
    """Add a deployment and record the config change; returns the config version."""
    session.add(row)
    await session.flush()
    return await record_changes(session, [ResourceChange(config_types.DEPLOYMENT, row.model_id)])


async def get_deployment(session: AsyncSession, model_id: str) -> DeploymentRow | None:
    """A deployment by id."""
    return await session.get(DeploymentRow, model_id)
