"""The audit log: recording an admin write inside its own transaction, and reading the trail."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.models.audit import AuditEntry


def record_audit(
    *,
    session: AsyncSession,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add an audit entry; `before`/`after` must already be public (masked) forms."""
    session.add(
        AuditEntry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            before=before,
            after=after,
        )
    )


async def list_audit(
    *, session: AsyncSession, object_type: str | None, object_id: str | None, limit: int, offset: int
) -> list[AuditEntry]:
    """Newest entries first, optionally for one object."""
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit).offset(offset)
    if object_type:
        query = query.where(AuditEntry.object_type == object_type)
    if object_id:
        query = query.where(AuditEntry.object_id == object_id)
    return list((await session.exec(query)).all())
