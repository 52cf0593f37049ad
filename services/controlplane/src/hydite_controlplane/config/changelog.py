"""Config versions in commit order: every config write records its changes here.

A write takes a transaction-scoped advisory lock before it reads the head version,
so versions are handed out in the order transactions commit (a plain sequence
would let version 101 commit before 100 and a data plane skip 100).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_controlplane.config.propagation import note_written_version
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.config import ConfigChange

CONFIG_WRITE_LOCK_ID = 0x48594454_43464721  # "HYDT" "CFG!"
NOTIFY_CHANNEL = "hydite_config"

UPSERT = "upsert"
REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class ResourceChange:
    """One resource touched by a write."""

    type_url: str
    name: str
    op: str = UPSERT


async def record_changes(session: AsyncSession, changes: list[ResourceChange]) -> int:
    """Assign the next config version to these changes; the caller commits.

    Listeners are notified when the transaction commits (NOTIFY is transactional).
    """
    await run_sql(session, ("SELECT pg_advisory_xact_lock(:k)"), {"k": CONFIG_WRITE_LOCK_ID})
    head = (await run_sql(session, ("SELECT coalesce(max(version), 0) FROM config_changes"))).scalar_one()
    version = int(head) + 1
    for change in changes:
        session.add(ConfigChange(version=version, type_url=change.type_url, name=change.name, op=change.op))
    await run_sql(
        session,
        ("SELECT pg_notify(:channel, :payload)"),
        {"channel": NOTIFY_CHANNEL, "payload": str(version)},
    )
    note_written_version(version)
    return version
