"""Members of teams and organizations, named by user_id or by user_email as LiteLLM's `Member` is:
the user an email names is found, or created as an internal user, as LiteLLM does."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, ValidationInfo, field_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from hydite_common.errors import InvalidRequestError, NotFoundError
from hydite_controlplane.admin.auth import AdminCaller
from hydite_controlplane.admin.entities import row_public
from hydite_controlplane.admin.validation import AdminRequest, Name
from hydite_controlplane.db import run_sql
from hydite_controlplane.models.principals import UserRow
from hydite_controlplane.store.audit import record_audit
from hydite_controlplane.store.principals import users_with_email

EMAIL_LOCK_SPACE = 0x48594445  # "HYDE": advisory locks on one email (two-key form, apart from others)


class MemberRef(AdminRequest):
    """A user named by id or by email (at least one of them)."""

    user_email: Name | None = Field(default=None, min_length=1)
    # Validated after user_email, even when absent, so that naming neither is a 422 on user_id.
    user_id: Name | None = Field(default=None, min_length=1, validate_default=True)

    @field_validator("user_id")
    @classmethod
    def _named(cls, user_id: str | None, info: ValidationInfo) -> str | None:
        if user_id is None and info.data.get("user_email") is None:
            raise ValueError("give user_id or user_email")
        return user_id


async def user_for_email(session: AsyncSession, caller: AdminCaller, email: str) -> tuple[UserRow, bool]:
    """The one user with this email (any case), or a new internal user with it (True: created,
    added to the session and audited); a 400 when several users have it.

    Two writes naming one new email at once create one user: the email is locked (a transaction
    advisory lock) before it is looked up. Lock order: after the team or organization row the
    write changes, before any user row, and so before the config write lock.
    """
    await run_sql(
        session,
        "SELECT pg_advisory_xact_lock(:space, hashtext(lower(:email)))",
        {"space": EMAIL_LOCK_SPACE, "email": email},
    )
    found = await users_with_email(email, session=session)
    if len(found) > 1:
        raise InvalidRequestError(
            f"several users have user_email {email!r}; name the member by user_id", param="user_email"
        )
    if found:
        return found[0], False
    user = UserRow(user_id=str(uuid.uuid4()), user_email=email, created_by=caller.identity)
    session.add(user)
    record_audit(
        session=session, actor=caller.identity, action="user.new", object_type="user",
        object_id=user.user_id, before=None, after=row_public(user),
    )  # fmt: skip
    return user, True


async def member_user_id(
    session: AsyncSession, caller: AdminCaller, member: MemberRef
) -> tuple[str, UserRow | None]:
    """The user_id a member stands for, and the user created for its email (None if none was)."""
    if member.user_id is not None:
        return member.user_id, None
    assert member.user_email is not None
    user, created = await user_for_email(session, caller, member.user_email)
    return user.user_id, user if created else None


async def existing_member_id(
    session: AsyncSession, entries: list[dict[str, Any]], member: MemberRef, where: str
) -> str:
    """The user_id of the entry (of a team or an organization) a member names: by user_id, else by
    the entry's email, else by the one user with that email; a 404 when it is not a member."""
    if member.user_id is not None:
        wanted = member.user_id
    else:
        email = (member.user_email or "").lower()
        by_email = [e["user_id"] for e in entries if str(e.get("user_email") or "").lower() == email]
        if by_email:
            return str(by_email[0])
        users = await users_with_email(email, session=session)
        wanted = users[0].user_id if len(users) == 1 else ""
    if not any(e["user_id"] == wanted for e in entries):
        named = member.user_id or member.user_email
        raise NotFoundError(
            f"{named!r} is not a member of this {where}", param="user_id" if member.user_id else "user_email"
        )
    return wanted
